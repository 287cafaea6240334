"""Span extraction (conlleval's reading) and tag-scheme conversion, on hand-worked cases."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.data.span_utils import (
    InvalidTagError,
    bio_tags_to_spans,
    bioul_tags_to_spans,
    convert_tags,
    iob1_tags_to_spans,
    spans_to_tags,
    tags_to_spans,
    to_bioul,
)


def test_span_utils_bio_reads_spans():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O"]
    assert bio_tags_to_spans(tags) == [("PER", (0, 1)), ("LOC", (3, 3)), ("LOC", (4, 5))]


def test_span_utils_bio_lenient_on_ill_formed_sequences():
    # I- after O starts a span; a type change ends one and starts another (conlleval).
    tags = ["O", "I-PER", "I-PER", "I-LOC", "B-PER", "I-LOC"]
    assert bio_tags_to_spans(tags) == [
        ("PER", (1, 2)),
        ("LOC", (3, 3)),
        ("PER", (4, 4)),
        ("LOC", (5, 5)),
    ]


def test_span_utils_iob1_i_after_o_starts_span_and_b_splits_same_type():
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-ORG", "I-LOC", "I-LOC"]
    assert iob1_tags_to_spans(tags) == [
        ("PER", (0, 1)),
        ("PER", (2, 2)),
        ("ORG", (4, 4)),
        ("LOC", (5, 6)),
    ]


def test_span_utils_bioul_well_formed():
    tags = ["U-PER", "B-LOC", "I-LOC", "L-LOC", "O", "B-ORG", "L-ORG", "U-ORG"]
    assert bioul_tags_to_spans(tags) == [
        ("PER", (0, 0)),
        ("LOC", (1, 3)),
        ("ORG", (5, 6)),
        ("ORG", (7, 7)),
    ]


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        # B never closed by L: the span still ends where O begins.
        (["B-PER", "I-PER", "O"], [("PER", (0, 1))]),
        # B at the very end.
        (["O", "B-PER"], [("PER", (1, 1))]),
        # L without B after O starts (and ends) a span of its own.
        (["O", "L-PER", "O"], [("PER", (1, 1))]),
        # I after U starts a new span.
        (["U-PER", "I-PER", "L-PER"], [("PER", (0, 0)), ("PER", (1, 2))]),
        # L after L starts a new one.
        (["B-PER", "L-PER", "L-PER"], [("PER", (0, 1)), ("PER", (2, 2))]),
        # B followed by a different type's L: two spans.
        (["B-PER", "L-LOC"], [("PER", (0, 0)), ("LOC", (1, 1))]),
        # B B: the first closes.
        (["B-PER", "B-PER", "L-PER"], [("PER", (0, 0)), ("PER", (1, 2))]),
    ],
)
def test_span_utils_bioul_ill_formed_sequences_read_like_conlleval(tags, spans):
    assert bioul_tags_to_spans(tags) == spans


def test_span_utils_classes_to_ignore():
    tags = ["B-V", "I-V", "B-ARG0", "O"]
    assert tags_to_spans(tags, classes_to_ignore=["V"]) == [("ARG0", (2, 2))]


def test_span_utils_rejects_non_span_tags():
    with pytest.raises(InvalidTagError, match="NOUN"):
        tags_to_spans(["NOUN", "O"])
    with pytest.raises(InvalidTagError):
        tags_to_spans(["X-PER"])


def test_span_utils_to_bioul_from_iob1_and_bio():
    iob1 = ["I-ORG", "O", "I-MISC", "O", "I-PER", "I-PER", "B-PER", "I-LOC"]
    expected = ["U-ORG", "O", "U-MISC", "O", "B-PER", "L-PER", "U-PER", "U-LOC"]
    assert to_bioul(iob1, encoding="IOB1") == expected
    bio = ["B-ORG", "O", "B-MISC", "O", "B-PER", "I-PER", "B-PER", "B-LOC"]
    assert to_bioul(bio, encoding="BIO") == expected


def test_span_utils_convert_iob1_to_bio_and_back():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    bio = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    assert convert_tags(iob1, "IOB1", "BIO") == bio
    assert convert_tags(bio, "BIO", "IOB1") == iob1
    assert convert_tags(bio, "BIO", "BIO") == bio


def test_span_utils_spans_to_tags_round_trips_in_every_scheme():
    spans = [("PER", (0, 1)), ("PER", (2, 2)), ("LOC", (4, 6))]
    for scheme in ("IOB1", "BIO", "BIOUL"):
        assert tags_to_spans(spans_to_tags(spans, 8, scheme)) == spans


def test_span_utils_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        convert_tags(["O"], "BIO", "BMES")


@st.composite
def _spans(draw):
    """Non-overlapping typed spans over a sequence of drawn length."""
    length = draw(st.integers(min_value=0, max_value=12))
    cuts = sorted(draw(st.sets(st.integers(min_value=0, max_value=length), max_size=8)))
    spans = []
    for start, end in itertools.pairwise([0, *cuts, length]):
        if end > start and draw(st.booleans()):
            label = draw(st.sampled_from(["PER", "LOC"]))
            spans.append((label, (start, end - 1)))
    return spans, length


@settings(max_examples=100, deadline=None)
@given(
    _spans(), st.sampled_from(["IOB1", "BIO", "BIOUL"]), st.sampled_from(["IOB1", "BIO", "BIOUL"])
)
def test_span_utils_encoding_and_conversion_preserve_spans(drawn, source, target):
    spans, length = drawn
    tags = spans_to_tags(spans, length, source)
    assert tags_to_spans(tags) == spans
    assert tags_to_spans(convert_tags(tags, source, target)) == spans

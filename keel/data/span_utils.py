"""Tag schemes for span labelling: reading spans out of tag sequences and re-encoding them.

Spans are read the way the CoNLL ``conlleval`` script reads chunks, for every scheme at once:
``U-`` is read as conlleval's ``S-`` and ``L-`` as its ``E-``. That makes extraction lenient and
deterministic on ill-formed sequences (an ``I-X`` after ``O`` starts a span, a type change ends
one), and scores match conlleval's on the same input.

A span is ``(label, (start, end))`` with ``end`` inclusive, as in AllenNLP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TypedSpan = tuple[str, tuple[int, int]]

SCHEMES = ("IOB1", "BIO", "BIOUL")
_PREFIXES = {"B", "I", "L", "U", "E", "S"}
# conlleval knows B/I/E/S; BIOUL's L and U are its E and S.
_CONLLEVAL_PREFIX = {"B": "B", "I": "I", "L": "E", "E": "E", "U": "S", "S": "S"}


class InvalidTagError(ValueError):
    """A tag that is neither ``O`` nor ``<prefix>-<type>`` with a known prefix."""


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``."""
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in _PREFIXES or not label:
        raise InvalidTagError(
            f"tag {tag!r} is not 'O' or '<B|I|L|U|E|S>-<type>', so it cannot be read as a span tag"
        )
    return _CONLLEVAL_PREFIX[prefix], label


def _ends_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _starts_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def tags_to_spans(
    tags: Sequence[str], classes_to_ignore: Iterable[str] | None = None
) -> list[TypedSpan]:
    """Spans in a tag sequence of any scheme (IOB1, BIO, BIOUL), read as conlleval reads them."""
    ignore = set(classes_to_ignore or ())
    spans: list[TypedSpan] = []
    prev_tag, prev_type = "O", ""
    start = 0
    for index, raw in enumerate(tags):
        tag, type_ = split_tag(raw)
        ends = _ends_chunk(prev_tag, tag, prev_type, type_)
        if ends and prev_tag != "O" and prev_type not in ignore:
            spans.append((prev_type, (start, index - 1)))
        if _starts_chunk(prev_tag, tag, prev_type, type_) and tag != "O":
            start = index
        prev_tag, prev_type = tag, type_
    if prev_tag != "O" and prev_type not in ignore:
        spans.append((prev_type, (start, len(tags) - 1)))
    return spans


# AllenNLP's per-scheme names; one reader serves all three.
def iob1_tags_to_spans(
    tags: Sequence[str], classes_to_ignore: Iterable[str] | None = None
) -> list[TypedSpan]:
    """Spans in an IOB1 sequence (``I-X`` after ``O`` starts a span; ``B-X`` splits two)."""
    return tags_to_spans(tags, classes_to_ignore)


def bio_tags_to_spans(
    tags: Sequence[str], classes_to_ignore: Iterable[str] | None = None
) -> list[TypedSpan]:
    """Spans in a BIO (IOB2) sequence."""
    return tags_to_spans(tags, classes_to_ignore)


def bioul_tags_to_spans(
    tags: Sequence[str], classes_to_ignore: Iterable[str] | None = None
) -> list[TypedSpan]:
    """Spans in a BIOUL sequence; ill-formed runs are read leniently, as conlleval does."""
    return tags_to_spans(tags, classes_to_ignore)


def spans_to_tags(spans: Iterable[TypedSpan], length: int, scheme: str) -> list[str]:
    """Encode non-overlapping spans as a tag sequence of ``length`` in ``scheme``."""
    scheme = check_scheme(scheme)
    tags = ["O"] * length
    ordered = sorted(spans, key=lambda span: span[1])
    previous_end, previous_label = -2, None
    for label, (start, end) in ordered:
        if scheme == "BIOUL":
            if start == end:
                tags[start] = f"U-{label}"
            else:
                tags[start] = f"B-{label}"
                tags[start + 1 : end] = [f"I-{label}"] * (end - start - 1)
                tags[end] = f"L-{label}"
        else:
            tags[start : end + 1] = [f"I-{label}"] * (end - start + 1)
            # IOB1 marks B- only where a span directly follows one of the same type.
            if scheme == "BIO" or (previous_end == start - 1 and previous_label == label):
                tags[start] = f"B-{label}"
        previous_end, previous_label = end, label
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Re-encode a tag sequence from one scheme to another (IOB1, BIO, BIOUL)."""
    check_scheme(source)
    if check_scheme(target) == source:
        return list(tags)
    return spans_to_tags(tags_to_spans(tags), len(tags), target)


def to_bioul(tags: Sequence[str], encoding: str = "IOB1") -> list[str]:
    """AllenNLP's ``to_bioul``: an IOB1 or BIO sequence in BIOUL."""
    return convert_tags(tags, encoding, "BIOUL")


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return scheme

"""conll2003 reader: columns, documents, scheme conversion, file:line errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.common import errors
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.conll2003 import Conll2003DatasetReader
from keel.data.dataset_readers.dataset_reader import DatasetReader
from tests.data.dataset_readers.block_reading import read_both_ways

FIXTURE = Path(__file__).parents[2] / "fixtures" / "tagging" / "conll2003_iob1.txt"


def _tags(instance, name="tags"):
    return list(instance[name].labels)


def test_conll2003_reads_sentences_across_documents():
    instances = list(Conll2003DatasetReader().read(FIXTURE))
    assert len(instances) == 3
    assert instances[0]["metadata"]["words"] == ["Maria", "Lopez", "visited", "Oslo", "."]
    assert [t.text for t in instances[2]["tokens"].tokens][:2] == ["Rain", "fell"]
    assert _tags(instances[0]) == ["I-PER", "I-PER", "O", "I-LOC", "O"]
    assert instances[0]["tags"].label_namespace == "labels"


def test_conll2003_tag_label_chooses_the_column():
    pos = list(Conll2003DatasetReader(tag_label="pos").read(FIXTURE))
    assert _tags(pos[0]) == ["NNP", "NNP", "VBD", "NNP", "."]
    chunk = list(Conll2003DatasetReader(tag_label="chunk").read(FIXTURE))
    assert _tags(chunk[0]) == ["I-NP", "I-NP", "I-VP", "I-NP", "O"]


def test_conll2003_converts_iob1_to_bioul_and_bio():
    bioul = list(Conll2003DatasetReader(coding_scheme="BIOUL").read(FIXTURE))
    assert _tags(bioul[1]) == ["B-ORG", "L-ORG", "O", "U-PER", "U-PER", "O", "U-PER", "O"]
    assert _tags(bioul[2]) == ["O", "O", "O", "B-LOC", "L-LOC", "O"]
    bio = list(Conll2003DatasetReader(coding_scheme="BIO").read(FIXTURE))
    assert _tags(bio[1]) == ["B-ORG", "I-ORG", "O", "B-PER", "B-PER", "O", "B-PER", "O"]
    # POS is never converted.
    pos = list(Conll2003DatasetReader(tag_label="pos", coding_scheme="BIOUL").read(FIXTURE))
    assert _tags(pos[0])[0] == "NNP"


def test_conll2003_feature_labels_add_fields():
    reader = Conll2003DatasetReader(feature_labels=["pos", "chunk"], coding_scheme="BIOUL")
    first = next(iter(reader.read(FIXTURE)))
    assert _tags(first, "pos_tags") == ["NNP", "NNP", "VBD", "NNP", "."]
    assert first["chunk_tags"].label_namespace == "chunk_tags"
    assert _tags(first, "chunk_tags") == ["B-NP", "L-NP", "U-VP", "U-NP", "O"]


def test_conll2003_max_instances_and_registration():
    assert DatasetReader.by_name("conll2003") is Conll2003DatasetReader
    assert len(list(Conll2003DatasetReader(max_instances=2).read(FIXTURE))) == 2


def test_conll2003_text_to_instance_without_tags():
    instance = Conll2003DatasetReader().text_to_instance(["Hi", "there"])
    assert "tags" not in instance
    assert instance["metadata"]["words"] == ["Hi", "there"]


def test_conll2003_wrong_column_count_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP\n")
    with pytest.raises(DataError, match="expected 4") as info:
        list(Conll2003DatasetReader().read(path))
    assert info.value.line == 4 and info.value.path == str(path)
    assert info.value.code == errors.MISSING_COLUMN


def test_conll2003_bad_tag_during_conversion_names_its_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU NNP I-NP I-ORG\nrejects VBZ I-VP PERSON\n")
    with pytest.raises(DataError, match="PERSON") as info:
        list(Conll2003DatasetReader(coding_scheme="BIOUL").read(path))
    assert info.value.line == 2


def test_conll2003_rejects_unknown_options():
    with pytest.raises(ConfigurationError, match="tag_label"):
        Conll2003DatasetReader(tag_label="lemma")
    with pytest.raises(ConfigurationError, match="coding_scheme"):
        Conll2003DatasetReader(coding_scheme="BMES")


def test_conll2003_reads_bio_files_into_bioul(tmp_path):
    path = tmp_path / "bio.txt"
    path.write_text("Jan NNP B-NP B-PER\nBerg NNP I-NP I-PER\nAnn NNP B-NP B-PER\n. . O O\n")
    reader = Conll2003DatasetReader(original_coding_scheme="BIO", coding_scheme="BIOUL")
    (instance,) = list(reader.read(path))
    assert _tags(instance) == ["B-PER", "L-PER", "U-PER", "O"]


def test_conll2003_on_error_skips_bad_sentences_and_reports_each(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text(
        "EU NNP I-NP I-ORG\nsays VBZ\n\nAnn NNP I-NP I-PER\n\nBad NNP I-NP PERSON\n\nOK NN I-NP O\n"
    )
    found = []
    reader = Conll2003DatasetReader(coding_scheme="BIOUL")
    instances = list(reader.read(path, on_error=found.append))
    assert [i["metadata"]["words"] for i in instances] == [["Ann"], ["OK"]]
    assert [error.line for error in found] == [2, 6]


def test_conll2003_read_records_give_predictor_inputs():
    records = list(
        Conll2003DatasetReader(coding_scheme="BIOUL", max_instances=2).read_records(FIXTURE)
    )
    assert len(records) == 2
    assert records[0] == {
        "tokens": ["Maria", "Lopez", "visited", "Oslo", "."],
        "tags": ["B-PER", "L-PER", "O", "U-LOC", "O"],
    }
    instance = Conll2003DatasetReader().text_to_instance(**records[0])
    assert list(instance["tags"].labels) == records[0]["tags"]


# --- the block-at-a-time parse against the line-by-line parse --------------------------------

_WORDS = st.sampled_from(["Maria", "Oslo", ".", "-DOCSTART-x", "é", "日本"])
_NER = st.sampled_from(["O", "I-PER", "B-PER", "I-LOC", "B-LOC"])


@st.composite
def _conll_block(draw) -> list[str]:
    """One block of lines: mostly 4-column rows, sometimes with a flaw."""
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        columns = [draw(_WORDS), "NNP", draw(st.sampled_from(["I-NP", "B-NP"])), draw(_NER)]
        if draw(st.integers(0, 19)) == 0:
            columns = columns[: draw(st.integers(1, 3))] + ["extra"] * draw(st.integers(0, 2))
        if draw(st.integers(0, 24)) == 0:
            columns[-1] = "X-PER"  # not a tag of any scheme: fails when converting
        separator = draw(st.sampled_from([" ", " ", "\t", "  "]))
        padding = draw(st.sampled_from(["", "", " "]))
        lines.append(padding + separator.join(columns) + padding)
        if draw(st.integers(0, 14)) == 0:
            lines.append(draw(st.sampled_from(["-DOCSTART- -X- -X- O", " ", "\t", "\x0b"])))
    return lines


def _read_conll_both_ways(path: Path, options: dict, on_error: bool):
    return read_both_ways(
        lambda: Conll2003DatasetReader(**options),
        path,
        lambda instance: (
            instance["metadata"]["words"],
            {name: list(field.labels) for name, field in instance.fields.items() if "tags" in name},
            instance.source_line,
        ),
        on_error,
    )


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(_conll_block(), min_size=1, max_size=8),
    separators=st.lists(st.sampled_from(["\n\n", "\n\n\n", "\n \n", "\n"]), min_size=8, max_size=8),
    options=st.sampled_from(
        [
            {},
            {"coding_scheme": "BIOUL"},
            {"tag_label": "chunk", "convert_to_coding_scheme": "BIO"},
            {"feature_labels": ["pos", "chunk"], "coding_scheme": "BIO"},
        ]
    ),
    on_error=st.booleans(),
)
def test_conll2003_block_parse_equals_the_line_parse(blocks, separators, options, on_error):
    text = "".join(
        "\n".join(lines) + separator for lines, separator in zip(blocks, separators, strict=False)
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.txt"
        path.write_bytes(text.encode("utf-8"))
        by_blocks, by_lines = _read_conll_both_ways(path, options, on_error)
    assert by_blocks == by_lines

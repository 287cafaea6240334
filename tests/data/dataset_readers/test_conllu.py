"""conllu reader: UPOS/XPOS, comments, multiword tokens and empty nodes, file:line errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.common import errors
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.dataset_readers.dataset_reader import DatasetReader
from tests.data.dataset_readers.block_reading import read_both_ways

SAMPLE_DIR = Path(__file__).parents[3] / "examples" / "data" / "ud-ewt-sample"

CONLLU = """# sent_id = 1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tknow\tknow\tVERB\tVB\t_\t_\t_\t0:root\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = 2
1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def _write(tmp_path, text):
    path = tmp_path / "x.conllu"
    path.write_text(text, encoding="utf-8")
    return path


def test_conllu_skips_comments_ranges_and_empty_nodes(tmp_path):
    instances = list(ConlluDatasetReader().read(_write(tmp_path, CONLLU)))
    assert len(instances) == 2  # the last sentence has no trailing blank line
    assert instances[0]["metadata"]["words"] == ["I", "do", "n't", "know", "."]
    assert list(instances[0]["tags"].labels) == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert list(instances[1]["tags"].labels) == ["INTJ"]


def test_conllu_xpos(tmp_path):
    instances = list(ConlluDatasetReader(tag_label="xpos").read(_write(tmp_path, CONLLU)))
    assert list(instances[0]["tags"].labels) == ["PRP", "VBP", "RB", "VB", "."]


def test_conllu_reads_the_shipped_ewt_sample():
    assert DatasetReader.by_name("conllu") is ConlluDatasetReader
    instances = list(ConlluDatasetReader().read(SAMPLE_DIR / "en_ewt-ud-dev.sample.conllu"))
    assert len(instances) == 200
    tags = {tag for instance in instances for tag in instance["tags"].labels}
    assert tags <= {
        "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
    }  # fmt: skip


def test_conllu_wrong_column_count_names_file_and_line(tmp_path):
    bad = CONLLU.replace("3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_", "3 n't not PART")
    with pytest.raises(DataError, match="expected 10") as info:
        list(ConlluDatasetReader().read(_write(tmp_path, bad)))
    assert info.value.line == 6 and info.value.code == errors.MISSING_COLUMN


def test_conllu_out_of_order_ids_are_reported(tmp_path):
    bad = CONLLU.replace("5\t.\t.", "6\t.\t.")
    with pytest.raises(DataError, match="'6' where 5 was expected") as info:
        list(ConlluDatasetReader().read(_write(tmp_path, bad)))
    assert info.value.line == 9


def test_conllu_non_ascii_digit_id_is_reported_not_crashed(tmp_path):
    bad = CONLLU.replace("5\t.\t.", "\u2075\t.\t.")  # a superscript 5: isdigit, not int
    with pytest.raises(DataError, match="where 5 was expected") as info:
        list(ConlluDatasetReader().read(_write(tmp_path, bad)))
    assert info.value.line == 9


def test_conllu_missing_tag_is_reported(tmp_path):
    bad = CONLLU.replace("INTJ\tUH", "INTJ\t_")
    with pytest.raises(DataError, match="no XPOS") as info:
        list(ConlluDatasetReader(tag_label="xpos").read(_write(tmp_path, bad)))
    assert info.value.line == 12


def test_conllu_rejects_unknown_tag_label():
    with pytest.raises(ConfigurationError, match="upos or xpos"):
        ConlluDatasetReader(tag_label="deprel")


def test_conllu_tolerates_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + CONLLU.encode("utf-8"))
    assert len(list(ConlluDatasetReader().read(path))) == 2


def test_conllu_on_error_skips_the_bad_sentence_only(tmp_path):
    bad = CONLLU.replace("5\t.\t.", "6\t.\t.")
    found = []
    instances = list(ConlluDatasetReader().read(_write(tmp_path, bad), on_error=found.append))
    assert [i["metadata"]["words"] for i in instances] == [["Yes"]]
    assert [error.line for error in found] == [9]


def test_conllu_read_records(tmp_path):
    records = list(ConlluDatasetReader().read_records(_write(tmp_path, CONLLU)))
    assert records[1] == {"tokens": ["Yes"], "tags": ["INTJ"]}


def test_conllu_bad_utf8_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_bytes(CONLLU.encode("utf-8").replace(b"Yes\tyes", b"Y\xffs\tyes"))
    with pytest.raises(DataError, match="UTF-8") as info:
        list(ConlluDatasetReader().read(path))
    assert info.value.line == 12


# --- the block-at-a-time parse against the line-by-line parse --------------------------------

_FORMS = st.sampled_from(["I", "do", "n't", "#", "-", "3.5", "é", "日本", "_", "a b"])
_TAGS = st.sampled_from(["PRON", "AUX", "X"])


@st.composite
def _tag(draw) -> str:
    return "_" if draw(st.integers(0, 14)) == 0 else draw(_TAGS)  # "_": no tag, a flaw


@st.composite
def _conllu_block(draw) -> list[str]:
    """One block of lines: mostly a well-formed sentence, sometimes with a flaw."""
    lines = draw(
        st.lists(st.sampled_from(["# sent_id = s1", "#sent_id=s2 ", "# text = x", "# sent_id ="]))
    )
    for number in range(1, draw(st.integers(1, 6)) + 1):
        if draw(st.integers(0, 9)) == 0:
            lines.append(f"{number}-{number + 1}\tdon't" + "\t_" * 8)
        word_id = str(number)
        if draw(st.integers(0, 14)) == 0:
            word_id = draw(st.sampled_from(["0", "01", "x", str(number + 1), "١"]))
        columns = [word_id, draw(_FORMS), "lemma", draw(_tag()), draw(_tag()), "_", "0", "root"]
        columns += ["_", "_"]
        if draw(st.integers(0, 19)) == 0:
            columns = columns[: draw(st.integers(1, 9))]
            columns += ["extra"] * draw(st.integers(0, 2))
        lines.append("\t".join(columns))
        if draw(st.integers(0, 14)) == 0:
            extra = [f"{number}.1\te" + "\t_" * 8, "-sent_id=z" + "\t_" * 9, "# note", " ", "\t"]
            lines.append(draw(st.sampled_from(extra)))
    return lines


def _read_both_ways(path: Path, tag_label: str, on_error: bool):
    return read_both_ways(
        lambda: ConlluDatasetReader(tag_label=tag_label),
        path,
        lambda instance: (
            instance["metadata"]["words"],
            instance["tags"].labels,
            instance.source_line,
            instance.source_id,
        ),
        on_error,
    )


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(_conllu_block(), min_size=1, max_size=8),
    separators=st.lists(st.sampled_from(["\n\n", "\n\n\n", "\n \n"]), min_size=8, max_size=8),
    tag_label=st.sampled_from(["upos", "xpos"]),
    on_error=st.booleans(),
    crlf=st.booleans(),
)
def test_conllu_block_parse_equals_the_line_parse(blocks, separators, tag_label, on_error, crlf):
    text = "".join(
        "\n".join(lines) + separator for lines, separator in zip(blocks, separators, strict=False)
    )
    if crlf:
        text = text.replace("\n", "\r\n")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.conllu"
        path.write_bytes(text.encode("utf-8"))
        by_blocks, by_lines = _read_both_ways(path, tag_label, on_error)
    assert by_blocks == by_lines


def test_conllu_block_parse_equals_the_line_parse_on_the_ewt_sample():
    path = SAMPLE_DIR / "en_ewt-ud-dev.sample.conllu"
    by_blocks, by_lines = _read_both_ways(path, "upos", on_error=True)
    assert by_blocks == by_lines
    assert len(by_blocks[0]) > 100 and by_blocks[1] == []


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n\n", b"# only a comment\n"])
def test_conllu_file_without_sentences_is_an_empty_data_error(tmp_path, content):
    path = tmp_path / "empty.conllu"
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        list(ConlluDatasetReader().read(path))
    assert raised.value.code == errors.EMPTY_DATA

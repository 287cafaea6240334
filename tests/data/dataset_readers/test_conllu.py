"""conllu reader: UPOS/XPOS, comments, multiword tokens and empty nodes, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.common import errors
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.dataset_readers.dataset_reader import DatasetReader

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

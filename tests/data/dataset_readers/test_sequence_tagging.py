"""sequence_tagging reader: word###TAG lines."""

from __future__ import annotations

import pytest

from keel.common.errors import DataError
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.dataset_readers.sequence_tagging import SequenceTaggingDatasetReader


def test_sequence_tagging_reads_word_tag_pairs(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("The###DET dog###NOUN barks###VERB\n\nC###X#a###SYM\n", encoding="utf-8")
    reader = DatasetReader.by_name("sequence_tagging")()
    instances = list(reader.read(path))
    assert len(instances) == 2
    assert instances[0]["metadata"]["words"] == ["The", "dog", "barks"]
    assert list(instances[0]["tags"].labels) == ["DET", "NOUN", "VERB"]
    # The tag follows the last delimiter, so a word may contain it.
    assert instances[1]["metadata"]["words"] == ["C###X#a"]
    assert list(instances[1]["tags"].labels) == ["SYM"]


def test_sequence_tagging_custom_delimiters(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("New York/PROPN|is/AUX\n", encoding="utf-8")
    reader = SequenceTaggingDatasetReader(word_tag_delimiter="/", token_delimiter="|")
    (instance,) = list(reader.read(path))
    assert instance["metadata"]["words"] == ["New York", "is"]
    assert list(instance["tags"].labels) == ["PROPN", "AUX"]


def test_sequence_tagging_missing_delimiter_names_file_and_line(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("a###X\nb###Y c\n", encoding="utf-8")
    with pytest.raises(DataError, match="'c' is not word###TAG") as info:
        list(SequenceTaggingDatasetReader().read(path))
    assert info.value.line == 2 and info.value.path == str(path)


def test_sequence_tagging_on_error_and_records(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("a###X\nb###Y c\nd###Z\n", encoding="utf-8")
    found = []
    reader = SequenceTaggingDatasetReader()
    instances = list(reader.read(path, on_error=found.append))
    assert [i["metadata"]["words"] for i in instances] == [["a"], ["d"]]
    assert [error.line for error in found] == [2]
    assert list(SequenceTaggingDatasetReader(max_instances=1).read_records(path)) == [
        {"tokens": ["a"], "tags": ["X"]}
    ]

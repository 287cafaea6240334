from pathlib import Path

import pytest

from keel.common import errors
from keel.common.errors import DataError
from keel.data.dataset_readers import DatasetReader, TsvReader
from keel.data.fields import LabelField, TextField
from keel.data.token_indexers import SingleIdTokenIndexer
from keel.data.tokenizers import CharacterTokenizer, WhitespaceTokenizer


def test_tsv_reads_sst2_style_rows(fixtures_dir):
    instances = list(TsvReader().read(fixtures_dir / "tiny.tsv"))
    assert len(instances) == 3
    first = instances[0]
    assert isinstance(first["tokens"], TextField) and isinstance(first["label"], LabelField)
    # The trailing space before the tab is stripped; whitespace tokenization by default.
    assert [t.text for t in first["tokens"].tokens] == ["the", "movie", "is", "good", "."]
    assert [i["label"].label for i in instances] == ["1", "0", "1"]
    reader = TsvReader()
    assert isinstance(reader.tokenizer, WhitespaceTokenizer)
    assert isinstance(reader.token_indexers["tokens"], SingleIdTokenIndexer)


def test_tsv_custom_columns_delimiter_and_options(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,label,text\n1,2,Hello there\n2,0,Bye\n", encoding="utf-8")
    reader = TsvReader(
        text_column="text",
        delimiter=",",
        skip_label_indexing=True,
        max_sequence_length=1,
        tokenizer=CharacterTokenizer(),
    )
    instances = list(reader.read(path))
    assert [i["label"].label for i in instances] == [2, 0]
    assert [[t.text for t in i["tokens"].tokens] for i in instances] == [["H"], ["B"]]


def test_tsv_max_instances(fixtures_dir):
    assert len(list(TsvReader(max_instances=2).read(fixtures_dir / "tiny.tsv"))) == 2


def test_tsv_missing_header_column_names_file_line_and_code(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("text\tlabel\nhello\t1\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(TsvReader().read(path))
    assert info.value.code == errors.MISSING_COLUMN
    message = str(info.value)
    assert f"{path}:1:" in message and "'sentence'" in message and "'text'" in message


def test_tsv_row_with_missing_column(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\ngood \t1\nno label here\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(TsvReader().read(path))
    assert info.value.code == errors.MISSING_COLUMN
    assert info.value.line == 3 and info.value.path == str(path)
    assert "no label here" in str(info.value)


def test_tsv_empty_label_and_non_integer_label(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\ngood\t\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data.tsv:2: empty 'label'"):
        list(TsvReader().read(path))
    path.write_text("sentence\tlabel\ngood\tpos\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data.tsv:2: label 'pos' is not an integer"):
        list(TsvReader(skip_label_indexing=True).read(path))


def test_tsv_header_only_or_empty_file_is_kd003(tmp_path):
    for content in ("", "sentence\tlabel\n", "sentence\tlabel\n\n"):
        path = tmp_path / "data.tsv"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DataError) as info:
            list(TsvReader().read(path))
        assert info.value.code == errors.EMPTY_DATA


def test_tsv_missing_file_is_kd004(tmp_path):
    with pytest.raises(DataError) as info:
        TsvReader().read(tmp_path / "nope.tsv")
    assert info.value.code == errors.DATA_NOT_FOUND


def test_tsv_text_to_instance_with_and_without_label():
    reader = TsvReader()
    assert set(reader.text_to_instance("a b", "1").fields) == {"tokens", "label"}
    assert set(reader.text_to_instance("a b").fields) == {"tokens"}


def test_tsv_reads_many_rows_in_chunks(tmp_path):
    path = tmp_path / "big.tsv"
    rows = [f"row {i} \t{i % 2}" for i in range(5000)]
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    instances = list(TsvReader().read(path))
    assert len(instances) == 5000
    assert [t.text for t in instances[4321]["tokens"].tokens] == ["row", "4321"]
    assert instances[4321]["label"].label == "1"


def test_tsv_is_registered():
    assert DatasetReader.by_name("tsv") is TsvReader


def test_tsv_bom_and_crlf_are_handled(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"\xef\xbb\xbfsentence\tlabel\r\ngood film \t1\r\n")
    (instance,) = TsvReader().read(path)
    assert [t.text for t in instance["tokens"].tokens] == ["good", "film"]
    assert instance["label"].label == "1"


def test_tsv_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t1\nbad \xff byte\t0\n")
    with pytest.raises(DataError) as info:
        list(TsvReader().read(path))
    assert info.value.line == 3 and "not valid UTF-8" in str(info.value)


BUNDLED = Path(__file__).parents[3] / "examples" / "data" / "sst2-sample"


def test_tsv_reads_the_bundled_sst2_sample():
    dev = list(TsvReader().read(BUNDLED / "dev.tsv"))
    assert len(dev) == 872
    assert sum(i["label"].label == "1" for i in dev) == 444
    assert [t.text for t in dev[0]["tokens"].tokens][:3] == ["it", "'s", "a"]
    train = list(TsvReader().read(BUNDLED / "train.tsv"))
    assert len(train) == 3368
    assert all(len(i["tokens"]) > 0 for i in train)


def test_tsv_on_error_reports_bad_lines_and_keeps_reading(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t1\nmissing\n\xff\t0\nno label\t\nfine\t0\n")
    seen: list[DataError] = []
    instances = list(TsvReader().read(path, on_error=seen.append))
    assert [i["label"].label for i in instances] == ["1", "0"]
    assert [(e.line, e.code) for e in seen] == [
        (3, errors.MISSING_COLUMN),
        (4, errors.BAD_DATA_LINE),
        (5, errors.MISSING_COLUMN),
    ]


def test_tsv_on_error_still_raises_for_header_and_empty_result(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"\xff\tlabel\ngood\t1\n")
    with pytest.raises(DataError, match="header line is not valid UTF-8"):
        list(TsvReader().read(path, on_error=lambda error: None))
    path.write_bytes(b"sentence\tlabel\nbad\n")
    with pytest.raises(DataError) as info:
        list(TsvReader().read(path, on_error=lambda error: None))
    assert info.value.code == errors.EMPTY_DATA


def test_tsv_without_a_header_reads_columns_by_position(tmp_path):
    import pytest

    from keel.common.errors import ConfigurationError
    from keel.data.dataset_readers.tsv import TsvReader

    path = tmp_path / "headless.tsv"
    path.write_text("a1\tgreat film\t1\na2\tdull\t0\n", encoding="utf-8")
    reader = TsvReader(header=False, text_column=1, label_column=2, id_column=0)
    instances = list(reader.read(str(path)))
    assert [[t.text for t in i["tokens"].tokens] for i in instances] == [
        ["great", "film"],
        ["dull"],
    ]
    assert [i["label"].label for i in instances] == ["1", "0"]
    assert [(i.source_id, i.source_line) for i in instances] == [("a1", 1), ("a2", 2)]
    with pytest.raises(ConfigurationError) as raised:
        TsvReader(header=False, text_column="sentence", label_column=1)
    assert "text_column" in str(raised.value) and "by position" in str(raised.value)
    with pytest.raises(ConfigurationError, match="0 or more"):
        TsvReader(text_column=-1)

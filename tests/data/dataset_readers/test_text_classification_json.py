import pytest

from keel.common import errors
from keel.common.errors import DataError
from keel.data.dataset_readers import DatasetReader, TextClassificationJsonReader
from keel.data.tokenizers import WordTokenizer


def test_json_reader_reads_lines_and_skips_blank_ones(fixtures_dir):
    instances = list(TextClassificationJsonReader().read(fixtures_dir / "tiny.jsonl"))
    assert len(instances) == 3
    assert [t.text for t in instances[2]["tokens"].tokens] == ["a", "good", "movie", "."]
    # Numeric labels become strings, so they share the vocabulary with string ones.
    assert [i["label"].label for i in instances] == ["1", "0", "1"]


def test_json_reader_custom_keys_tokenizer_and_unlabelled_lines(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"sentence": "Don\'t go", "y": 3}\n{"sentence": "ok"}\n', encoding="utf-8")
    reader = TextClassificationJsonReader(
        tokenizer=WordTokenizer(), text_key="sentence", label_key="y", skip_label_indexing=True
    )
    first, second = reader.read(path)
    assert [t.text for t in first["tokens"].tokens] == ["Do", "n't", "go"]
    assert first["label"].label == 3
    assert "label" not in second.fields


def test_json_reader_malformed_line_names_file_line_and_excerpt(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"text": "fine", "label": "1"}\n{"text": "broken, "label": 1}\n', encoding="utf-8"
    )
    with pytest.raises(DataError) as info:
        list(TextClassificationJsonReader().read(path))
    error = info.value
    assert error.code == errors.BAD_DATA_LINE
    assert (error.path, error.line) == (str(path), 2)
    assert f"{path}:2: not valid JSON" in str(error)
    assert '{"text": "broken, "label": 1}' in str(error)


def test_json_reader_refuses_nesting_too_deep_to_parse_with_its_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "fine"}\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(TextClassificationJsonReader().read(path))
    assert (info.value.code, info.value.line) == (errors.BAD_DATA_LINE, 2)
    assert "nested too deeply" in str(info.value)


def test_json_reader_missing_text_key_is_kd002(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"txt": "x", "label": "1"}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(TextClassificationJsonReader().read(path))
    assert info.value.code == errors.MISSING_COLUMN
    assert "'text'" in str(info.value) and "'txt'" in str(info.value) and ":1:" in str(info.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"text": 5}', "'text' must be a string"),
        ('{"text": "x", "label": [1]}', "label must be a string or number"),
    ],
)
def test_json_reader_wrong_shapes(tmp_path, line, message):
    path = tmp_path / "data.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        list(TextClassificationJsonReader().read(path))


def test_json_reader_empty_file_and_max_instances(tmp_path, fixtures_dir):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(TextClassificationJsonReader().read(path))
    assert info.value.code == errors.EMPTY_DATA
    reader = TextClassificationJsonReader(max_instances=1)
    assert len(list(reader.read(fixtures_dir / "tiny.jsonl"))) == 1


def test_json_reader_is_registered():
    assert DatasetReader.by_name("text_classification_json") is TextClassificationJsonReader


def test_json_reader_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "\xc3("}\n')
    with pytest.raises(DataError) as info:
        list(TextClassificationJsonReader().read(path))
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_json_reader_on_error_reports_bad_lines_and_keeps_reading(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"text": "a", "label": "x"}\n{oops\n{"label": "y"}\n\xff\n{"text": "b"}\n')
    seen: list[DataError] = []
    instances = list(TextClassificationJsonReader().read(path, on_error=seen.append))
    assert [[t.text for t in i["tokens"].tokens] for i in instances] == [["a"], ["b"]]
    assert [(e.line, e.code) for e in seen] == [
        (2, errors.BAD_DATA_LINE),
        (3, errors.MISSING_COLUMN),
        (4, errors.BAD_DATA_LINE),
    ]

from collections.abc import Iterator

import pytest

from keel.common import errors
from keel.common.errors import DataError
from keel.data.dataset_readers import DatasetReader
from keel.data.fields import MetadataField
from keel.data.instance import Instance


class _LinesReader(DatasetReader):
    """One instance per line, failing on a line that says "bad"."""

    def _read(self, file_path: str) -> Iterator[Instance]:
        with open(file_path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip() == "bad":
                    raise DataError("bad line", path=file_path, line=number, excerpt=line)
                yield self.text_to_instance(line.strip())

    def text_to_instance(self, text: str) -> Instance:  # type: ignore[override]
        return Instance({"text": MetadataField(text)})


def test_dataset_reader_missing_file_is_kd004_before_iteration(tmp_path):
    with pytest.raises(DataError) as info:
        _LinesReader().read(tmp_path / "missing.txt")
    assert info.value.code == errors.DATA_NOT_FOUND
    assert "missing.txt" in str(info.value)
    with pytest.raises(DataError) as info:
        _LinesReader().read(tmp_path)
    assert info.value.code == errors.DATA_NOT_FOUND and "directory" in str(info.value)


def test_dataset_reader_empty_file_is_kd003(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(_LinesReader().read(path))
    assert info.value.code == errors.EMPTY_DATA
    assert str(path) in str(info.value)


def test_dataset_reader_max_instances_stops_before_bad_lines(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a\nb\nbad\n", encoding="utf-8")
    texts = [i["text"].metadata for i in _LinesReader(max_instances=2).read(path)]
    assert texts == ["a", "b"]
    with pytest.raises(DataError, match=r"data.txt:3: bad line"):
        list(_LinesReader().read(path))


def test_dataset_reader_rejects_non_positive_max_instances():
    with pytest.raises(ValueError, match="max_instances"):
        _LinesReader(max_instances=0)


def test_read_lines_numbers_lines_across_batches_and_reports_a_bad_byte(tmp_path):
    from keel.data.dataset_readers.dataset_reader import read_lines

    # Over a megabyte, so lines come in several decoded batches; one bad byte in the second.
    lines = [f"line {i} é" for i in range(120_000)]
    data = "\ufeff" + "\r\n".join(lines[:100_000]) + "\n" + "\n".join(lines[100_000:])
    raw = bytearray(data.encode("utf-8"))
    bad_at = raw.index(b"line 110000 ")
    raw[bad_at : bad_at + 4] = b"l\xffne"
    path = tmp_path / "big.txt"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as raised:
        list(read_lines(str(path)))
    assert raised.value.line == 110_001
    errors_seen = []
    read = list(read_lines(str(path), errors_seen.append))
    assert [error.line for error in errors_seen] == [110_001]
    assert len(read) == 119_999
    assert read[0] == (1, "line 0 é")  # BOM and CR dropped
    assert read[99_999] == (100_000, "line 99999 é")
    assert read[-1] == (120_000, "line 119999 é")  # no final newline
    assert all(number == int(text.split()[1]) + 1 for number, text in read)

"""Readers refuse lines over their limit, naming file:line, without reading them whole."""

from __future__ import annotations

import pytest

from keel.common import errors
from keel.common.errors import DataError
from keel.data.dataset_readers.dataset_reader import read_lines
from keel.data.dataset_readers.tsv import TsvReader


def test_read_lines_refuses_a_line_over_the_limit_with_its_number(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"sentence\tlabel\nshort\t1\n" + b"x" * 5000 + b"\t0\nafter\t1\n")
    with pytest.raises(DataError) as raised:
        list(read_lines(str(path), max_line_bytes=1000))
    assert raised.value.code == errors.INPUT_TOO_LARGE
    assert raised.value.line == 3 and "longer than 1000 bytes" in str(raised.value)
    skipped = []
    lines = list(read_lines(str(path), skipped.append, max_line_bytes=1000))
    assert [number for number, _ in lines] == [1, 2, 4]  # the long line skipped, numbering kept
    assert [error.line for error in skipped] == [3]


def test_read_lines_takes_a_line_of_exactly_the_limit(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"a" * 1000 + b"\n" + b"b" * 1000)
    assert [len(line) for _, line in read_lines(str(path), max_line_bytes=1000)] == [1000, 1000]


def test_reader_default_limit_refuses_a_50_megabyte_line(tmp_path):
    path = tmp_path / "huge.tsv"
    with open(path, "wb") as handle:
        handle.write(b"sentence\tlabel\n")
        handle.write(b"word " * 10_000_000 + b"\t1\n")
    with pytest.raises(DataError) as raised:
        list(TsvReader().read(path))
    assert raised.value.code == errors.INPUT_TOO_LARGE and raised.value.line == 2


def test_every_line_reader_takes_its_limit_from_the_config(tmp_path):
    from keel.common.from_params import build
    from keel.data.dataset_readers.dataset_reader import DatasetReader

    tsv = tmp_path / "data.tsv"
    tsv.write_text("sentence\tlabel\n" + "word " * 100 + "\t1\n", encoding="utf-8")
    conllu = tmp_path / "data.conllu"
    conllu.write_text("1\t" + "w" * 300 + "\tw\tNOUN\tNN\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    for config, path in (
        ({"type": "tsv", "max_line_bytes": 100}, tsv),
        ({"type": "conllu", "max_line_bytes": 100}, conllu),
    ):
        reader = build(DatasetReader, config)
        with pytest.raises(DataError) as raised:
            list(reader.read(path))
        assert raised.value.code == errors.INPUT_TOO_LARGE, config
        assert list(build(DatasetReader, {**config, "max_line_bytes": 10_000}).read(path))

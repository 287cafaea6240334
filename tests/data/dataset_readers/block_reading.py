"""Test helper: a CoNLL reader read block by block and line by line, for comparing the two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from keel.common.errors import DataError
from keel.data.dataset_readers import dataset_reader
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.instance import Instance


def read_both_ways(
    make_reader: Callable[[], DatasetReader],
    path: Path,
    describe: Callable[[Instance], Any],
    on_error: bool,
) -> list[tuple[list[Any], list[tuple[Any, ...]]]]:
    """[block by block, line by line]: each (``describe`` of every instance, or the error that
    stopped the read; the errors reported to ``on_error``). Block by block reads 64 bytes at a
    time, so blocks straddle reads; line by line gets every line alone from ``read_runs``,
    because its search for a blank line may run past ``max_line_bytes``."""
    results = []
    for run_bytes, search_bytes in ((64, 4096), (64, 2**40)):
        reader = make_reader()
        seen: list[DataError] = []
        with (
            mock.patch.object(dataset_reader, "_RUN_BYTES", run_bytes),
            mock.patch.object(dataset_reader, "_RUN_SEARCH_BYTES", search_bytes),
        ):
            try:
                read = [
                    describe(instance)
                    for instance in reader.read(path, on_error=seen.append if on_error else None)
                ]
            except DataError as error:
                read = [("error", error.line, error.code, error.message)]
        results.append((read, [(error.line, error.code, error.message) for error in seen]))
    return results

"""read_runs: whole runs of lines where it can, read_lines's exact lines and errors where not."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from keel.common.errors import DataError
from keel.data.dataset_readers import dataset_reader
from keel.data.dataset_readers.dataset_reader import TextRun, read_lines, read_runs


def _as_lines(items) -> list[tuple[int, str]]:
    """read_runs's items as the (number, line) pairs they stand for."""
    lines = []
    for item in items:
        if isinstance(item, TextRun):
            rows = item.text.split("\n")
            if item.text.endswith("\n"):
                rows.pop()
            lines.extend(enumerate(rows, start=item.line))
        else:
            lines.append(item)
    return lines


def _both(path: Path) -> tuple[tuple, tuple]:
    """(lines, errors) from read_lines and from read_runs, errors as (line, message)."""
    results = []
    for read in (read_lines, read_runs):
        seen: list[DataError] = []
        items = list(read(str(path), seen.append))
        lines = items if read is read_lines else _as_lines(items)
        results.append((lines, [(error.line, error.message) for error in seen]))
    return results[0], results[1]


_LINE = st.sampled_from(
    ["", "", "", " ", "word", "1\tI\tI\tPRON", "# sent_id = 1", "é ✓", "x\r", "\xff"]
)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=80),
    bom=st.booleans(),
    final_newline=st.booleans(),
    sizes=st.sampled_from([(8, 16), (16, 64), (64, 64)]),
)
def test_read_runs_gives_exactly_the_lines_and_errors_of_read_lines(
    lines, bom, final_newline, sizes
):
    # Tiny read and search sizes, so runs are cut, carried over and given up on many times.
    raw = "\n".join(lines).encode("utf-8").replace(b"\xc3\xbf", b"\xff")  # "\xff": a bad byte
    if final_newline and lines:
        raw += b"\n"
    if bom:
        raw = b"\xef\xbb\xbf" + raw
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.txt"
        path.write_bytes(raw)
        with (
            mock.patch.object(dataset_reader, "_RUN_BYTES", sizes[0]),
            mock.patch.object(dataset_reader, "_RUN_SEARCH_BYTES", sizes[1]),
        ):
            by_lines, by_runs = _both(path)
    assert by_runs == by_lines


def test_read_runs_reads_blank_line_separated_megabytes_as_runs(tmp_path):
    blocks = [f"# block {i}\nword {i} é\nmore {i}" for i in range(60_000)]
    path = tmp_path / "blocks.txt"
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    items = list(read_runs(str(path)))
    assert len(items) > 1 and all(isinstance(item, TextRun) for item in items)
    assert _as_lines(items) == list(read_lines(str(path)))


def test_read_runs_falls_back_to_lines_without_blank_lines_or_with_crlf(tmp_path):
    # Over the search size with no blank line: no run can be cut, so every line comes alone.
    path = tmp_path / "flat.txt"
    path.write_text("".join(f"line {i}\n" for i in range(600_000)), encoding="utf-8")
    items = list(read_runs(str(path)))
    assert not any(isinstance(item, TextRun) for item in items)
    assert items == list(read_lines(str(path)))
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a\r\nb\r\n\r\nc\r\n")
    assert list(read_runs(str(crlf))) == [(1, "a"), (2, "b"), (3, ""), (4, "c")]


def test_read_runs_reads_line_by_line_when_the_line_limit_is_below_a_run(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"short\n\n" + b"x" * 2000 + b"\n\nend\n")
    seen: list[DataError] = []
    items = list(read_runs(str(path), seen.append, max_line_bytes=1000))
    assert items == [(1, "short"), (2, ""), (4, ""), (5, "end")]
    assert [error.line for error in seen] == [3]


def test_read_runs_of_a_file_of_only_a_byte_order_mark_is_one_empty_line(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf")
    assert list(read_runs(str(path))) == list(read_lines(str(path))) == [(1, "")]

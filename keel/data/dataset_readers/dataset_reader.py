"""The ``DatasetReader`` base class: a file -> a stream of instances."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from keel.common import errors
from keel.common.errors import DataError
from keel.common.registry import Registrable
from keel.data.instance import Instance
from keel.data.token_indexers.single_id_token_indexer import SingleIdTokenIndexer
from keel.data.token_indexers.token_indexer import TokenIndexer


class DatasetReader(Registrable):
    """Reads a data file into instances. Subclasses implement ``_read`` and ``text_to_instance``.

    ``read`` checks that the file exists, stops after ``max_instances``, and raises when the file
    yields nothing, so a wrong path or an empty split fails loudly instead of training on air.
    A line longer than ``max_line_bytes`` is refused with its file:line, never read into memory.
    """

    def __init__(self, max_instances: int | None = None, max_line_bytes: int | None = None) -> None:
        if max_instances is not None and max_instances < 1:
            raise ValueError(f"max_instances must be at least 1, got {max_instances}")
        self.max_instances = max_instances
        #: the longest line this reader takes (``read_lines``), refused with file:line beyond
        self.max_line_bytes = max_line_bytes if max_line_bytes is not None else MAX_LINE_BYTES

    def read(self, file_path: str | Path) -> Iterator[Instance]:
        """Instances from ``file_path``, lazily (a missing file fails now, not on first use)."""
        path = existing_file(file_path)
        return self._read_checked(path, self._read(str(path)))

    def _read_checked(self, path: Path, instances: Iterator[Instance]) -> Iterator[Instance]:
        """``instances`` cut at ``max_instances``; a ``KD003`` error if there are none."""
        if self.max_instances is not None:
            instances = islice(instances, self.max_instances)
        count = 0
        for instance in instances:
            count += 1
            yield instance
        if count == 0:
            raise DataError(
                "no instances in this file (is it empty, or only a header?)",
                path=str(path),
                code=errors.EMPTY_DATA,
            )

    def _read(self, file_path: str) -> Iterator[Instance]:
        """Yield the instances of ``file_path``; bad lines raise ``DataError(path=, line=)``."""
        raise NotImplementedError

    def read_records(self, file_path: str | Path) -> Iterator[dict[str, Any]]:
        """The raw records of ``file_path`` as predictors take them (``text_to_instance(**r)``).

        Golden predictions store these, so ``verify`` re-runs tokenization too.
        """
        raise NotImplementedError(f"{type(self).__name__} does not provide raw records")

    def text_to_instance(self, *inputs, **kwargs) -> Instance:
        """One instance from raw inputs; used by ``_read`` and by predictors."""
        raise NotImplementedError


def existing_file(file_path: str | Path) -> Path:
    """``file_path`` as a Path, or a ``KD004`` DataError when it is not a file."""
    path = Path(file_path)
    if not path.is_file():
        message = "is a directory, not a data file" if path.is_dir() else "data file not found"
        raise DataError(message, path=str(path), code=errors.DATA_NOT_FOUND)
    return path


#: Readers build instances this many at a time with the garbage collector paused: large enough
#: for batch work to pay off, small enough that ``max_instances`` and laziness still hold.
CHUNK_SIZE = 2048

#: The longest line a reader takes (8 MiB): a data line is a sentence or a document, and a
#: line of gigabytes would be read whole into memory before anything could refuse it.
MAX_LINE_BYTES = 8 * 1024 * 1024


def read_lines(
    file_path: str,
    on_error: Callable[[DataError], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` pairs of a UTF-8 text file, without line endings or a BOM.

    Decodes line by line, so a bad byte is reported with its line number: a ``DataError``
    raised, or passed to ``on_error`` and the line skipped. A line over ``max_line_bytes`` is
    such an error too (``KS002``), found after reading at most that many bytes of it.
    """
    with open(file_path, "rb") as handle:
        yield from _numbered_lines(handle, file_path, on_error, max_line_bytes)


def _numbered_lines(
    handle: BinaryIO,
    file_path: str,
    on_error: Callable[[DataError], None] | None,
    max_line_bytes: int,
    line_number: int = 0,
) -> Iterator[tuple[int, str]]:
    """``read_lines`` over an open binary ``handle`` whose next line is ``line_number + 1``."""
    limit = max_line_bytes + 1
    readline = handle.readline
    while raw := readline(limit):
        line_number += 1
        if len(raw) == limit and not raw.endswith(b"\n"):
            while (rest := readline(_SKIP)) and not rest.endswith(b"\n"):
                pass  # the rest of the long line, without keeping it
            too_long = DataError(
                f"line is longer than {max_line_bytes} bytes; refusing it",
                path=file_path,
                line=line_number,
                code=errors.INPUT_TOO_LARGE,
            )
            if on_error is None:
                raise too_long
            on_error(too_long)
            continue
        if line_number == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad_line = DataError(
                f"not valid UTF-8 ({error.reason} at byte {error.start} of the line)",
                path=file_path,
                line=line_number,
                excerpt=raw.decode("utf-8", errors="replace").rstrip("\r\n"),
            )
            if on_error is None:
                raise bad_line from None
            on_error(bad_line)
            continue
        yield line_number, line.rstrip("\r\n")


@dataclass(frozen=True, slots=True)
class TextRun:
    """Whole lines of a file read at once: ``text`` starts at line ``line`` and ends at a blank
    line (or the end of the file). Every line is valid UTF-8, ends in ``\\n`` alone and is
    within the reader's ``max_line_bytes``; the file's BOM is removed. ``data`` is the same
    run as bytes, for parsers that work on bytes."""

    line: int
    text: str
    data: bytes


def read_runs(
    file_path: str,
    on_error: Callable[[DataError], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[TextRun | tuple[int, str]]:
    """The file as ``TextRun``s where it can, and as ``read_lines`` pairs where it cannot.

    For readers of blank-line-separated blocks (CoNLL formats), which parse a run block by
    block with string methods in C instead of a Python step per line. A stretch of the file
    with ``\\r`` line endings or undecodable bytes, or with no blank line for megabytes, comes
    as numbered lines instead, with exactly ``read_lines``'s numbers and errors.
    """
    if max_line_bytes < _RUN_BYTES + _RUN_SEARCH_BYTES:
        # A run could then hold a line over the limit; only read_lines refuses it as it should.
        yield from read_lines(file_path, on_error, max_line_bytes)
        return
    with open(file_path, "rb") as handle:
        line_number = 1  # of the buffer's first line
        consumed = 0  # bytes before the buffer
        buffer = b""
        while True:
            data = handle.read(_RUN_BYTES)
            buffer = buffer + data if buffer else data
            if data:
                cut = buffer.rfind(b"\n\n")
                if cut < 0:
                    if len(buffer) <= _RUN_SEARCH_BYTES:
                        continue
                    # No blank line for megabytes: not a block format; go on line by line.
                    handle.seek(consumed)
                    yield from _numbered_lines(
                        handle, file_path, on_error, max_line_bytes, line_number - 1
                    )
                    return
                piece, buffer = buffer[: cut + 2], buffer[cut + 2 :]
            else:
                piece, buffer = buffer, b""
            if piece:
                content = piece[3:] if line_number == 1 and piece.startswith(_BOM) else piece
                text = _decoded(content)
                if text:
                    yield TextRun(line_number, text, content)
                else:  # see _decoded; or a file of only a BOM, one empty line to read_lines
                    yield from _numbered_lines(
                        io.BytesIO(piece), file_path, on_error, max_line_bytes, line_number - 1
                    )
                line_number += piece.count(b"\n")
                consumed += len(piece)
            if not data:
                return


def _decoded(piece: bytes) -> str | None:
    """``piece`` as text, or None where only line-by-line reading reports it right."""
    if b"\r" in piece:
        return None
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return None


_BOM = b"\xef\xbb\xbf"
# read_runs reads this much at a time, and looks this far for a blank line before giving up.
_RUN_BYTES = 1024 * 1024
_RUN_SEARCH_BYTES = 4 * 1024 * 1024
_SKIP = 1024 * 1024


def parse_json_object(line: str, file_path: str, line_number: int) -> dict[str, Any]:
    """One JSON-lines record, or a ``DataError`` at ``file_path:line_number`` saying why not.

    Invalid JSON names the parser's reason and column, nesting deeper than the parser can
    follow is refused rather than crashing, and a value that is not an object names its type.
    """
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(
            f"not valid JSON: {error.msg} (column {error.colno})",
            path=file_path,
            line=line_number,
            excerpt=line,
        ) from None
    except RecursionError:
        raise DataError(
            "JSON nested too deeply to read", path=file_path, line=line_number, excerpt=line
        ) from None
    if not isinstance(item, dict):
        raise DataError(
            f"expected a JSON object per line, got {type(item).__name__}",
            path=file_path,
            line=line_number,
            excerpt=line,
        )
    return item


def default_token_indexers(
    token_indexers: dict[str, TokenIndexer] | None,
) -> dict[str, TokenIndexer]:
    """``token_indexers`` or ``{"tokens": single_id}``: readers' shared default."""
    return token_indexers if token_indexers is not None else {"tokens": SingleIdTokenIndexer()}

"""Streaming sha256 of files (data, archive members, sources) and ``sha256sum`` check lines.

A training run records the digest and size of every file it reads, so a later run (or another
machine) can tell whether it saw the same bytes. Hashing streams through one reusable buffer with
``readinto``; OpenSSL's sha256 releases the GIL on large updates, so this runs at disk speed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import IO, Any

from keel.common import errors
from keel.common.errors import DataError

#: Large enough that per-call overhead vanishes, small enough to stay in L2/L3 cache.
DEFAULT_BUFFER_SIZE = 1 << 20


@dataclass(frozen=True)
class FileHash:
    """The sha256 (hex) and size in bytes of one file, as recorded in a manifest."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileHash:
        return cls(path=str(data["path"]), sha256=str(data["sha256"]), size=int(data["size"]))

    def sha256sum_line(self) -> str:
        """This hash as one line of ``sha256sum`` output (without the newline)."""
        return sha256sum_line(self.sha256, self.path)


def hash_stream(stream: IO[bytes], buffer_size: int = DEFAULT_BUFFER_SIZE) -> tuple[str, int]:
    """The sha256 hex digest and byte count of everything left in a binary stream."""
    digest = hashlib.sha256()
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    size = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        # Streams without readinto (some wrappers) still work, with one allocation per chunk.
        while chunk := stream.read(buffer_size):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
    while count := readinto(buffer):
        digest.update(view[:count])
        size += count
    return digest.hexdigest(), size


def hash_file(path: str | os.PathLike[str], buffer_size: int = DEFAULT_BUFFER_SIZE) -> FileHash:
    """Stream a file through sha256. Raises DataError (KD004) when it is missing or unreadable."""
    name = os.fspath(path)
    try:
        with open(name, "rb", buffering=0) as stream:
            if stat.S_ISDIR(os.fstat(stream.fileno()).st_mode):
                raise IsADirectoryError(name)
            sha256, size = hash_stream(stream, buffer_size)
    except FileNotFoundError:
        raise DataError("no such file", path=name, code=errors.DATA_NOT_FOUND) from None
    except IsADirectoryError:
        raise DataError(
            "is a directory, not a file", path=name, code=errors.DATA_NOT_FOUND
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise DataError(f"cannot read: {reason}", path=name, code=errors.DATA_NOT_FOUND) from None
    return FileHash(path=name, sha256=sha256, size=size)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes: the one file hash keel computes (``hash_file``)."""
    return hash_file(path).sha256


def hash_files(paths: Iterable[str | os.PathLike[str]]) -> list[FileHash]:
    """hash_file for each path, in order."""
    return [hash_file(path) for path in paths]


def sha256sum_line(sha256: str, name: str | bytes) -> str:
    """One line as GNU ``sha256sum`` prints it, so ``sha256sum -c`` accepts it.

    GNU coreutils escapes a backslash, newline or carriage return in the name and then marks the
    line with a leading backslash; every other name is printed as is.
    """
    text = os.fsdecode(name) if isinstance(name, bytes) else name
    if any(char in text for char in "\\\n\r"):
        escaped = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{sha256}  {escaped}"
    return f"{sha256}  {text}"


def stdin_hash(buffer_size: int = DEFAULT_BUFFER_SIZE) -> FileHash:
    """Hash standard input, named ``-`` as sha256sum does."""
    sha256, size = hash_stream(sys.stdin.buffer, buffer_size)
    return FileHash(path="-", sha256=sha256, size=size)

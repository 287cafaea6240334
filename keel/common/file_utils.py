"""Crash-safe file writes: a file (or directory) only appears under its final name when complete.

Every writer goes to a temporary sibling, flushes and fsyncs it, renames it over the target (an
atomic step on POSIX) and then fsyncs the parent directory so the rename itself survives a power
loss. A reader therefore sees either the old content or the new one, never a partial file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PathLike = str | os.PathLike[str]


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys and UTF-8 text: equal values give equal strings, the form
    every keel digest and cache key is computed from."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fsync_directory(path: PathLike) -> None:
    """Make a directory's entries (e.g. a rename into it) durable; a no-op where unsupported."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and Windows) cannot fsync a directory
    finally:
        os.close(fd)


def fsync_file(path: PathLike) -> None:
    """Flush a closed file's content to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; publish it only on success.

    For libraries that write to a path themselves (``safetensors.torch.save_file``,
    ``torch.save``). If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temporary_sibling(target)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename; this honours the umask.
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temp
        fsync_file(temp)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_directory(target.parent)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """``open`` for writing whose result only replaces ``path`` if the block completes."""
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not supported")
    with atomic_path(path) as temp:
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding}
        with open(temp, mode, **kwargs) as handle:
            yield handle
            handle.flush()


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)


def atomic_write_json(path: PathLike, value: Any, indent: int | None = 2) -> None:
    """Replace ``path`` with ``value`` as JSON atomically (serialized before any write)."""
    atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` (which must not exist) on success.

    Every file in it is fsynced before the rename, so a directory under its final name is
    always complete. If the block raises, the temporary directory is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temporary_sibling(target)
    temp.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
    try:
        yield temp
        for child in temp.rglob("*"):
            if child.is_file():
                fsync_file(child)
        fsync_directory(temp)
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_directory(target.parent)


def _temporary_sibling(target: Path) -> Path:
    """A fresh hidden name next to ``target`` that ``remove_stale_temporaries`` recognises."""
    return target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"


def remove_stale_temporaries(directory: PathLike) -> list[Path]:
    """Delete leftovers of interrupted atomic writes (``.name.*.tmp``) in ``directory``."""
    removed: list[Path] = []
    root = Path(directory)
    if not root.is_dir():
        return removed
    for child in root.glob(".*.tmp"):
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
        removed.append(child)
    return removed

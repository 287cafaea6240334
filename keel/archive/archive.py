"""``model.tar.gz``: written atomically, opened without trusting a single byte of it.

Layout (format version 2; ``keel/archive/manifest.py`` has the history)::

    manifest.json           format version, versions, sha256 + size of every other member, ...
    config.json             the resolved config
    weights.safetensors     the model's state dict (never pickle)
    vocabulary/             AllenNLP's vocabulary directory format
    ...                     later sections (golden predictions, tokenizer files) add members

Opening an archive refuses anything but regular files and directories, any member whose path
would land outside the target folder or that appears twice, archives over the size, ratio or
member-count limits, a gzip stream whose checksum does not match, and members whose hash differs
from the manifest.

Every reader starts from a snapshot (``archive_snapshot``): the archive's bytes read once into a
private folder, hashed as they are copied. The signature check, the manifest and the extraction
all read that copy, so an archive swapped on disk between the check and the extraction is never
seen. Temporary folders are removed on success, on error and (through the CLI's signal
handlers) on SIGTERM and SIGINT.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from keel.archive.manifest import FileEntry, Manifest
from keel.common import errors
from keel.common.errors import ArchiveError, KeelError
from keel.common.file_utils import atomic_path
from keel.common.filenames import (
    MANIFEST_NAME,
)
from keel.common.hashing import sha256_file

MAX_MEMBERS = 20_000
# Sized for NLP models: a large transformer's float32 weights are a few GiB.
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_ARCHIVE_BYTES = 8 * 1024**3
# Model weights barely compress (float32 noise: about 1.1x), vocabularies and configs compress
# 3-10x; a bomb compresses 1000x. The ratio applies above the floor, so small archives of text
# are never refused for compressing well.
MAX_RATIO = 50.0
RATIO_FLOOR_BYTES = 64 * 1024**2
MAX_MANIFEST_BYTES = 64 * 1024**2
# No tar header needs more; member data is read in chunks of _CHUNK.
MAX_SINGLE_READ = 64 * 1024**2
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Guards against decompression bombs and absurd archives.

    An archive may unpack to at most ``max_total_bytes`` and at most ``max_ratio`` times its
    own size (or ``ratio_floor_bytes``, whichever is larger), in at most ``max_members``
    members; the archive file itself may be at most ``max_archive_bytes``.
    """

    max_members: int = MAX_MEMBERS
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_ratio: float = MAX_RATIO
    ratio_floor_bytes: int = RATIO_FLOOR_BYTES
    max_archive_bytes: int = MAX_ARCHIVE_BYTES

    def unpacked_budget(self, archive_bytes: int) -> int:
        """How many bytes an archive of ``archive_bytes`` may unpack to."""
        by_ratio = max(self.ratio_floor_bytes, int(self.max_ratio * archive_bytes))
        return min(self.max_total_bytes, by_ratio)


@dataclass(frozen=True)
class ArchiveSnapshot:
    """An archive's bytes as read once: a private copy and its sha256 (see the module doc)."""

    source: Path
    path: Path
    sha256: str
    size: int


@contextlib.contextmanager
def archive_snapshot(
    archive_path: str | os.PathLike[str] | ArchiveSnapshot, limits: ArchiveLimits | None = None
) -> Iterator[ArchiveSnapshot]:
    """A private copy of ``archive_path``, read and hashed in one pass; removed on exit.

    Given a snapshot already, yields it unchanged (callers may pass either)."""
    if isinstance(archive_path, ArchiveSnapshot):
        yield archive_path
        return
    limits = limits or ArchiveLimits()
    source = Path(archive_path)
    with tempfile.TemporaryDirectory(prefix="keel-archive-") as directory:
        copy = Path(directory) / "archive.tar.gz"
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed below, after the fstat
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArchiveError(
                f"{source}: no such archive", code=errors.ARCHIVE_NOT_FOUND
            ) from None
        except OSError as error:
            raise ArchiveError(
                f"{source}: cannot read the archive ({error})", code=errors.ARCHIVE_NOT_FOUND
            ) from error
        digest = hashlib.sha256()
        size = 0
        with handle, open(copy, "wb") as out:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ArchiveError(f"{source}: not a regular file", code=errors.ARCHIVE_NOT_FOUND)
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if size > limits.max_archive_bytes:
                    raise ArchiveError(
                        f"{source}: larger than {limits.max_archive_bytes} bytes; refusing it "
                        "(raise ArchiveLimits.max_archive_bytes for a larger model)",
                        code=errors.ARCHIVE_TOO_LARGE,
                    )
                digest.update(chunk)
                out.write(chunk)
        yield ArchiveSnapshot(source, copy, digest.hexdigest(), size)


def describe_files(root: Path) -> dict[str, FileEntry]:
    """sha256 and size of every file below ``root``, by POSIX relative path, sorted."""
    files: dict[str, FileEntry] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            name = path.relative_to(root).as_posix()
            if name == MANIFEST_NAME:
                continue
            files[name] = FileEntry(sha256_file(path), path.stat().st_size)
    return files


def write_archive(staging: Path, destination: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Pack the files in ``staging`` with ``manifest`` (gaining per-file hashes) into a tar.gz.

    Members are added in sorted order with fixed metadata, so the same content gives the same
    member list; the file appears under its final name only when complete.
    """
    destination = Path(destination)
    manifest.files = describe_files(staging)
    (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    names = [MANIFEST_NAME, *manifest.files]
    with atomic_path(destination) as temp, tarfile.open(temp, "w:gz") as tar:
        for name in names:
            path = staging / name
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o644
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    return destination


def _safe_member_path(target: Path, name: str) -> Path:
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or ".." in pure.parts or "\\" in name:
        raise ArchiveError(
            f"refusing archive member {name!r}: its path leaves the archive folder",
            code=errors.ARCHIVE_UNSAFE_MEMBER,
        )
    resolved = (target / pure).resolve()
    if os.path.commonpath([resolved, target.resolve()]) != str(target.resolve()):
        raise ArchiveError(
            f"refusing archive member {name!r}: it resolves outside the archive folder",
            code=errors.ARCHIVE_UNSAFE_MEMBER,
        )
    return resolved


_READ_ERRORS = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    OSError,
    ValueError,  # e.g. a member name with a NUL byte
    UnicodeError,
)


class _BoundedStream:
    """The decompressed stream of an archive, refusing to yield more than a budget.

    tarfile reads long-name and pax headers with one ``read`` of the size the header declares,
    so a tiny gzip could otherwise make it allocate gigabytes before any member is seen.
    """

    def __init__(self, raw: gzip.GzipFile, budget: int, shown: Path) -> None:
        self._raw = raw
        self._budget = budget
        self._shown = shown

    def _refuse(self, what: str) -> ArchiveError:
        return ArchiveError(
            f"{self._shown}: {what}; refusing it (possible decompression bomb)",
            code=errors.ARCHIVE_TOO_LARGE,
        )

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_SINGLE_READ:
            raise self._refuse(f"a tar header asks for a read of {size} bytes")
        if self._raw.tell() + size > self._budget:
            raise self._refuse(f"it decompresses to more than {self._budget} bytes")
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._raw.seek(offset, whence)
        if position > self._budget:
            raise self._refuse(f"it decompresses to more than {self._budget} bytes")
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def drain(self) -> None:
        """Read the gzip stream to its end, so its CRC and length are checked: tarfile stops at
        the tar end blocks, before the gzip trailer, and a flipped bit would go unnoticed."""
        while self._raw.read(_CHUNK):
            if self._raw.tell() > self._budget:
                raise self._refuse(f"it decompresses to more than {self._budget} bytes")

    def close(self) -> None:
        self._raw.close()


@contextlib.contextmanager
def _open_tar(archive_path: Path, shown: Path, limits: ArchiveLimits) -> Iterator[tarfile.TarFile]:
    unpacked = limits.unpacked_budget(archive_path.stat().st_size)
    # Room for headers and block padding on top of the members' declared sizes.
    budget = unpacked + (limits.max_members + 2) * 2 * tarfile.BLOCKSIZE + _CHUNK
    with gzip.GzipFile(archive_path, "rb") as raw:
        stream = _BoundedStream(raw, budget, shown)
        with tarfile.open(fileobj=stream, mode="r:") as tar:  # type: ignore[call-overload]
            yield tar


def _located(archive: str | os.PathLike[str] | ArchiveSnapshot) -> tuple[Path, Path]:
    """(the file to read, the path messages name): a snapshot is read from its private copy
    but named by the path the user gave."""
    if isinstance(archive, ArchiveSnapshot):
        return archive.path, archive.source
    path = Path(archive)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such archive", code=errors.ARCHIVE_NOT_FOUND)
    return path, path


def extract_archive(
    archive: str | os.PathLike[str] | ArchiveSnapshot,
    target: str | os.PathLike[str],
    limits: ArchiveLimits,
) -> None:
    """Extract only regular files and directories, each inside ``target``, within ``limits``."""
    archive_path, shown = _located(archive)
    target = Path(target)
    unpacked = limits.unpacked_budget(archive_path.stat().st_size)
    try:
        with _open_tar(archive_path, shown, limits) as tar:
            total = 0
            seen: set[str] = set()
            for member in tar:
                if len(seen) >= limits.max_members:
                    raise ArchiveError(
                        f"{shown}: more than {limits.max_members} members; refusing it",
                        code=errors.ARCHIVE_TOO_LARGE,
                    )
                name = PurePosixPath(member.name.removeprefix("./")).as_posix()
                if name in seen:
                    raise ArchiveError(
                        f"refusing archive member {member.name!r}: it appears twice (which copy "
                        "is meant is ambiguous)",
                        code=errors.ARCHIVE_UNSAFE_MEMBER,
                    )
                seen.add(name)
                destination = _safe_member_path(target, member.name)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    kind = (
                        "symbolic link"
                        if member.issym()
                        else "hard link"
                        if member.islnk()
                        else "device or special file"
                    )
                    raise ArchiveError(
                        f"refusing archive member {member.name!r}: a {kind}; archives hold only "
                        "regular files",
                        code=errors.ARCHIVE_UNSAFE_MEMBER,
                    )
                total += member.size
                if total > unpacked:
                    raise ArchiveError(
                        f"{shown}: unpacks to more than {unpacked} bytes "
                        f"({archive_path.stat().st_size} packed; limits: {limits.max_ratio:g}x "
                        f"its size above {limits.ratio_floor_bytes}, at most "
                        f"{limits.max_total_bytes}); refusing it (possible decompression bomb)",
                        code=errors.ARCHIVE_TOO_LARGE,
                    )
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
            stream = tar.fileobj
            assert isinstance(stream, _BoundedStream)
            stream.drain()
    except KeelError:
        raise
    except _READ_ERRORS as error:
        raise ArchiveError(
            f"{shown}: corrupt or truncated archive ({type(error).__name__}: {error})",
            code=errors.ARCHIVE_CORRUPT,
        ) from error


def read_member_bytes(
    archive: str | os.PathLike[str] | ArchiveSnapshot,
    name: str,
    *,
    max_bytes: int = MAX_MANIFEST_BYTES,
) -> bytes:
    """The bytes of one regular member (at most ``max_bytes``), read without extracting."""
    archive_path, shown = _located(archive)
    try:
        with _open_tar(archive_path, shown, ArchiveLimits()) as tar:
            for member in tar:
                if member.name.removeprefix("./") != name:
                    continue
                if not member.isfile():
                    raise ArchiveError(
                        f"refusing archive member {member.name!r}: not a regular file (links "
                        "and devices are refused)",
                        code=errors.ARCHIVE_UNSAFE_MEMBER,
                    )
                if member.size > max_bytes:
                    raise ArchiveError(
                        f"{shown}: {name} is {member.size} bytes, over the "
                        f"{max_bytes}-byte limit; refusing it",
                        code=errors.ARCHIVE_TOO_LARGE,
                    )
                handle = tar.extractfile(member)
                assert handle is not None
                with handle:
                    return handle.read()
    except KeelError:
        raise
    except _READ_ERRORS as error:
        raise ArchiveError(
            f"{shown}: corrupt or truncated archive ({type(error).__name__}: {error})",
            code=errors.ARCHIVE_CORRUPT,
        ) from error
    suffix = "; not a keel archive" if name == MANIFEST_NAME else ""
    raise ArchiveError(
        f"{shown}: no regular file {name}{suffix}", code=errors.ARCHIVE_MISSING_MEMBER
    )


def read_manifest(archive_path: str | os.PathLike[str]) -> Manifest:
    """The manifest of an archive, read within the archive limits without extracting anything."""
    return Manifest.from_bytes(
        read_member_bytes(archive_path, MANIFEST_NAME), f"{archive_path}: {MANIFEST_NAME}"
    )


@dataclass
class IntegrityReport:
    """Differences between the files in an extracted archive and its manifest."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.unexpected)

    def describe(self) -> str:
        parts = []
        if self.changed:
            parts.append("content differs from the manifest: " + ", ".join(self.changed))
        if self.missing:
            parts.append("listed in the manifest but absent: " + ", ".join(self.missing))
        if self.unexpected:
            parts.append("present but not in the manifest: " + ", ".join(self.unexpected))
        return "; ".join(parts)


def check_integrity(root: Path, manifest: Manifest) -> IntegrityReport:
    """Every member of the extracted archive at ``root`` against the manifest's hashes."""
    expected = manifest.files
    report = IntegrityReport()
    actual = describe_files(root)
    for name, entry in sorted(expected.items()):
        found = actual.get(name)
        if found is None:
            report.missing.append(name)
        elif found.sha256 != entry.sha256:
            report.changed.append(name)
    report.unexpected.extend(sorted(set(actual) - set(expected)))
    return report


@contextlib.contextmanager
def opened_archive(
    archive: str | os.PathLike[str] | ArchiveSnapshot,
    *,
    limits: ArchiveLimits | None = None,
    check_hashes: bool = True,
) -> Iterator[tuple[Path, Manifest]]:
    """Extract into a private temporary folder, check it, yield (folder, manifest), clean up.

    ``archive``: a path (snapshotted here) or a snapshot taken earlier, e.g. by the caller that
    checked its signature, so that both read the same bytes."""
    limits = limits or ArchiveLimits()
    with (
        archive_snapshot(archive, limits) as snapshot,
        tempfile.TemporaryDirectory(prefix="keel-archive-") as directory,
    ):
        root = Path(directory)
        shown = snapshot.source
        extract_archive(snapshot, root, limits)
        manifest_path = root / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ArchiveError(
                f"{shown}: no manifest.json; not a keel archive",
                code=errors.ARCHIVE_MISSING_MEMBER,
            )
        manifest = Manifest.from_bytes(manifest_path.read_bytes(), f"{shown}: {MANIFEST_NAME}")
        if check_hashes:
            report = check_integrity(root, manifest)
            if not report.ok:
                raise ArchiveError(
                    f"{shown}: refusing a tampered or corrupt archive: {report.describe()}",
                    code=errors.ARCHIVE_HASH_MISMATCH,
                )
        yield root, manifest

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from keel.archive.archive import (
    ArchiveLimits,
    opened_archive,
    read_manifest,
    write_archive,
)
from keel.archive.manifest import FORMAT_VERSION, Manifest
from keel.common import errors
from keel.common.errors import ArchiveError


def make_archive(tmp_path: Path, files: dict[str, bytes] | None = None) -> Path:
    staging = tmp_path / "staging"
    staging.mkdir()
    for name, content in (files or {"config.json": b"{}", "vocabulary/tokens.txt": b"a\n"}).items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(content)
    return write_archive(staging, tmp_path / "model.tar.gz", Manifest())


def hostile_archive(tmp_path: Path, add) -> Path:
    path = tmp_path / "hostile.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        manifest = json.dumps({"format_version": 1, "files": {}}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        add(tar)
    return path


def regular(name: str, content: bytes = b"x"):
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))

    return add


def special(name: str, kind: bytes, linkname: str = ""):
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        tar.addfile(info)

    return add


def test_archive_round_trip_records_hashes_and_reads_manifest_without_extracting(tmp_path) -> None:
    path = make_archive(tmp_path)
    manifest = read_manifest(path)
    assert set(manifest.files) == {"config.json", "vocabulary/tokens.txt"}
    with opened_archive(path) as (root, opened):
        assert (root / "vocabulary" / "tokens.txt").read_bytes() == b"a\n"
        assert opened == manifest
    assert not root.exists()


def test_archive_same_content_gives_same_members(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = make_archive(tmp_path / "a"), make_archive(tmp_path / "b")
    with tarfile.open(first) as a, tarfile.open(second) as b:
        assert [(m.name, m.size, m.mtime, m.mode) for m in a] == [
            (m.name, m.size, m.mtime, m.mode) for m in b
        ]


@pytest.mark.parametrize(
    ("adder", "fragment"),
    [
        (regular("../escape.txt"), "leaves the archive folder"),
        (regular("/abs/escape.txt"), "leaves the archive folder"),
        (regular("vocabulary/../../escape.txt"), "leaves the archive folder"),
        (special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("hard", tarfile.LNKTYPE, "manifest.json"), "hard link"),
        (special("dev", tarfile.CHRTYPE), "device or special file"),
        (special("fifo", tarfile.FIFOTYPE), "device or special file"),
    ],
)
def test_archive_refuses_members_that_could_escape_or_are_not_regular(
    tmp_path, adder, fragment
) -> None:
    path = hostile_archive(tmp_path, adder)
    target = tmp_path / "outside-check"
    target.mkdir()
    with pytest.raises(ArchiveError) as raised, opened_archive(path):
        pass
    assert raised.value.code == errors.ARCHIVE_UNSAFE_MEMBER
    assert fragment in str(raised.value)
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/abs/escape.txt").exists()


def test_archive_refuses_decompression_bombs_by_declared_size_and_member_count(tmp_path) -> None:
    path = make_archive(tmp_path, {"big.bin": b"\0" * 100_000})
    with (
        pytest.raises(ArchiveError) as raised,
        opened_archive(path, limits=ArchiveLimits(max_total_bytes=50_000)),
    ):
        pass
    assert raised.value.code == errors.ARCHIVE_TOO_LARGE
    with (
        pytest.raises(ArchiveError) as raised,
        opened_archive(path, limits=ArchiveLimits(max_members=1)),
    ):
        pass
    assert raised.value.code == errors.ARCHIVE_TOO_LARGE


def test_archive_truncated_or_garbage_file_is_a_clear_error(tmp_path) -> None:
    path = make_archive(tmp_path, {"weights.bin": bytes(range(256)) * 400})
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArchiveError) as raised, opened_archive(truncated):
        pass
    assert raised.value.code == errors.ARCHIVE_CORRUPT
    assert "corrupt or truncated" in str(raised.value)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"definitely not gzip")
    with pytest.raises(ArchiveError):
        read_manifest(garbage)


def test_archive_tampered_member_is_named(tmp_path) -> None:
    path = make_archive(tmp_path)
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(path) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == "config.json":
                data = b'{"x": 1}'
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    with pytest.raises(ArchiveError) as raised, opened_archive(tampered):
        pass
    assert raised.value.code == errors.ARCHIVE_HASH_MISMATCH
    assert "config.json" in str(raised.value)


def test_archive_newer_format_version_is_refused(tmp_path) -> None:
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / "config.json").write_text("{}")
    path = write_archive(
        staging, tmp_path / "m.tar.gz", Manifest(format_version=FORMAT_VERSION + 1)
    )
    with pytest.raises(ArchiveError) as raised, opened_archive(path):
        pass
    assert raised.value.code == errors.ARCHIVE_FORMAT_VERSION


def test_archive_missing_file_is_not_found(tmp_path) -> None:
    with pytest.raises(ArchiveError) as raised, opened_archive(tmp_path / "nope.tar.gz"):
        pass
    assert raised.value.code == errors.ARCHIVE_NOT_FOUND

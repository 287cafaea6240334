"""Hostile archives: each is refused with a clear error and nothing lands outside a temp folder.

Every test points keel's temporary folders at ``tmp_path/tmp`` and, after the refusal, checks
that the work folder holds exactly what the test put there and the temp folder is empty again.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from keel.archive.allennlp import read_allennlp_weights
from keel.archive.archive import ArchiveLimits, opened_archive, read_manifest
from keel.archive.model_archive import load_archive
from keel.common import errors
from keel.common.errors import ArchiveError


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """A work folder whose temp folder keel uses; the test asserts it is left clean."""
    (tmp_path / "tmp").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def everything_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def assert_refused_cleanly(
    sandbox: Path, archive: Path, code: str, fragment: str, **options
) -> ArchiveError:
    before = everything_under(sandbox)
    with pytest.raises(ArchiveError) as raised, opened_archive(archive, **options):
        pass
    assert raised.value.code == code, raised.value
    assert fragment in str(raised.value)
    assert everything_under(sandbox) == before
    assert not any((sandbox / "tmp").iterdir())
    return raised.value


def build_tar(path: Path, add: Callable[[tarfile.TarFile], None], manifest=None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps(manifest or {"format_version": 1, "files": {}}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        add(tar)
    return path


def add_file(name: str, content: bytes = b"x") -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))

    return add


def add_link(name: str, target: str, kind: bytes) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tar.addfile(info)

    return add


def chain(*adders: Callable[[tarfile.TarFile], None]) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        for adder in adders:
            adder(tar)

    return add


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "../../escape.txt", "vocabulary/../../escape.txt", "/tmp/keel-escape.txt"],
)
def test_hostile_path_traversal_is_refused(sandbox, name) -> None:
    archive = build_tar(sandbox / "work" / "a.tar.gz", add_file(name, b"owned"))
    assert_refused_cleanly(
        sandbox, archive, errors.ARCHIVE_UNSAFE_MEMBER, "leaves the archive folder"
    )
    assert not Path("/tmp/keel-escape.txt").exists()


def test_hostile_symlink_escape_then_write_through_it_is_refused(sandbox) -> None:
    outside = sandbox / "outside"
    outside.mkdir()
    archive = build_tar(
        sandbox / "work" / "a.tar.gz",
        chain(
            add_link("vocabulary", str(outside), tarfile.SYMTYPE),
            add_file("vocabulary/tokens.txt", b"owned"),
        ),
    )
    assert_refused_cleanly(sandbox, archive, errors.ARCHIVE_UNSAFE_MEMBER, "symbolic link")
    assert not any(outside.iterdir())


def test_hostile_hard_link_and_device_files_are_refused(sandbox) -> None:
    hard = build_tar(
        sandbox / "work" / "h.tar.gz", add_link("passwd", "/etc/passwd", tarfile.LNKTYPE)
    )
    assert_refused_cleanly(sandbox, hard, errors.ARCHIVE_UNSAFE_MEMBER, "hard link")
    device = build_tar(sandbox / "work" / "d.tar.gz", add_link("null", "", tarfile.BLKTYPE))
    assert_refused_cleanly(sandbox, device, errors.ARCHIVE_UNSAFE_MEMBER, "device or special")


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_payload_in_weights_th_never_runs(sandbox) -> None:
    marker = sandbox / "MARKER"
    weights = sandbox / "work" / "weights.th"
    torch.save({"weight": torch.ones(2), "payload": _RunsCode(str(marker))}, weights)
    with pytest.raises(ArchiveError) as raised:
        read_allennlp_weights(weights)
    assert raised.value.code == errors.ARCHIVE_UNSAFE_MEMBER
    assert not marker.exists()
    # The control, without unpickling anything: the file really holds a pickle that calls
    # os.system on load, so the refusal above is what kept it from running.
    assert pickle_calls(weights) & {"posix system", "os system"}


def pickle_calls(path: Path) -> set[str]:
    """'module name' of every global a torch-saved pickle imports (read with pickletools)."""
    import io
    import pickletools
    import zipfile

    with zipfile.ZipFile(path) as archive:
        data = next(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    found, strings = set(), []
    for opcode, argument, _ in pickletools.genops(io.BytesIO(data)):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(argument)
        elif opcode.name == "GLOBAL":
            found.add(argument)
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]} {strings[-1]}")
    return found


def test_hostile_gzip_bomb_is_refused_by_size(sandbox) -> None:
    # 64 MiB of zeros compress to about 64 KiB.
    bomb = build_tar(sandbox / "work" / "bomb.tar.gz", add_file("weights.bin", bytes(64 << 20)))
    assert bomb.stat().st_size < 1 << 20
    assert_refused_cleanly(
        sandbox,
        bomb,
        errors.ARCHIVE_TOO_LARGE,
        "decompression bomb",
        limits=ArchiveLimits(max_total_bytes=8 << 20),
    )


def test_hostile_member_count_bomb_is_refused(sandbox) -> None:
    many = chain(*(add_file(f"f{index}", b"") for index in range(50)))
    archive = build_tar(sandbox / "work" / "many.tar.gz", many)
    assert_refused_cleanly(
        sandbox, archive, errors.ARCHIVE_TOO_LARGE, "members", limits=ArchiveLimits(max_members=20)
    )


@pytest.mark.slow
def test_hostile_huge_pax_header_is_refused_before_it_is_read(sandbox) -> None:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("x")
        info.pax_headers = {"comment": "x" * (65 << 20)}
        tar.addfile(info, io.BytesIO(b""))

    path = sandbox / "work" / "pax.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        add(tar)
    assert_refused_cleanly(sandbox, path, errors.ARCHIVE_TOO_LARGE, "tar header asks")
    with pytest.raises(ArchiveError) as raised:
        read_manifest(path)
    assert raised.value.code == errors.ARCHIVE_TOO_LARGE


def test_hostile_truncated_gzip_is_a_corrupt_archive(sandbox) -> None:
    archive = build_tar(sandbox / "work" / "t.tar.gz", add_file("w.bin", os.urandom(50_000)))
    truncated = sandbox / "work" / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:-2000])
    refused = assert_refused_cleanly(
        sandbox, truncated, errors.ARCHIVE_CORRUPT, "corrupt or truncated"
    )
    assert refused.message.startswith(f"{truncated}: corrupt or truncated archive")
    # read_manifest stops at the manifest, the first member: cut inside it, it fails too.
    manifest = read_manifest(truncated)
    assert (manifest.format_version, manifest.files) == (1, {})
    truncated.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(ArchiveError) as raised:
        read_manifest(truncated)
    assert raised.value.code == errors.ARCHIVE_CORRUPT


def test_hostile_wrong_manifest_hashes_are_refused_naming_the_member(sandbox) -> None:
    content = b'{"model": {"type": "basic_classifier"}}'
    manifest = {
        "format_version": 1,
        "files": {"config.json": {"sha256": "0" * 64, "size": len(content)}},
    }
    archive = build_tar(sandbox / "work" / "m.tar.gz", add_file("config.json", content), manifest)
    error = assert_refused_cleanly(
        sandbox, archive, errors.ARCHIVE_HASH_MISMATCH, "content differs from the manifest"
    )
    assert "config.json" in str(error)
    with pytest.raises(ArchiveError) as raised:
        load_archive(archive)
    assert raised.value.code == errors.ARCHIVE_HASH_MISMATCH


def test_hostile_member_missing_from_the_manifest_is_refused(sandbox) -> None:
    archive = build_tar(sandbox / "work" / "u.tar.gz", add_file("evil.py", b"print(1)"))
    assert_refused_cleanly(
        sandbox, archive, errors.ARCHIVE_HASH_MISMATCH, "present but not in the manifest: evil.py"
    )


@pytest.mark.parametrize(
    ("manifest_bytes", "fragment"),
    [(b"[1, 2]", "not an object"), (b"\xff\xfe", "not valid JSON"), (b"{", "not valid JSON")],
)
def test_hostile_manifest_that_is_not_an_object_is_refused(
    sandbox, manifest_bytes, fragment
) -> None:
    path = sandbox / "work" / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest_bytes)
        tar.addfile(info, io.BytesIO(manifest_bytes))
    assert_refused_cleanly(sandbox, path, errors.ARCHIVE_CORRUPT, fragment)
    with pytest.raises(ArchiveError, match=fragment):
        read_manifest(path)


def test_hostile_gzip_of_garbage_and_plain_garbage_are_refused(sandbox) -> None:
    not_tar = sandbox / "work" / "g.tar.gz"
    not_tar.write_bytes(gzip.compress(os.urandom(4096)))
    assert_refused_cleanly(sandbox, not_tar, errors.ARCHIVE_CORRUPT, "corrupt or truncated")
    not_gzip = sandbox / "work" / "n.tar.gz"
    not_gzip.write_bytes(b"PK\x03\x04 a zip, not a tar.gz")
    assert_refused_cleanly(sandbox, not_gzip, errors.ARCHIVE_CORRUPT, "corrupt or truncated")

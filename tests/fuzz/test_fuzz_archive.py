"""Fuzzing the archive reader: mutated bytes of a real archive raise keel's errors or nothing.

Whatever the bytes, ``read_manifest`` and ``opened_archive`` either succeed or raise a
KeelError subclass, and never write outside their temporary folder. Bounded (200 examples,
derandomized) but marked slow: a few seconds each.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tarfile
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.archive.archive import opened_archive, read_manifest, write_archive
from keel.archive.manifest import FORMAT_VERSION, Manifest
from keel.common.errors import KeelError

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=10),  # a hang guard, not a speed check
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def small_archive(directory: Path) -> bytes:
    staging = directory / "staging"
    (staging / "vocabulary").mkdir(parents=True)
    (staging / "config.json").write_text('{"model": {"type": "basic_classifier"}}')
    (staging / "vocabulary" / "tokens.txt").write_text("@@UNKNOWN@@\nthe\nfilm\n")
    (staging / "weights.bin").write_bytes(bytes(range(64)))
    path = write_archive(staging, directory / "model.tar.gz", Manifest())
    return path.read_bytes()


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> bytes:
    return small_archive(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def original_tar(original) -> bytes:
    """The uncompressed tar inside the archive: mutating it tests the tar and JSON layers."""
    return gzip.decompress(original)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buffer = bytearray(data)
    for position, value in edits:
        buffer[position % len(buffer)] = value
    return bytes(buffer[:cut] if cut is not None else buffer)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8)
CUTS = st.none() | st.integers(0, 4096)


def read_everything(data: bytes) -> None:
    """Both readers on ``data``; only KeelError may escape, and nothing may be left behind."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.tar.gz"
        path.write_bytes(data)
        for reader in (read_manifest, _open_and_list):
            with contextlib.suppress(KeelError):
                reader(path)
        assert sorted(p.name for p in Path(directory).iterdir()) == ["model.tar.gz"]


def _open_and_list(path: Path) -> None:
    with opened_archive(path) as (root, manifest):
        assert isinstance(manifest, Manifest)
        assert all(p.resolve().is_relative_to(root.resolve()) for p in root.rglob("*"))


@pytest.mark.slow
@FUZZ
@given(edits=EDITS, cut=CUTS)
def test_fuzz_archive_mutated_gzip_bytes(original, edits, cut) -> None:
    read_everything(mutate(original, edits, cut))


@pytest.mark.slow
@FUZZ
@given(edits=EDITS, cut=st.none() | st.integers(0, 12_000))
def test_fuzz_archive_mutated_tar_bytes(original_tar, edits, cut) -> None:
    read_everything(gzip.compress(mutate(original_tar, edits, cut)))


@pytest.mark.slow
@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 1535), st.integers(0, 255)), min_size=1, max_size=4))
def test_fuzz_archive_mutated_manifest_member(original_tar, edits) -> None:
    # The first three blocks hold the manifest's header and content: where parsing is richest.
    read_everything(gzip.compress(mutate(original_tar, edits, None)))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@FUZZ
@given(
    manifest=st.dictionaries(
        st.sampled_from(["format_version", "files", "components", "custom_code", "x"]),
        JSONISH,
        max_size=5,
    )
    | JSONISH,
    names=st.lists(
        st.sampled_from(["config.json", "a/b.txt", "code/pkg/__init__.py", "weights.bin"]),
        max_size=3,
    ),
)
def test_fuzz_archive_arbitrary_manifest_documents(manifest, names) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in [
            ("manifest.json", json.dumps(manifest).encode()),
            *[(n, b"x") for n in names],
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    read_everything(buffer.getvalue())


MEMBER_NAMES = st.lists(
    st.text(alphabet=st.sampled_from("ab./\\\0:~ ") | st.characters(), min_size=1, max_size=12)
    | st.sampled_from(["..", "../x", "/etc/x", "a/../../x", "a/./b", "./manifest.json", "a//b"]),
    min_size=1,
    max_size=4,
)
MEMBER_TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE])


@pytest.mark.slow
@FUZZ
@given(names=MEMBER_NAMES, types=st.lists(MEMBER_TYPES, min_size=4, max_size=4))
def test_fuzz_archive_member_names_never_escape(names, types) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        manifest = json.dumps({"format_version": FORMAT_VERSION, "files": {}}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for name, kind in zip(names, types, strict=False):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "../outside" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            content = b"x" if kind == tarfile.REGTYPE else b""
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    read_everything(buffer.getvalue())


FIXTURE = Path(__file__).parents[1] / "fixtures" / "archives" / "format2-classifier.tar.gz"
SECTIONS = st.sampled_from(
    [
        "components",
        "environment",
        "data_files",
        "tokenizer_fingerprint",
        "preprocessing_fingerprints",
        "validation_metrics",
        "custom_code",
        "include_packages",
        "versions",
        "state_dict_schema",
    ]
)


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=timedelta(seconds=30),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(section=SECTIONS, value=JSONISH, config_edit=st.none() | JSONISH)
def test_fuzz_archive_sections_through_load_and_verify(section, value, config_edit) -> None:
    """A real archive whose manifest section (and maybe config) is replaced by arbitrary JSON,
    rehashed so the integrity check passes: load_archive raises only keel's errors, and verify
    returns a report (never raises) whose JSON is valid."""
    from keel.archive.model_archive import load_archive
    from keel.guard.verify import verify_archive
    from tests.fixtures.hostile.corpus import _rehash, read_members, write_members

    members = read_members(FIXTURE)
    files = {info.name: data for info, data in members}
    manifest = json.loads(files["manifest.json"])
    manifest[section] = value
    edited = [
        (info, json.dumps(manifest).encode() if info.name == "manifest.json" else data)
        for info, data in members
    ]
    if config_edit is not None:
        edited = [
            (
                info,
                json.dumps({"model": config_edit}).encode() if info.name == "config.json" else data,
            )
            for info, data in edited
        ]
    with tempfile.TemporaryDirectory() as directory:
        archive = write_members(_rehash(edited), Path(directory) / "model.tar.gz")
        with contextlib.suppress(KeelError):
            load_archive(archive)
        report = verify_archive(archive)
        json.loads(report.to_json())
        assert sorted(p.name for p in Path(directory).iterdir()) == ["model.tar.gz"]

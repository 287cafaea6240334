"""Detached ed25519 signatures: keygen, sign, verify, and every way a signature is refused."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from keel.archive.archive import write_archive
from keel.archive.manifest import Manifest
from keel.archive.model_archive import load_archive
from keel.archive.signing import (
    generate_keypair,
    key_id,
    load_public_key,
    sign_archive,
    signature_path,
    trusted_public_keys,
    verify_signature,
)
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.guard.verify import FAIL, PASS, STEP_NAMES, verify_archive
from keel.pipeline.train import train_model
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

KEEL = [sys.executable, "-m", "keel.cli.main"]


def small_archive(directory: Path) -> Path:
    staging = directory / "staging"
    staging.mkdir(parents=True)
    (staging / "config.json").write_text('{"model": {}}', encoding="utf-8")
    (staging / "weights.bin").write_bytes(bytes(range(256)) * 8)
    return write_archive(staging, directory / "model.tar.gz", Manifest())


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    first = generate_keypair(tmp_path / "keys-a")
    second = generate_keypair(tmp_path / "keys-b")
    return {"private": first[0], "public": first[1], "other_private": second[0]}


@pytest.fixture(scope="module")
def trained_archive(tmp_path_factory) -> Path:
    from keel.common.params import load_config

    root = tmp_path_factory.mktemp("signed")
    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"})
    return train_model(config, root / "run", quiet=True).archive_path


def test_signing_keygen_private_key_is_owner_only_and_not_overwritten(tmp_path) -> None:
    private, public = generate_keypair(tmp_path / "k")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ArchiveError, match="--force"):
        generate_keypair(tmp_path / "k")
    before = private.read_bytes()
    generate_keypair(tmp_path / "k", force=True)
    assert private.read_bytes() != before
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_signing_round_trip_records_hashes_and_key_id(tmp_path, keys) -> None:
    archive = small_archive(tmp_path)
    signature = sign_archive(archive, keys["private"])
    assert signature == signature_path(archive) == Path(f"{archive}.sig")
    document = json.loads(signature.read_text())
    public = load_public_key(keys["public"])
    raw = public.public_bytes_raw()
    assert document["algorithm"] == "ed25519"
    assert document["key_id"] == hashlib.sha256(raw).hexdigest() == key_id(public)
    assert document["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert len(base64.b64decode(document["signature"])) == 64
    check = verify_signature(archive, [public])
    assert check.key_id == document["key_id"]


def test_signing_tampered_archive_is_refused_with_the_reason(tmp_path, keys) -> None:
    archive = small_archive(tmp_path)
    sign_archive(archive, keys["private"])
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as raised:
        verify_signature(archive, [load_public_key(keys["public"])])
    assert raised.value.code == errors.ARCHIVE_SIGNATURE
    assert "changed after signing" in str(raised.value)


def test_signing_resigned_with_an_untrusted_key_is_refused(tmp_path, keys) -> None:
    archive = small_archive(tmp_path)
    sign_archive(archive, keys["other_private"])
    with pytest.raises(ArchiveError, match="not among the 1 trusted key"):
        verify_signature(archive, [load_public_key(keys["public"])])


def test_signing_forged_signature_under_a_trusted_key_id_is_refused(tmp_path, keys) -> None:
    archive = small_archive(tmp_path)
    sign_archive(archive, keys["other_private"])
    document = json.loads(signature_path(archive).read_text())
    document["key_id"] = key_id(load_public_key(keys["public"]))
    signature_path(archive).write_text(json.dumps(document))
    with pytest.raises(ArchiveError, match="does not verify"):
        verify_signature(archive, [load_public_key(keys["public"])])


def test_signing_unsigned_archive_is_refused_when_a_signature_is_required(tmp_path, keys) -> None:
    archive = small_archive(tmp_path)
    with pytest.raises(ArchiveError) as raised:
        verify_signature(archive, [load_public_key(keys["public"])])
    assert raised.value.code == errors.ARCHIVE_MISSING_MEMBER
    assert "unsigned" in str(raised.value)
    with pytest.raises(ArchiveError, match="no trusted public key"):
        verify_signature(archive, [])


def test_signing_garbage_signature_file_is_a_clear_error(tmp_path, keys) -> None:
    archive = small_archive(tmp_path)
    signature_path(archive).write_text("not json")
    with pytest.raises(ArchiveError, match="not a readable signature file"):
        verify_signature(archive, [load_public_key(keys["public"])])
    signature_path(archive).write_text(json.dumps({"algorithm": "rsa"}))
    with pytest.raises(ArchiveError, match="expected a JSON object"):
        verify_signature(archive, [load_public_key(keys["public"])])


def test_signing_trusted_keys_folder_reads_every_pub_file(tmp_path, keys) -> None:
    folder = tmp_path / "trusted"
    folder.mkdir()
    shutil.copy(keys["public"], folder / "team.pub")
    (folder / "README").write_text("not a key")
    found = trusted_public_keys(trusted_dirs=[folder])
    assert [key_id(key) for key in found] == [key_id(load_public_key(keys["public"]))]
    with pytest.raises(ArchiveError, match="does not exist"):
        trusted_public_keys(trusted_dirs=[tmp_path / "missing"])
    with pytest.raises(ArchiveError, match="not a readable PEM public key"):
        trusted_public_keys(signers=[folder / "README"])


def test_signing_load_archive_requires_a_valid_signature(trained_archive, tmp_path, keys) -> None:
    archive = tmp_path / "model.tar.gz"
    shutil.copy(trained_archive, archive)
    trusted = [load_public_key(keys["public"])]
    with pytest.raises(ArchiveError, match="unsigned"):
        load_archive(archive, require_signature=True, trusted_keys=trusted)
    sign_archive(archive, keys["private"])
    loaded = load_archive(archive, require_signature=True, trusted_keys=trusted)
    assert loaded.model.training is False
    sign_archive(archive, keys["other_private"])
    with pytest.raises(ArchiveError, match="not among"):
        load_archive(archive, require_signature=True, trusted_keys=trusted)


def test_signing_verify_runs_a_signature_step_first(trained_archive, tmp_path, keys) -> None:
    archive = tmp_path / "model.tar.gz"
    shutil.copy(trained_archive, archive)
    sign_archive(archive, keys["private"])
    report = verify_archive(archive, signers=(str(keys["public"]),))
    assert [step.name for step in report.checks] == ["signature", *STEP_NAMES]
    assert report.checks[0].status == PASS, report.checks[0].reason
    assert report.ok
    sign_archive(archive, keys["other_private"])
    report = verify_archive(archive, signers=(str(keys["public"]),))
    assert report.checks[0].status == FAIL
    assert "not among" in report.checks[0].reason
    assert report.failed == ["signature"]
    assert [step.name for step in verify_archive(archive).checks] == list(STEP_NAMES)


@pytest.mark.slow
def test_signing_cli_keygen_sign_and_verify(trained_archive, tmp_path) -> None:
    archive = tmp_path / "model.tar.gz"
    shutil.copy(trained_archive, archive)
    run = [*KEEL, "keygen", "--out", str(tmp_path / "keys")]
    assert subprocess.run(run, capture_output=True, timeout=120).returncode == 0
    key = tmp_path / "keys" / "keel_signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    signed = subprocess.run(
        [*KEEL, "sign", str(archive), "--key", str(key)], capture_output=True, timeout=120
    )
    assert signed.returncode == 0, signed.stderr
    verified = subprocess.run(
        [*KEEL, "verify", str(archive), "--json", "--trusted-keys", str(tmp_path / "keys")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verified.returncode == 0, verified.stderr
    steps = json.loads(verified.stdout)["checks"]
    assert steps[0]["name"] == "signature" and steps[0]["status"] == PASS
    archive.write_bytes(archive.read_bytes() + b"\0")
    tampered = subprocess.run(
        [
            *KEEL,
            "verify",
            str(archive),
            "--json",
            "--signer",
            str(tmp_path / "keys" / "keel_signing.pub"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tampered.returncode == 1
    first = json.loads(tampered.stdout)["checks"][0]
    assert first["status"] == FAIL and "changed after signing" in first["reason"]


def test_signing_a_swap_after_the_check_never_loads_the_unsigned_archive(
    tmp_path, keys, trained_archive, monkeypatch
) -> None:
    """Regression: the archive used to be hashed, then reopened to unpack, so a writer who
    swapped the file in between got an unsigned archive loaded. The check and the extraction now
    read one private snapshot; the swapped file is never seen."""
    import keel.archive.model_archive as model_archive
    from keel.archive.manifest import Manifest as ManifestType

    signed = tmp_path / "model.tar.gz"
    shutil.copy(trained_archive, signed)
    sign_archive(signed, keys["private"])
    unsigned = tmp_path / "other.tar.gz"
    staging = tmp_path / "other"
    staging.mkdir()
    (staging / "config.json").write_text('{"model": {"type": "basic_classifier"}}')
    write_archive(staging, unsigned, ManifestType(keel_version="attacker"))
    original = model_archive.verify_signature
    swaps = []

    def check_then_swap(*args, **kwargs):
        result = original(*args, **kwargs)
        shutil.copy(unsigned, signed)  # the attacker's write lands right after the check
        swaps.append(True)
        return result

    monkeypatch.setattr(model_archive, "verify_signature", check_then_swap)
    loaded = load_archive(signed, trusted_keys=[load_public_key(keys["public"])])
    assert swaps and loaded.manifest.keel_version != "attacker"
    assert loaded.manifest.files == load_archive(trained_archive).manifest.files


def test_signing_verify_checks_the_same_snapshot_it_verifies(
    tmp_path, keys, trained_archive, monkeypatch
) -> None:
    import keel.guard.verify as verify_module

    signed = tmp_path / "model.tar.gz"
    shutil.copy(trained_archive, signed)
    sign_archive(signed, keys["private"])
    original = verify_module.verify_signature

    def check_then_corrupt(snapshot, keys_):
        result = original(snapshot, keys_)
        signed.write_bytes(b"not an archive any more")
        return result

    monkeypatch.setattr(verify_module, "verify_signature", check_then_corrupt)
    report = verify_archive(signed, signers=(str(keys["public"]),))
    assert report.check("signature").status == PASS
    assert report.check("integrity").status == PASS, report.to_dict()


def test_signing_a_corrupt_archive_names_the_given_path_not_the_private_copy(
    tmp_path, keys
) -> None:
    archive = small_archive(tmp_path)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(ArchiveError) as raised:
        sign_archive(truncated, keys["private"])
    assert raised.value.code == errors.ARCHIVE_CORRUPT
    assert raised.value.message.startswith(f"{truncated}: corrupt or truncated archive")
    assert "keel-archive-" not in str(raised.value)

"""Detached ed25519 signatures of archives: ``model.tar.gz.sig`` next to ``model.tar.gz``.

A signature covers the archive file's sha256 and its manifest's sha256 (which in turn lists the
sha256 of every member), so changing any byte of the archive breaks it. The signature file is
JSON: ``format``, ``algorithm``, ``key_id`` (sha256 of the raw 32-byte public key), the two
hashes, ``signed_digest`` and ``signature`` (base64). Keys are PEM files: the private key is
unencrypted PKCS#8 written with mode 0600, the public key SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.archive.archive import ArchiveSnapshot, archive_snapshot, read_member_bytes
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.common.file_utils import atomic_write_text
from keel.common.filenames import (
    MANIFEST_NAME,
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    SIGNATURE_SUFFIX,
)

SIGNATURE_FORMAT = 1
ALGORITHM = "ed25519"
_DOMAIN = b"keel-archive-signature-v1\n"


def _crypto():
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return serialization, ed25519, InvalidSignature


def signature_path(archive_path: str | os.PathLike[str]) -> Path:
    """Where an archive's detached signature lives: ``<archive>.sig``."""
    return Path(f"{os.fspath(archive_path)}{SIGNATURE_SUFFIX}")


def _raw_public_bytes(public_key: Any) -> bytes:
    serialization, _, _ = _crypto()
    return public_key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def key_id(public_key: Any) -> str:
    """sha256 of the raw public key, hex: how a signature names the key that made it."""
    return hashlib.sha256(_raw_public_bytes(public_key)).hexdigest()


def signed_digest(archive_sha256: str, manifest_sha256: str) -> bytes:
    """The 32 bytes a signature signs: domain-separated, so it cannot be replayed elsewhere."""
    return hashlib.sha256(
        _DOMAIN + archive_sha256.encode("ascii") + b"\n" + manifest_sha256.encode("ascii")
    ).digest()


def generate_keypair(
    directory: str | os.PathLike[str], *, force: bool = False
) -> tuple[Path, Path]:
    """Write a new ed25519 keypair into ``directory``: (private key path, public key path)."""
    serialization, ed25519, _ = _crypto()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    if not force and (private_path.exists() or public_path.exists()):
        raise ArchiveError(
            f"{directory} already holds a keypair; pass --force to replace it",
            code=errors.SERIALIZATION_DIR_EXISTS,
        )
    private_key = ed25519.Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    if private_path.exists():
        private_path.unlink()
    # Created 0600 from the first byte: never readable by others, not even briefly.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(path: str | os.PathLike[str]) -> Any:
    serialization, ed25519, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise ArchiveError(
            f"{path}: not a readable unencrypted PEM private key ({error})",
            code=errors.BAD_VALUE,
        ) from error
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ArchiveError(
            f"{path}: a {type(key).__name__}; keel signs with ed25519 keys only",
            code=errors.BAD_VALUE,
        )
    return key


def load_public_key(path: str | os.PathLike[str]) -> Any:
    serialization, ed25519, _ = _crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as error:
        raise ArchiveError(
            f"{path}: not a readable PEM public key ({error})", code=errors.BAD_VALUE
        ) from error
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ArchiveError(
            f"{path}: a {type(key).__name__}; keel verifies ed25519 keys only",
            code=errors.BAD_VALUE,
        )
    return key


def trusted_public_keys(
    signers: Iterable[str | os.PathLike[str]] = (),
    trusted_dirs: Iterable[str | os.PathLike[str]] = (),
) -> list[Any]:
    """Public keys from explicit files and from every ``*.pub`` file in trusted folders."""
    paths = [Path(path) for path in signers]
    for directory in trusted_dirs:
        directory = Path(directory)
        if not directory.is_dir():
            raise ArchiveError(
                f"{directory}: trusted-keys folder does not exist", code=errors.ARCHIVE_NOT_FOUND
            )
        paths.extend(sorted(directory.glob("*.pub")))
    return [load_public_key(path) for path in paths]


def keys_from_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Any]:
    """Public keys from paths that are key files or folders of ``*.pub`` keys, mixed."""
    given = [Path(path) for path in paths]
    return trusted_public_keys(
        [path for path in given if not path.is_dir()], [path for path in given if path.is_dir()]
    )


def _archive_hashes(snapshot: ArchiveSnapshot) -> tuple[str, str]:
    """The sha256 of the archive's bytes and of its manifest, both from one snapshot."""
    manifest = read_member_bytes(snapshot, MANIFEST_NAME)
    return snapshot.sha256, hashlib.sha256(manifest).hexdigest()


def sign_archive(
    archive_path: str | os.PathLike[str],
    private_key_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the detached signature of ``archive_path`` (default ``<archive>.sig``)."""

    archive_path = Path(archive_path)
    private_key = load_private_key(private_key_path)
    with archive_snapshot(archive_path) as snapshot:
        archive_sha, manifest_sha = _archive_hashes(snapshot)
    digest = signed_digest(archive_sha, manifest_sha)
    document = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "archive_sha256": archive_sha,
        "manifest_sha256": manifest_sha,
        "signed_digest": digest.hex(),
        "signature": base64.b64encode(private_key.sign(digest)).decode("ascii"),
    }
    destination = Path(output) if output else signature_path(archive_path)
    atomic_write_text(destination, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return destination


@dataclass(frozen=True)
class SignatureCheck:
    """A valid signature: which key made it and what it covers."""

    key_id: str
    archive_sha256: str
    manifest_sha256: str


def _refuse(message: str, code: str = errors.ARCHIVE_SIGNATURE) -> ArchiveError:
    return ArchiveError(f"signature check failed: {message}", code=code)


def _read_signature(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _refuse(
            f"{path.name} not found: the archive is unsigned, and a signature is required "
            "(sign it with `keel sign ARCHIVE --key KEY`)",
            code=errors.ARCHIVE_MISSING_MEMBER,
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(f"{path}: not a readable signature file ({error})") from error
    required = ("algorithm", "key_id", "archive_sha256", "manifest_sha256", "signature")
    if not isinstance(document, dict) or any(
        not isinstance(document.get(key), str) for key in required
    ):
        raise _refuse(f"{path}: expected a JSON object with string fields {', '.join(required)}")
    if document["algorithm"] != ALGORITHM:
        raise _refuse(f"{path}: algorithm {document['algorithm']!r} is not {ALGORITHM!r}")
    return document


def verify_signature(
    archive: str | os.PathLike[str] | ArchiveSnapshot,
    trusted_keys: Sequence[Any],
    signature: str | os.PathLike[str] | None = None,
) -> SignatureCheck:
    """Check the archive against its detached signature and ``trusted_keys``; raise why not.

    Pass the snapshot that will be loaded afterwards (``archive_snapshot``): the check then
    covers exactly the bytes that are loaded, whatever happens to the file on disk meanwhile."""
    _, _, invalid_signature = _crypto()
    if not trusted_keys:
        raise _refuse("no trusted public key given (--signer PUBKEY or --trusted-keys DIR)")
    with archive_snapshot(archive) as snapshot:
        archive_path = snapshot.source
        document = _read_signature(Path(signature) if signature else signature_path(archive_path))
        archive_sha, manifest_sha = _archive_hashes(snapshot)
    if document["archive_sha256"] != archive_sha:
        raise _refuse(
            f"{archive_path.name} has sha256 {archive_sha[:16]}..., but the signature was made "
            f"for {document['archive_sha256'][:16]}...: the archive was changed after signing"
        )
    if document["manifest_sha256"] != manifest_sha:
        raise _refuse("the manifest differs from the signed one: changed after signing")
    keys = {key_id(key): key for key in trusted_keys}
    key = keys.get(document["key_id"])
    if key is None:
        raise _refuse(
            f"signed by key {document['key_id'][:16]}..., which is not among the "
            f"{len(keys)} trusted key(s) ({', '.join(k[:16] + '...' for k in sorted(keys))})"
        )
    try:
        raw_signature = base64.b64decode(document["signature"], validate=True)
        key.verify(raw_signature, signed_digest(archive_sha, manifest_sha))
    except (binascii.Error, ValueError, invalid_signature) as error:
        raise _refuse(
            f"the ed25519 signature does not verify with trusted key {document['key_id'][:16]}..."
        ) from error
    return SignatureCheck(document["key_id"], archive_sha, manifest_sha)

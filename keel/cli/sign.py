"""``keel keygen`` and ``keel sign``: ed25519 detached signatures of archives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli.common import console, keel_errors_exit


@keel_errors_exit
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Folder for the keypair.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing keypair.")] = False,
) -> None:
    """Create an ed25519 signing keypair (private key file mode 0600) in OUT."""
    from keel.archive.signing import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(out, force=force)
    console.print(f"private key: {private_path} (keep it secret)")
    console.print(
        f"public key:  {public_path} (share it; key id {key_id(load_public_key(public_path))})"
    )


@keel_errors_exit
def sign(
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to sign.")],
    key: Annotated[Path, typer.Option("--key", help="The ed25519 private key (PEM).")],
    output: Annotated[
        Path | None, typer.Option("--output", help="Signature file (default ARCHIVE.sig).")
    ] = None,
) -> None:
    """Write a detached signature of ARCHIVE (its sha256 and its manifest's) to ARCHIVE.sig."""
    from keel.archive.signing import sign_archive

    destination = sign_archive(archive, key, output)
    console.print(f"signature: {destination}")

"""``keel serve``: an archive behind HTTP (fastapi + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli.common import IncludePackage, console, keel_errors_exit
from keel.cli.train import TrustBundledCode


@keel_errors_exit
def serve(
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to serve.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Inputs per forward pass.")] = 32,
    predictor: Annotated[str | None, typer.Option("--predictor")] = None,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
    require_signature: Annotated[
        bool,
        typer.Option("--require-signature", help="Refuse an archive without a trusted signature."),
    ] = False,
    signer: Annotated[
        list[Path], typer.Option("--signer", help="A trusted public key (PEM).")
    ] = [],  # noqa: B006
    trusted_keys: Annotated[
        list[Path], typer.Option("--trusted-keys", help="A folder of trusted *.pub keys.")
    ] = [],  # noqa: B006
) -> None:
    """Serve ARCHIVE: POST /predict (an object or a list), GET /health, GET /info."""
    from keel.archive.model_archive import load_archive
    from keel.archive.signing import trusted_public_keys
    from keel.common.optional_dependencies import require
    from keel.serve.app import create_app

    uvicorn = require("uvicorn", extra="serve", needed_by="keel serve")
    keys = trusted_public_keys(signer, trusted_keys)
    loaded = load_archive(
        archive,
        include_packages=include_package,
        trust_bundled_code=trust_bundled_code,
        require_signature=require_signature,
        trusted_keys=keys,
    )
    app = create_app(loaded, predictor=predictor, batch_size=batch_size)
    console.print(f"serving {archive.name} on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="info")

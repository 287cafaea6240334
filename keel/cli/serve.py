"""``keel serve``: an archive behind HTTP (fastapi + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from keel.cli.common import AllowUnchecked, IncludePackage, console, keel_errors_exit
from keel.cli.train import RequireSignature, TrustBundledCode, TrustedKeys


@keel_errors_exit
def serve(
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to serve.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes, each verified and batching.")
    ] = 1,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Items per forward pass at most.")
    ] = 32,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="How long a batch waits to fill.")
    ] = 5.0,
    queue_size: Annotated[
        int, typer.Option("--queue-size", min=1, help="Items waiting at most; then 503.")
    ] = 256,
    timeout_ms: Annotated[
        int, typer.Option("--timeout-ms", min=1, help="Deadline per request; then 504.")
    ] = 10_000,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body; then 413.")
    ] = 1024 * 1024,
    max_items: Annotated[
        int, typer.Option("--max-items", min=1, help="Inputs per request at most; then 413.")
    ] = 64,
    max_input_characters: Annotated[
        int | None, typer.Option("--max-input-characters", min=1, help="Per input; then 422.")
    ] = None,
    max_input_tokens: Annotated[
        int | None, typer.Option("--max-input-tokens", min=1, help="Per input; then 422.")
    ] = None,
    predictor: Annotated[str | None, typer.Option("--predictor")] = None,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
    require_signature: RequireSignature = False,
    trusted_keys: TrustedKeys = [],  # noqa: B006
    signer: Annotated[
        list[Path], typer.Option("--signer", help="A trusted public key (PEM).")
    ] = [],  # noqa: B006
    allow_env_drift: Annotated[
        bool, typer.Option("--allow-env-drift", help="Serve despite breaking env drift.")
    ] = False,
    allow_unchecked: AllowUnchecked = [],  # noqa: B006
    log_json: Annotated[
        bool, typer.Option("--log-json", help="One JSON log line per request.")
    ] = False,
    device: Annotated[
        str, typer.Option("--device", help="cpu, cuda or cuda:N: where the model runs.")
    ] = "cpu",
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", hidden=True, help="Old name of --max-batch-size.")
    ] = None,
) -> None:
    """Serve ARCHIVE after verifying it here: POST /predict, GET /readyz /healthz /metadata
    /metrics. Never ready for an archive that fails keel verify (unless an escape allows it)."""
    from keel.common.optional_dependencies import require
    from keel.serve.app import ServeSettings

    uvicorn = require("uvicorn", extra="serve", needed_by="keel serve")
    keys = [*signer, *trusted_keys]
    if require_signature and not keys:
        from keel.common import errors
        from keel.common.errors import ArchiveError

        raise ArchiveError(
            "--require-signature needs --trusted-keys (a public key or a folder of them)",
            code=errors.ARCHIVE_SIGNATURE,
        )
    settings = ServeSettings(
        archive=str(archive),
        predictor=predictor,
        max_batch_size=batch_size or max_batch_size,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        timeout_ms=timeout_ms,
        max_body_bytes=max_body_bytes,
        max_items=max_items,
        max_input_characters=max_input_characters,
        max_input_tokens=max_input_tokens,
        include_packages=tuple(include_package),
        trust_bundled_code=trust_bundled_code,
        require_signature=require_signature or bool(keys),
        trusted_keys=tuple(str(path) for path in keys),
        allow_env_drift=allow_env_drift,
        allow_unchecked=tuple(allow_unchecked),
        log_json=log_json,
        device=device,
    )
    from keel.common.devices import resolve_device

    resolve_device(device)  # a GPU this machine lacks is a start-up error, not a 503
    if require_signature or keys:
        _check_signature_now(archive, keys)
    console.print(
        f"serving {archive.name} on http://{host}:{port} ({workers} worker(s)); "
        "ready once keel verify passes (GET /readyz)"
    )
    os.environ["KEEL_SERVE_SETTINGS"] = settings.to_json()
    # uvicorn drains in-flight requests on SIGTERM, then raises the signal again for the
    # previous handler: that is the end of a graceful shutdown here, so exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        "keel.serve.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_graceful_shutdown=30,
    )


def _check_signature_now(archive: Path, keys: list[Path]) -> None:
    """A missing or wrong signature is a start-up error (exit 2), not a never-ready server."""
    from keel.archive.signing import keys_from_paths, verify_signature

    verify_signature(archive, keys_from_paths(keys))

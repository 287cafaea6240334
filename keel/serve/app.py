"""The HTTP app serving one archive: ``POST /predict``, ``GET /health``, ``GET /info``.

Errors are JSON ``{"error": {"code": ..., "message": ...}}`` with keel's stable codes: 400 for a
body that is not JSON or too large a batch, 422 for inputs the predictor cannot use.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, and
# ``Request`` is imported inside create_app so that fastapi stays an optional dependency.
import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import keel
from keel.archive.model_archive import Archive, load_archive
from keel.common import errors
from keel.common.errors import KeelError
from keel.common.optional_dependencies import require
from keel.predict.predictor import Predictor

DEFAULT_MAX_ITEMS = 1024
_COMPONENT_KEYS = ("base", "name", "module", "class", "distribution")


def archive_info(archive: Archive) -> dict[str, Any]:
    """What ``GET /info`` shows: nothing that is secret or names a path on the server."""
    manifest = archive.manifest
    components = [
        {key: value for key, value in component.to_dict().items() if key in _COMPONENT_KEYS}
        for component in manifest.components or []
    ]
    return {
        "model_type": archive.config.get("model", {}).get("type"),
        "keel_version": keel.__version__,
        "archive_keel_version": manifest.keel_version,
        "created_at": manifest.created_at,
        "components": components,
        "validation_metrics": manifest.validation_metrics,
    }


def _error(status: int, code: str, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_app(
    archive: Archive | str | os.PathLike[str],
    *,
    predictor: str | None = None,
    batch_size: int = 32,
    max_items: int = DEFAULT_MAX_ITEMS,
    **load_options: Any,
):
    """A FastAPI app serving ``archive`` (a loaded Archive, or a path given to load_archive)."""
    require("fastapi", extra="serve", needed_by="keel serve")
    from fastapi import FastAPI, Request

    loaded = archive if isinstance(archive, Archive) else load_archive(archive, **load_options)
    chosen = Predictor.from_archive(loaded, predictor)
    info = archive_info(loaded)
    # One forward pass at a time: torch modules are not documented as safe to share.
    lock = threading.Lock()
    app = FastAPI(title="keel", version=keel.__version__)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def model_info() -> dict[str, Any]:
        return info

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.body()
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            return _error(
                400, errors.CONFIG_SYNTAX, f"the request body is not valid JSON ({error})"
            )
        single = isinstance(payload, dict)
        items: Sequence[Any] = [payload] if single else payload
        if not isinstance(items, list):
            return _error(
                422,
                errors.WRONG_TYPE,
                f"expected a JSON object or a list of objects, got {type(payload).__name__}",
            )
        if len(items) > max_items:
            return _error(
                400, errors.BAD_VALUE, f"{len(items)} inputs in one request; at most {max_items}"
            )
        for number, item in enumerate(items):
            if not isinstance(item, dict):
                return _error(
                    422,
                    errors.WRONG_TYPE,
                    f"input {number}: expected a JSON object, got {type(item).__name__}",
                )
        try:
            outputs = await _run_in_thread(_predict_all, chosen, items, batch_size, lock)
        except KeelError as error:
            return _error(422, error.code, error.message)
        return outputs[0] if single else outputs

    return app


def _predict_all(
    predictor: Predictor, items: Sequence[dict[str, Any]], batch_size: int, lock: threading.Lock
) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    with lock:
        for start in range(0, len(items), batch_size):
            try:
                outputs.extend(predictor.predict_batch_json(items[start : start + batch_size]))
            except KeelError as error:
                # Name the offending input, as `keel predict` names the offending line.
                for number, item in enumerate(items[start : start + batch_size], start=start):
                    try:
                        predictor.predict_json(item)
                    except KeelError as inner:
                        raise KeelError(
                            f"input {number}: {inner.message}", code=inner.code
                        ) from inner
                raise error
    return outputs


async def _run_in_thread(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)

"""The HTTP app behind ``keel serve``: verified readiness, dynamic batching, bounded everything.

Endpoints:

- ``POST /predict``: a JSON object or a list of them; the outputs in the same shape.
- ``GET /healthz`` (and ``/health``): liveness, answered while a batch runs or verify runs.
- ``GET /readyz``: 200 only once the archive passed ``keel verify`` on this machine (or the
  user allowed what failed with an explicit escape, which ``/metadata`` shows); 503 before.
- ``GET /metadata``: the archive's sha256, model type, keel/torch versions now and at training,
  data hashes, and the verify verdict with its time and escapes. ``GET /info``: a summary.
- ``GET /metrics``: Prometheus text (requests by route and status, latency, batch size, queue
  depth, the verify verdict).

Errors are ``{"error": {"code", "message", "request_id"[, "error_id"]}}``: 400 unreadable JSON,
413 a body or an item count over its limit, 422 an input that does not fit the model (the field
and the limit named), 500 an exception inside the model (for its own request only), 503 not
ready or the queue full (with ``Retry-After``), 504 the deadline passed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import keel
from keel.archive.archive import archive_snapshot
from keel.archive.model_archive import Archive, load_archive
from keel.archive.signing import keys_from_paths
from keel.common import errors
from keel.common.devices import resolve_device
from keel.common.errors import KeelError
from keel.common.optional_dependencies import require
from keel.guard.results import Report
from keel.guard.verify import verify_archive
from keel.predict.predictor import Predictor, to_jsonable
from keel.serve.batcher import DeadlineExceeded, DynamicBatcher, ModelFailure, QueueFull

try:  # FastAPI resolves the handlers' annotations in this module's namespace
    from fastapi import Request
except ImportError:  # the serve extra is absent: create_app says how to install it
    Request = Any  # type: ignore[misc,assignment]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("keel.serve.access")

DEFAULT_MAX_ITEMS = 64
_COMPONENT_KEYS = ("base", "name", "module", "class", "distribution")
TIMEOUT_HEADER = "x-keel-timeout-ms"


@dataclass
class ServeSettings:
    """Everything ``keel serve`` can be told; every limit has a default."""

    archive: str
    predictor: str | None = None
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    queue_size: int = 256
    timeout_ms: int = 10_000
    max_body_bytes: int = 1024 * 1024
    max_items: int = DEFAULT_MAX_ITEMS
    max_input_characters: int | None = None
    max_input_tokens: int | None = None
    include_packages: tuple[str, ...] = ()
    trust_bundled_code: bool = False
    require_signature: bool = False
    trusted_keys: tuple[str, ...] = ()
    allow_env_drift: bool = False
    allow_unchecked: tuple[str, ...] = ()
    log_json: bool = False
    device: str = "cpu"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        values = json.loads(text)
        for key in ("include_packages", "trusted_keys", "allow_unchecked"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)


@dataclass
class _State:
    """What the app knows about its model; filled in by the background start-up."""

    ready: bool = False
    status: str = "verifying"
    reason: str = "keel verify is running on this machine"
    report: Report | None = None
    verified_at: str | None = None
    archive_sha256: str | None = None
    loaded: Archive | None = None
    predictor: Predictor | None = None
    batcher: DynamicBatcher | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


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


def _metadata(state: _State, loaded: Archive) -> dict[str, Any]:
    manifest = loaded.manifest
    report = state.report
    return {
        "archive_sha256": state.archive_sha256,
        "model_type": loaded.config.get("model", {}).get("type"),
        "versions": {
            "now": {"keel": keel.__version__, "torch": torch.__version__},
            "training": {"keel": manifest.keel_version, **manifest.versions},
        },
        "data_files": {
            role: {"sha256": entry.sha256, "size": entry.size}
            for role, entry in manifest.data_files.items()
        },
        "verify": {
            "verdict": report.verdict if report else None,
            "verified_at": state.verified_at,
            "escapes": report.escapes if report else [],
            "checks": report.statuses() if report else {},
        },
    }


class _Metrics:
    """The app's Prometheus metrics, in a registry of its own (several apps in one process)."""

    def __init__(self, state: _State) -> None:
        prometheus = require("prometheus_client", extra="serve", needed_by="keel serve")
        self.registry = prometheus.CollectorRegistry()
        self.requests = prometheus.Counter(
            "keel_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = prometheus.Histogram(
            "keel_request_latency_seconds", "Request latency", ["route"], registry=self.registry
        )
        self.batch_size = prometheus.Histogram(
            "keel_batch_size",
            "Items per forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.forward = prometheus.Histogram(
            "keel_forward_seconds", "Time of one batch's forward pass", registry=self.registry
        )
        queue = prometheus.Gauge("keel_queue_depth", "Items waiting", registry=self.registry)
        queue.set_function(lambda: state.batcher.depth if state.batcher else 0)
        verify = prometheus.Gauge(
            "keel_verify_passed",
            "1 when keel verify passed (allowed escapes included), 0 when it failed, -1 before",
            registry=self.registry,
        )
        verify.set_function(lambda: -1 if state.report is None else int(state.report.ok))
        ready = prometheus.Gauge("keel_ready", "1 when serving", registry=self.registry)
        ready.set_function(lambda: int(state.ready))
        self._latest = prometheus.generate_latest
        self.content_type = prometheus.CONTENT_TYPE_LATEST

    def text(self) -> bytes:
        return bytes(self._latest(self.registry))


def _prepare(state: _State, settings: ServeSettings) -> None:
    """Verify, then load, one snapshot of the archive's bytes (no swap in between)."""
    keys_paths = [Path(path) for path in settings.trusted_keys]
    signers = tuple(str(path) for path in keys_paths if not path.is_dir())
    key_dirs = tuple(str(path) for path in keys_paths if path.is_dir())
    try:
        with archive_snapshot(settings.archive) as snapshot:
            state.archive_sha256 = snapshot.sha256
            report = verify_archive(
                snapshot,
                include_packages=settings.include_packages,
                allow_env_drift=settings.allow_env_drift,
                allow_unchecked=settings.allow_unchecked,
                device=settings.device,
                signers=signers,
                trusted_keys_dirs=key_dirs,
            )
            state.report = report
            state.verified_at = datetime.now(UTC).isoformat(timespec="seconds")
            if not report.ok:
                state.status = "verify failed"
                state.reason = "keel verify failed: " + ", ".join(report.failed)
                logger.error("%s: %s; not serving", settings.archive, state.reason)
                return
            loaded = load_archive(
                snapshot,
                include_packages=settings.include_packages,
                trust_bundled_code=settings.trust_bundled_code,
                require_signature=settings.require_signature,
                trusted_keys=keys_from_paths(settings.trusted_keys),
            )
    except KeelError as error:
        state.status = "failed"
        state.reason = str(error)
        logger.error("%s: %s; not serving", settings.archive, error)
        return
    predictor = Predictor.from_archive(loaded, settings.predictor)
    if settings.max_input_characters is not None:
        predictor.max_input_characters = settings.max_input_characters
    if settings.max_input_tokens is not None:
        predictor.max_input_tokens = settings.max_input_tokens
    predictor.model.to(resolve_device(settings.device))
    predictor.model.eval()
    state.loaded, state.predictor = loaded, predictor
    state.metadata = _metadata(state, loaded)
    if report.escapes:
        logger.warning("serving with escapes: %s", report.escapes)


def create_app(settings: ServeSettings | str | os.PathLike[str], **overrides: Any) -> Any:
    """The FastAPI app serving ``settings.archive`` (or an archive path with ``overrides``)."""
    require("fastapi", extra="serve", needed_by="keel serve")
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    if not isinstance(settings, ServeSettings):
        settings = ServeSettings(archive=str(settings), **overrides)
    state = _State()
    metrics = _Metrics(state)

    def respond(status: int, content: Any, request_id: str, **headers: str) -> Any:
        return JSONResponse(
            status_code=status, content=content, headers={"x-request-id": request_id, **headers}
        )

    def failure(
        status: int, code: str, message: str, request_id: str, **extra: str
    ) -> dict[str, Any]:
        error = {"code": code, "message": message, "request_id": request_id, **extra}
        return {"status": status, "content": {"error": error}}

    async def start() -> None:
        await asyncio.get_running_loop().run_in_executor(None, _prepare, state, settings)
        if state.predictor is None:
            return
        predictor = state.predictor

        def predict(instances: Sequence[Any]) -> list[dict[str, Any]]:
            outputs = predictor.model.forward_on_instances(instances)
            return [to_jsonable(predictor.to_json(output)) for output in outputs]

        def on_batch(size: int, seconds: float) -> None:
            metrics.batch_size.observe(size)
            metrics.forward.observe(seconds)

        state.batcher = DynamicBatcher(
            predictor.json_to_instance,
            predict,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_wait_ms / 1000,
            queue_size=settings.queue_size,
            on_batch=on_batch,
        )
        state.batcher.start()
        state.ready, state.status, state.reason = True, "ready", "verified and loaded"
        logger.info("%s verified and loaded; ready", settings.archive)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):
        starting = asyncio.get_running_loop().create_task(start())
        yield
        state.ready = False
        starting.cancel()
        if state.batcher is not None:
            await state.batcher.stop()  # in-flight batches finish first

    app = FastAPI(title="keel", version=keel.__version__, lifespan=lifespan)
    app.state.keel = state
    app.state.settings = settings

    @app.get("/healthz")
    @app.get("/health")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> Any:
        body = {"ready": state.ready, "status": state.status, "reason": state.reason}
        return JSONResponse(status_code=200 if state.ready else 503, content=body)

    @app.get("/metadata")
    def metadata() -> Any:
        if not state.metadata:
            return JSONResponse(
                status_code=503,
                content={
                    "status": state.status,
                    "reason": state.reason,
                    "archive_sha256": state.archive_sha256,
                },
            )
        return state.metadata

    @app.get("/info")
    def info() -> Any:
        if state.loaded is None:
            return JSONResponse(status_code=503, content={"status": state.status})
        return archive_info(state.loaded)

    @app.get("/metrics")
    def prometheus_metrics() -> Any:
        return Response(metrics.text(), media_type=metrics.content_type)

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        started = time.monotonic()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        result, batch_ids = await _predict(request, request_id)
        status = result["status"]
        headers = result.get("headers", {})
        metrics.requests.labels("/predict", str(status)).inc()
        metrics.latency.labels("/predict").observe(time.monotonic() - started)
        if settings.log_json:
            access_logger.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "route": "/predict",
                        "status": status,
                        "latency_ms": round((time.monotonic() - started) * 1000, 3),
                        "batch_ids": sorted(batch_ids),
                    }
                )
            )
        return respond(status, result["content"], request_id, **headers)

    async def _predict(request: Request, request_id: str) -> tuple[dict[str, Any], set[int]]:
        if not state.ready or state.batcher is None:
            refused = failure(503, errors.VERIFY_FAILED, f"not ready: {state.reason}", request_id)
            refused["headers"] = {"retry-after": "5"}
            return refused, set()
        body = await _read_body(request, settings.max_body_bytes)
        if body is None:
            limit = settings.max_body_bytes
            return failure(
                413,
                errors.INPUT_TOO_LARGE,
                f"the body is over the {limit}-byte limit",
                request_id,
            ), set()
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            message = f"the request body is not valid JSON ({type(error).__name__})"
            return failure(400, errors.CONFIG_SYNTAX, message, request_id), set()
        single = isinstance(payload, dict)
        items = [payload] if single else payload
        if not isinstance(items, list):
            message = f"expected a JSON object or a list of objects, got {type(payload).__name__}"
            return failure(422, errors.WRONG_TYPE, message, request_id), set()
        if len(items) > settings.max_items:
            message = f"{len(items)} inputs in one request; the limit is {settings.max_items}"
            return failure(413, errors.INPUT_TOO_LARGE, message, request_id), set()
        for number, item in enumerate(items):
            if not isinstance(item, dict):
                message = f"input {number}: expected a JSON object, got {type(item).__name__}"
                return failure(422, errors.WRONG_TYPE, message, request_id), set()
        timeout_ms = settings.timeout_ms
        asked = request.headers.get(TIMEOUT_HEADER)
        if asked is not None:
            try:
                timeout_ms = min(timeout_ms, max(1, int(asked)))
            except ValueError:
                message = f"{TIMEOUT_HEADER} must be an integer number of milliseconds"
                return failure(400, errors.BAD_VALUE, message, request_id), set()
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            futures = state.batcher.submit(items, deadline)
        except QueueFull as full:
            refused = failure(503, errors.INPUT_TOO_LARGE, f"busy: {full}", request_id)
            refused["headers"] = {"retry-after": "1"}
            return refused, set()
        done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        if pending:
            for future in pending:
                future.cancel()  # not started yet: the batcher drops it; started: ignored
            message = f"the deadline of {timeout_ms} ms passed"
            return failure(504, errors.BAD_VALUE, message, request_id), set()
        outputs: list[dict[str, Any]] = []
        batch_ids: set[int] = set()
        for number, future in enumerate(futures):
            problem = future.exception()
            if isinstance(problem, DeadlineExceeded):
                message = f"the deadline of {timeout_ms} ms passed before input {number} ran"
                return failure(504, errors.BAD_VALUE, message, request_id), batch_ids
            if isinstance(problem, KeelError):
                message = f"input {number}: {problem.message}"
                return failure(422, problem.code, message, request_id), batch_ids
            if isinstance(problem, ModelFailure):
                message = f"input {number}: {problem.message} (error id {problem.error_id})"
                return failure(
                    500, errors.TRAINING_FAILED, message, request_id, error_id=problem.error_id
                ), batch_ids
            if problem is not None:
                return failure(500, errors.TRAINING_FAILED, str(problem), request_id), batch_ids
            output = dict(future.result())
            batch_ids.add(output.pop("_batch_id"))
            outputs.append(output)
        return {"status": 200, "content": outputs[0] if single else outputs}, batch_ids

    return app


async def _read_body(request: Any, limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app_from_environment() -> Any:
    """The app for one of ``keel serve --workers N``'s processes: settings from the
    ``KEEL_SERVE_SETTINGS`` variable the command sets (each worker verifies on its own)."""
    return create_app(ServeSettings.from_json(os.environ["KEEL_SERVE_SETTINGS"]))

"""The dynamic batcher: concurrent requests' items grouped into one forward pass.

Items wait in one bounded queue. A batch closes when it holds ``max_batch_size`` items or
``max_wait_s`` has passed since its first item arrived, whichever comes first (Triton's and
TorchServe's rule). The forward pass runs on one worker thread, so the event loop keeps
answering health probes while a batch runs. Around it:

- a full queue refuses a request at once (``QueueFull``, a 503 with ``Retry-After``), never an
  unbounded wait;
- an item whose deadline passed before its batch started is dropped, never computed
  (``DeadlineExceeded``, a 504);
- an item the predictor cannot turn into an instance fails alone (``KeelError``, a 422);
- an exception inside the model fails only the items that cause it: the batch is retried in
  halves until the failing items are isolated (each a 500 with an error id in the logs).

Each item's output is exactly what a prediction of that item alone gives, up to the float
tolerance of batching (padding is masked by every keel model).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from keel.common.errors import KeelError
from keel.data.instance import Instance

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue cannot take the request's items now."""


class DeadlineExceeded(Exception):
    """The item's deadline passed before its batch started."""


@dataclass
class ModelFailure(Exception):
    """The model raised on this item (alone); ``error_id`` is in the server log."""

    error_id: str
    message: str


@dataclass
class _Pending:
    item: dict[str, Any]
    deadline: float
    future: asyncio.Future[dict[str, Any]]
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher did, for metrics."""

    batches: int = 0
    items: int = 0
    dropped_expired: int = 0
    model_failures: int = 0


class DynamicBatcher:
    """Groups items from concurrent requests into batches for ``to_instance`` + ``predict``.

    ``to_instance(item)`` turns one JSON item into an instance (raising KeelError for bad
    input); ``predict(instances)`` returns one JSON-ready output per instance.
    """

    def __init__(
        self,
        to_instance: Callable[[dict[str, Any]], Instance],
        predict: Callable[[Sequence[Instance]], list[dict[str, Any]]],
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.005,
        queue_size: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or queue_size < 1 or max_wait_s < 0:
            raise ValueError("max_batch_size and queue_size must be >= 1, max_wait_s >= 0")
        self.to_instance = to_instance
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-forward")
        self._task: asyncio.Task[None] | None = None
        self._batch_ids = itertools.count(1)
        self._running = 0

    @property
    def depth(self) -> int:
        """Items waiting, not yet in a batch."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether anything is queued or computing."""
        return bool(self._queue) or self._running > 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Let queued work finish, then stop the loop and the worker thread."""
        while self.busy:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    def submit(self, items: Sequence[dict[str, Any]], deadline: float) -> list[asyncio.Future]:
        """Queue ``items`` (all or none) with a monotonic-clock ``deadline``; one future per
        item. Raises QueueFull when they do not fit."""
        if len(self._queue) + len(items) > self.queue_size:
            raise QueueFull(f"the queue holds {len(self._queue)} of {self.queue_size} items")
        loop = asyncio.get_running_loop()
        pendings = [_Pending(item, deadline, loop.create_future()) for item in items]
        self._queue.extend(pendings)
        self._arrived.set()
        return [pending.future for pending in pendings]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            # The batch window opens with its first item.
            window_end = self._queue[0].arrived + self.max_wait_s
            while len(self._queue) < self.max_batch_size:
                remaining = window_end - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch: list[_Pending] = []
            now = time.monotonic()
            while self._queue and len(batch) < self.max_batch_size:
                pending = self._queue.popleft()
                if pending.future.done():  # the client went away
                    continue
                if pending.deadline <= now:
                    self.stats.dropped_expired += 1
                    pending.future.set_exception(DeadlineExceeded())
                    continue
                batch.append(pending)
            if not batch:
                continue
            batch_id = next(self._batch_ids)
            self._running += 1
            started = time.monotonic()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._compute, [pending.item for pending in batch], batch_id
                )
            except Exception as error:  # the worker itself failed: fail this batch, keep serving
                results = [error] * len(batch)
            finally:
                self._running -= 1
            self.stats.batches += 1
            self.stats.items += len(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch), time.monotonic() - started)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result({**result, "_batch_id": batch_id})

    def _compute(self, items: list[dict[str, Any]], batch_id: int) -> list[Any]:
        """Outputs (or per-item exceptions) for ``items``; runs on the worker thread."""
        results: list[Any] = [None] * len(items)
        instances: list[Instance] = []
        positions: list[int] = []
        for position, item in enumerate(items):
            try:
                instances.append(self.to_instance(item))
                positions.append(position)
            except KeelError as error:
                results[position] = error
            except Exception as error:  # noqa: BLE001 - a bad item must not fail the others
                results[position] = self._failure(error, batch_id)
        for position, output in zip(positions, self._isolate(instances, batch_id), strict=True):
            results[position] = output
        return results

    def _isolate(self, instances: list[Instance], batch_id: int) -> list[Any]:
        """Predict ``instances``; when the model raises, retry in halves so that only the
        instances that make it raise fail."""
        if not instances:
            return []
        try:
            return list(self.predict(instances))
        except Exception as error:  # noqa: BLE001 - isolate, then report per item
            if len(instances) == 1:
                return [self._failure(error, batch_id)]
            middle = len(instances) // 2
            return self._isolate(instances[:middle], batch_id) + self._isolate(
                instances[middle:], batch_id
            )

    def _failure(self, error: Exception, batch_id: int) -> ModelFailure:
        error_id = uuid.uuid4().hex[:12]
        self.stats.model_failures += 1
        logger.error(
            "error %s in batch %d: %s: %s", error_id, batch_id, type(error).__name__, error
        )
        return ModelFailure(error_id, f"{type(error).__name__} inside the model")

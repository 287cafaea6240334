"""Trainers: the loop that fits a model, validates it, keeps the best weights and checkpoints.

``GradientDescentTrainer`` (``gradient_descent``) follows AllenNLP's trainer: its config keys,
its ``metrics.json`` keys and its behaviour (patience, ``validation_metric`` "+name"/"-name",
best-model selection), with exactly resumable checkpoints: a run recovered from the checkpoint
of epoch *e* ends with weights bit-identical to an uninterrupted run, because the checkpoint holds
the optimizer, scheduler and every RNG state, and the data loader's order depends only on
``(seed, epoch)``.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy
import torch

from keel.common import errors
from keel.common.constraints import Positive, Supplied
from keel.common.devices import resolve_device
from keel.common.errors import ConfigurationError, TrainingError
from keel.common.file_utils import atomic_write_json, remove_stale_temporaries
from keel.common.filenames import BEST_WEIGHTS_FILE, EPOCH_METRICS_FILE, METRICS_FILE
from keel.common.from_params import Lazy
from keel.common.registry import Registrable
from keel.common.weights import read_weights, save_weights
from keel.data.data_loaders.data_loader import DataLoader
from keel.models.model import Model
from keel.training.callbacks.callback import TrainerCallback
from keel.training.checkpointer import Checkpointer
from keel.training.distributed import (
    DistributedContext,
    metrics_of,
    metrics_without_statistics,
    reduce_metrics,
)
from keel.training.learning_rate_schedulers import LearningRateScheduler
from keel.training.optimizers import AdamOptimizer, Optimizer
from keel.training.util import (
    get_rng_state,
    peak_cpu_memory_mb,
    peak_gpu_memory_mb,
    set_rng_state,
)

logger = logging.getLogger(__name__)

TRAINING_STATE_FORMAT = 1
# The progress bar and the NaN check run at most this often, so they cost nothing per batch.
_REFRESH_INTERVAL_S = 0.1
# Away from a terminal, progress goes to the log this often.
_LOG_INTERVAL_S = 30.0


def _duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Trainer(Registrable):
    """Fits a model; ``train()`` returns the final metrics."""

    default_implementation = "gradient_descent"

    def train(self, recover: bool = False) -> dict[str, Any]:
        """Train to the end; with ``recover``, continue from the latest checkpoint."""
        raise NotImplementedError


class _MetricTracker:
    """Which epoch is best by ``validation_metric``, and how long since it improved."""

    def __init__(self, validation_metric: str | list[str], patience: int | None) -> None:
        names = [validation_metric] if isinstance(validation_metric, str) else validation_metric
        self.signed: list[tuple[float, str]] = []
        for name in names:
            if len(name) < 2 or name[0] not in "+-":
                raise ConfigurationError(
                    f"trainer.validation_metric: {name!r} must start with '+' (higher is better) "
                    "or '-' (lower is better), e.g. '+accuracy' or '-loss'",
                    code=errors.BAD_VALUE,
                )
            self.signed.append((1.0 if name[0] == "+" else -1.0, name[1:]))
        self.patience = patience
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.epochs_without_improvement = 0

    @property
    def names(self) -> list[str]:
        return [name for _, name in self.signed]

    def raw_value(self, metrics: Mapping[str, Any]) -> float:
        """The metric as reported (summed when several), for schedulers that watch it."""
        return float(sum(metrics[name] for _, name in self.signed))

    def score(self, metrics: Mapping[str, Any], where: str) -> float:
        missing = [name for name in self.names if name not in metrics]
        if missing:
            raise TrainingError(
                f"validation_metric names {missing} but the {where} metrics are "
                f"{sorted(metrics)}; set trainer.validation_metric to one of them"
            )
        return float(sum(sign * float(metrics[name]) for sign, name in self.signed))

    def add(self, score: float, epoch: int) -> bool:
        """Record an epoch's score; True when it is the best so far."""
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    def should_stop_early(self) -> bool:
        return self.patience is not None and self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.epochs_without_improvement = int(state["epochs_without_improvement"])


@Trainer.register("gradient_descent")
class GradientDescentTrainer(Trainer):
    """Mini-batch gradient descent with validation, early stopping and exact checkpoints.

    ``model``, ``data_loader``, ``validation_data_loader`` and ``serialization_dir`` are supplied
    by the train command; the rest is config. Without ``serialization_dir`` nothing is written.
    ``grad_norm`` clips the gradients' total norm; ``grad_clipping`` clamps each gradient value
    to ``[-grad_clipping, grad_clipping]`` (both after accumulation, just before the step).
    Accumulated losses are averaged over the batches of each optimizer step.

    Checkpoints are written after every epoch and, with ``checkpoint_every_batches`` (optimizer
    steps) or ``checkpoint_every_minutes``, inside epochs too; ``keep_most_recent`` counts both.
    SIGTERM (what schedulers send before preemption) writes a checkpoint at the next step and
    ends the run with exit status 143; ``--recover`` from any checkpoint ends bit-identical on
    CPU to an uninterrupted run. ``callbacks`` (``keel.training.callbacks``) hook into the loop.

    With ``distributed`` (supplied by the train pipeline under torchrun), the model is wrapped in
    DistributedDataParallel, each loader yields this rank's slice of every global batch
    (``batch_size`` per process, as in AllenNLP), each rank's loss is weighted by its share of
    the global batch so the averaged gradient is the whole batch's, and validation runs on
    every rank with the metrics' statistics summed over the ranks. Every decision (best epoch,
    patience, schedulers, clipping) is taken from values identical on every rank; only rank 0
    writes files.
    """

    def __init__(
        self,
        model: Annotated[Model, Supplied],
        data_loader: Annotated[DataLoader, Supplied],
        optimizer: Lazy[Optimizer] | None = None,
        validation_data_loader: Annotated[DataLoader, Supplied] | None = None,
        serialization_dir: Annotated[str, Supplied] | None = None,
        learning_rate_scheduler: Lazy[LearningRateScheduler] | None = None,
        num_epochs: Annotated[int, Positive] = 20,
        patience: Annotated[int, Positive] | None = None,
        validation_metric: str | list[str] = "-loss",
        grad_norm: Annotated[float, Positive] | None = None,
        grad_clipping: Annotated[float, Positive] | None = None,
        num_gradient_accumulation_steps: Annotated[int, Positive] = 1,
        cuda_device: int | None = None,
        use_amp: bool = False,
        keep_most_recent: Annotated[int, Positive] | None = 2,
        checkpoint_every_batches: Annotated[int, Positive] | None = None,
        checkpoint_every_minutes: Annotated[float, Positive] | None = None,
        quiet: Annotated[bool, Supplied] = False,
        distributed: Annotated[DistributedContext, Supplied] | None = None,
        callbacks: list[Lazy[TrainerCallback]] | None = None,
    ) -> None:
        self.model = model
        self.distributed = distributed
        self.data_loader = data_loader
        self.validation_data_loader = validation_data_loader
        self.serialization_dir = Path(serialization_dir) if serialization_dir else None
        self.num_epochs = num_epochs
        self.num_gradient_accumulation_steps = num_gradient_accumulation_steps
        self.grad_norm = grad_norm
        self.grad_clipping = grad_clipping
        self.quiet = quiet
        self.tracker = _MetricTracker(validation_metric, patience)

        self.device = distributed.device if distributed else _resolve_device(cuda_device)
        if self.device.type != "cpu":
            self.model.to(self.device)
        #: what the training forward goes through: the model, or its DistributedDataParallel
        self.network: torch.nn.Module = self.model
        if distributed is not None:
            self._prepare_distributed(distributed)
        self.use_amp = use_amp
        # fp16 needs loss scaling on GPUs; CPU autocast uses bfloat16, which does not.
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = (
            torch.amp.GradScaler(self.device.type)
            if use_amp and self.device.type == "cuda"
            else None
        )

        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if optimizer is None:
            self.optimizer: torch.optim.Optimizer = AdamOptimizer(named)
        else:
            self.optimizer = optimizer.construct(model_parameters=named)
        # After the optimizer: its parameter_groups may have frozen some parameters.
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]

        self.num_batches = _length(data_loader)
        steps_per_epoch = (
            math.ceil(self.num_batches / num_gradient_accumulation_steps)
            if self.num_batches is not None
            else None
        )
        self.scheduler: LearningRateScheduler | None = None
        if learning_rate_scheduler is not None:
            extras: dict[str, Any] = {"optimizer": self.optimizer, "num_epochs": num_epochs}
            if steps_per_epoch is not None:
                extras["num_steps_per_epoch"] = steps_per_epoch
            self.scheduler = learning_rate_scheduler.construct(**extras)

        self.checkpointer = (
            Checkpointer(self.serialization_dir, keep_most_recent)
            if self.serialization_dir is not None
            else None
        )
        #: only rank 0 of a distributed job writes checkpoints, metrics and best weights
        self.writes = distributed is None or distributed.is_primary
        self.callbacks: list[TrainerCallback] = [
            callback.construct(serialization_dir=str(self.serialization_dir or "."))
            for callback in callbacks or []
        ]
        self.optimizer_steps = 0
        self.metrics_history: list[dict[str, Any]] = []
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._duration_before_s = 0.0
        self.checkpoint_every_batches = checkpoint_every_batches
        self.checkpoint_every_seconds = (
            checkpoint_every_minutes * 60.0 if checkpoint_every_minutes is not None else None
        )
        self._last_checkpoint_time = time.monotonic()
        self._train_started = time.monotonic()
        #: where a mid-epoch checkpoint left off (set by --recover from one)
        self._resume: dict[str, Any] | None = None
        #: set by SIGTERM: checkpoint at the next step and exit 143
        self._stop_requested = False

    def _prepare_distributed(self, distributed: DistributedContext) -> None:
        unreducible = metrics_without_statistics(self.model)
        if unreducible:
            raise TrainingError(
                f"metrics {', '.join(unreducible)} declare no statistics, so their values "
                "cannot be summed over the ranks of a distributed run; declare "
                "Metric.statistics (the attributes holding their counts)"
            )
        for loader in (self.data_loader, self.validation_data_loader):
            if loader is None:
                continue
            try:
                loader.shard(distributed.rank, distributed.world_size)
            except NotImplementedError as error:
                raise TrainingError(
                    f"{error}; a distributed run needs a data loader that shards (e.g. "
                    "multiprocess)"
                ) from error
        # DDP copies rank 0's weights to every rank here, so all start alike. Buffers are not
        # broadcast on each forward: keel's models keep none that training changes.
        self.network = torch.nn.parallel.DistributedDataParallel(
            self.model,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            broadcast_buffers=False,
        )

    # -- the loop ------------------------------------------------------------------------------

    def train(self, recover: bool = False) -> dict[str, Any]:
        """Train for ``num_epochs`` (or until patience runs out); return the last epoch's metrics
        with the best epoch's. The model ends with the best epoch's weights loaded."""
        previous = _handle_sigterm(self._request_stop)
        try:
            return self._train(recover)
        except BaseException as error:
            for callback in self.callbacks:
                callback.on_error(error, is_primary=self.writes)
            raise
        finally:
            _restore_sigterm(previous)

    def _request_stop(self, signum: int, frame: Any) -> None:
        logger.warning("SIGTERM: checkpointing at the next step, then stopping (exit 143)")
        self._stop_requested = True

    def _train(self, recover: bool) -> dict[str, Any]:
        start_epoch = self._restore_checkpoint() if recover else 0
        for callback in self.callbacks:
            callback.on_start(self, is_primary=self.writes)
        started = time.monotonic()
        self._train_started = started
        metrics: dict[str, Any] = dict(self.metrics_history[-1]) if self.metrics_history else {}
        epoch = start_epoch - 1
        for epoch in range(start_epoch, self.num_epochs):
            if self.tracker.should_stop_early():
                break
            train_metrics = self._train_epoch(epoch)
            validation_metrics = (
                self._validate(epoch) if self.validation_data_loader is not None else {}
            )
            judged, where = (
                (validation_metrics, "validation")
                if self.validation_data_loader is not None
                else (train_metrics, "training")
            )
            is_best = self.tracker.add(self.tracker.score(judged, where), epoch)
            if self.scheduler is not None:
                self.scheduler.step(self.tracker.raw_value(judged))

            duration = self._duration_before_s + time.monotonic() - started
            metrics = self._epoch_metrics(
                epoch, start_epoch, duration, train_metrics, validation_metrics, is_best
            )
            self.metrics_history.append(metrics)
            logger.info(
                "epoch %d/%d done: %s%s, %s elapsed",
                epoch + 1,
                self.num_epochs,
                _summary(metrics, ["loss", *self.tracker.names, "accuracy"]),
                " (best so far)" if is_best else "",
                _duration(duration),
            )
            if is_best:
                self.best_weights = _cpu_copy(self.model.state_dict())
            for callback in self.callbacks:
                callback.on_epoch(self, metrics, epoch, is_primary=self.writes)
            if self.serialization_dir is not None:
                rng_states = (
                    self.distributed.all_gather(get_rng_state()) if self.distributed else None
                )
            if self.serialization_dir is not None and self.writes:
                atomic_write_json(
                    self.serialization_dir / EPOCH_METRICS_FILE.format(epoch=epoch), metrics
                )
                self._save_checkpoint(epoch, duration, rng_states)
                if is_best and self.best_weights is not None:
                    # After the checkpoint, so that a crash in between is repaired on recovery.
                    save_weights(self.best_weights, self.serialization_dir / BEST_WEIGHTS_FILE)
            if self._agree(self._stop_requested, False)[0]:
                self._exit_for_sigterm(f"after epoch {epoch}")
            if self.tracker.should_stop_early():
                logger.info(
                    "no improvement of %s for %d epochs: stopping early",
                    "+".join(self.tracker.names),
                    self.tracker.epochs_without_improvement,
                )
                break
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        if self.serialization_dir is not None and self.writes:
            atomic_write_json(self.serialization_dir / METRICS_FILE, metrics)
        for callback in self.callbacks:
            callback.on_end(self, metrics, epoch, is_primary=self.writes)
        return metrics

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        model = self.model
        model.train()
        model.get_metrics(reset=True)
        _set_epoch(self.data_loader, epoch)
        accumulation = self.num_gradient_accumulation_steps
        num_batches = self.num_batches
        losses = _LossTotal(epoch)
        # keel models carry the config's regularizer; a plain torch module trains without one
        regularization_penalty = getattr(self.model, "get_regularization_penalty", None)
        skip = 0
        resume, self._resume = self._resume, None
        if resume is not None and resume["epoch"] == epoch:
            # Continue a mid-epoch checkpoint: the batches it had done are skipped (the order
            # depends only on the seed and the epoch), its running loss and metrics restored.
            skip = int(resume["batches"])
            losses.total, losses.summed = float(resume["loss_total"]), int(resume["loss_count"])
            for metric, state in zip(metrics_of(model), resume["metrics"], strict=True):
                metric.load_state(_decode_state(state))
        group_size = accumulation
        pending = False
        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        self.optimizer.zero_grad(set_to_none=True)
        with self._progress(epoch, num_batches) as advance:
            last_refresh = time.monotonic()
            for index, batch in enumerate(self.data_loader):
                if index < skip:
                    continue
                position = index % accumulation
                if position == 0 and num_batches is not None:
                    group_size = min(accumulation, num_batches - index)
                last_of_group = position == group_size - 1
                mine, total = self._share()
                with self._sharing(mine, last_of_group):
                    loss, output = self._forward(batch, training=True)
                    assert loss is not None  # raised for a training batch without one
                    penalty = regularization_penalty() if regularization_penalty else None
                    if penalty is not None:
                        loss = loss + penalty
                    if self.distributed is not None:
                        # DDP averages the ranks' gradients; weighting each rank by its share
                        # of the global batch makes that average the whole batch's gradient.
                        losses.add(loss * (mine / total))
                        loss = loss * (mine * self.distributed.world_size / total)
                    else:
                        losses.add(loss)
                    if group_size > 1:
                        loss = loss / group_size
                    if self.scaler is not None:
                        self.scaler.scale(loss).backward()
                    else:
                        loss.backward()
                if self.callbacks:
                    inputs.append(batch)
                    outputs.append(output)
                pending = True
                if last_of_group:
                    grad_norm = self._step()
                    pending = False
                    self._after_step(epoch, index + 1, losses, inputs, outputs, grad_norm)
                    inputs, outputs = [], []
                now = time.monotonic()
                if now - last_refresh >= _REFRESH_INTERVAL_S:
                    last_refresh = now
                    advance(losses.count, losses.mean(), model.get_metrics(reset=False))
            if pending:  # a loader without len() ended inside an accumulation group
                self._step()
            if losses.count == 0:
                raise TrainingError(f"the training data loader yielded no batch in epoch {epoch}")
            mean_loss = losses.mean()
            if self.distributed is not None:
                # Each rank summed its shares of the global batches' losses.
                mean_loss = self.distributed.sum([losses.total])[0] / losses.count
                losses.check(mean_loss)
                reduce_metrics(model, self.distributed)
            metrics = _plain_metrics(model.get_metrics(reset=True))
            metrics["loss"] = mean_loss
            advance(losses.count, metrics["loss"], metrics)
        return metrics

    def _after_step(
        self,
        epoch: int,
        batches_done: int,
        losses: _LossTotal,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        grad_norm: float | None,
    ) -> None:
        """Callbacks, then a mid-epoch checkpoint when one is due or SIGTERM asked for one."""
        if self.callbacks:
            batch_metrics = _plain_metrics(self.model.get_metrics(reset=False))
            batch_metrics["loss"] = losses.mean()
            batch_metrics["batch_loss"] = _batch_loss(outputs)
            step = math.ceil(batches_done / self.num_gradient_accumulation_steps)
            for callback in self.callbacks:
                callback.on_batch(
                    self,
                    inputs,
                    outputs,
                    batch_metrics,
                    epoch,
                    step,
                    is_training=True,
                    is_primary=self.writes,
                    batch_grad_norm=grad_norm,
                )
        steps = self.optimizer_steps
        due = (
            self.checkpoint_every_batches is not None and steps % self.checkpoint_every_batches == 0
        )
        late = (
            self.checkpoint_every_seconds is not None
            and time.monotonic() - self._last_checkpoint_time >= self.checkpoint_every_seconds
        )
        stop, late = self._agree(self._stop_requested, late)
        # At the epoch's last batch the epoch's own checkpoint follows (and SIGTERM stops
        # right after it).
        inside = self.num_batches is None or batches_done < self.num_batches
        if (due or late or stop) and inside and self.serialization_dir is not None:
            self._save_mid_epoch_checkpoint(epoch, batches_done, losses)
        if stop and inside:
            self._stop_requested = True
            self._exit_for_sigterm(f"in epoch {epoch} after batch {batches_done}")
        if stop:
            self._stop_requested = True

    def _agree(self, stop: bool, late: bool) -> tuple[bool, bool]:
        """(any rank got SIGTERM, any rank's clock says a timed checkpoint is due): one small
        all-reduce, so every rank checkpoints and stops at the same step."""
        if self.distributed is None:
            return stop, late
        summed = self.distributed.sum([float(stop), float(late)])
        return summed[0] > 0, summed[1] > 0

    def _exit_for_sigterm(self, where: str) -> None:
        logger.warning(
            "stopped by SIGTERM %s; the checkpoint is written: resume with --recover", where
        )
        raise SystemExit(143)

    def _share(self) -> tuple[int, int]:
        """(instances of this rank, instances of the global batch) for the batch just read."""
        if self.distributed is None:
            return 1, 1
        mine, total = self.data_loader.batch_share
        return mine, max(total, 1)

    @contextlib.contextmanager
    def _sharing(self, mine: int, last_of_group: bool) -> Iterator[None]:
        """Around one training batch: gradients exchanged only on the last batch of an
        accumulation group; a rank with no instance in the batch (it got one as a stand-in,
        weighted 0) leaves the metrics as they were."""
        if self.distributed is None:
            yield
            return
        metrics = metrics_of(self.model) if mine == 0 else []
        saved = [metric.state() for metric in metrics]
        synchronising = (
            contextlib.nullcontext() if last_of_group else self.network.no_sync()  # type: ignore[operator]
        )
        with synchronising:
            yield
        for metric, state in zip(metrics, saved, strict=True):
            metric.load_state(state)

    def _forward_loss(self, batch: dict[str, Any], training: bool) -> torch.Tensor | None:
        return self._forward(batch, training)[0]

    def _forward(
        self, batch: dict[str, Any], training: bool
    ) -> tuple[torch.Tensor | None, dict[str, Any]]:
        if self.device.type != "cpu":
            batch = _move_to_device(batch, self.device)
        # Validation bypasses DDP: ranks may run different numbers of validation batches.
        network = self.network if training else self.model
        with self._autocast():
            output = network(**batch)
        loss = output.get("loss") if isinstance(output, Mapping) else None
        if loss is None and training:
            raise TrainingError(
                "the model returned no 'loss' for a training batch; "
                "do the training instances carry gold labels?"
            )
        return loss, output if isinstance(output, dict) else {}

    def _step(self) -> float | None:
        """One optimizer step; the gradients' total norm when clipping or callbacks need it."""
        optimizer = self.optimizer
        if self.scaler is not None and (self.grad_norm or self.grad_clipping or self.callbacks):
            self.scaler.unscale_(optimizer)
        if self.grad_clipping is not None:
            torch.nn.utils.clip_grad_value_(self.parameters, self.grad_clipping)
        norm: float | None = None
        if self.grad_norm is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_norm))
        elif self.callbacks:
            grads = [p.grad for p in self.parameters if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.optimizer_steps += 1
        if self.scheduler is not None:
            self.scheduler.step_batch()
        return norm

    def _validate(self, epoch: int) -> dict[str, float]:
        loader = self.validation_data_loader
        assert loader is not None
        model = self.model
        model.eval()
        model.get_metrics(reset=True)
        _set_epoch(loader, epoch)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        losses = 0
        distributed = self.distributed
        with torch.no_grad():
            for batch in loader:
                if distributed is None:
                    share = 1.0
                else:
                    mine, total = loader.batch_share
                    if mine == 0:  # a stand-in instance: this rank has no part of this batch
                        losses += 1
                        continue
                    share = mine / total
                loss = self._forward_loss(batch, training=False)
                if loss is not None:
                    loss_sum += loss.detach().double() * share
                    losses += 1
        if distributed is None:
            metrics = _plain_metrics(model.get_metrics(reset=True))
            if losses:
                metrics["loss"] = float(loss_sum.item()) / losses
            return metrics
        # Summed over the ranks: the metrics of the whole validation set, and the mean over the
        # global batches of each batch's loss.
        reduce_metrics(model, distributed)
        metrics = _plain_metrics(model.get_metrics(reset=True))
        total_loss, counted = distributed.sum([float(loss_sum.item()), float(losses)])
        batches = len(loader)
        if counted and batches:
            metrics["loss"] = total_loss / batches
        return metrics

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.use_amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @contextlib.contextmanager
    def _progress(self, epoch: int, total: int | None) -> Iterator[Any]:
        """Yield ``advance(batches, loss, metrics)``: a rich progress bar on a terminal, a log
        line every ``_LOG_INTERVAL_S`` elsewhere (batch jobs, CI), nothing when quiet."""
        if self.quiet:
            yield lambda batches, loss, metrics: None
            return
        # Per-label metrics would push the status off the line: show the loss, the metrics
        # that select the best epoch, and accuracy.
        shown = ["loss", *self.tracker.names, "accuracy"]
        shown = [name for index, name in enumerate(shown) if name not in shown[:index]]

        def status(loss: float, metrics: Mapping[str, Any]) -> str:
            values = {**metrics, "loss": loss}
            return " ".join(
                f"{name} {float(values[name]):.4f}"
                for name in shown
                if isinstance(values.get(name), int | float)
            )

        if not sys.stderr.isatty():
            started = last_logged = time.monotonic()

            def log(batches: int, loss: float, metrics: Mapping[str, Any]) -> None:
                nonlocal last_logged
                now = time.monotonic()
                if now - last_logged < _LOG_INTERVAL_S:
                    return
                last_logged = now
                elapsed = now - started
                done = f"{batches}/{total}" if total else str(batches)
                left = ""
                if total and batches:
                    left = f", about {_duration(elapsed * (total - batches) / batches)} left"
                logger.info(
                    "epoch %d/%d: %s batches, %s, %s elapsed%s",
                    epoch + 1,
                    self.num_epochs,
                    done,
                    status(loss, metrics),
                    _duration(elapsed),
                    left,
                )

            yield log
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
            auto_refresh=False,
        )
        task = progress.add_task(
            "train", total=total, epoch=f"{epoch + 1}/{self.num_epochs}", status=""
        )

        def advance(batches: int, loss: float, metrics: Mapping[str, Any]) -> None:
            progress.update(task, completed=batches, status=status(loss, metrics))
            progress.refresh()

        with progress:
            yield advance

    # -- metrics -------------------------------------------------------------------------------

    def _epoch_metrics(
        self,
        epoch: int,
        start_epoch: int,
        duration_s: float,
        train_metrics: Mapping[str, float],
        validation_metrics: Mapping[str, float],
        is_best: bool,
    ) -> dict[str, Any]:
        """AllenNLP's per-epoch metrics dict (the content of metrics_epoch_N.json)."""
        previous_best = self.metrics_history[-1] if self.metrics_history else {}
        metrics: dict[str, Any] = {"best_epoch": self.tracker.best_epoch}
        metrics["peak_worker_0_memory_MB"] = peak_cpu_memory_mb()
        for device, peak in peak_gpu_memory_mb().items():
            metrics[f"peak_gpu_{device}_memory_MB"] = peak
        metrics["training_duration"] = str(datetime.timedelta(seconds=duration_s))
        metrics["training_start_epoch"] = start_epoch
        metrics["training_epochs"] = epoch - start_epoch + 1
        metrics["epoch"] = epoch
        for key, value in train_metrics.items():
            metrics[f"training_{key}"] = value
        for key, value in validation_metrics.items():
            metrics[f"validation_{key}"] = value
        if is_best:
            best_source = validation_metrics or train_metrics
            prefix = "validation" if validation_metrics else "training"
            for key, value in best_source.items():
                metrics[f"best_{prefix}_{key}"] = value
        else:
            for key, value in previous_best.items():
                if key.startswith("best_validation_") or key.startswith("best_training_"):
                    metrics[key] = value
        return metrics

    # -- checkpoints ---------------------------------------------------------------------------

    def _save_mid_epoch_checkpoint(self, epoch: int, batches: int, losses: _LossTotal) -> None:
        """A checkpoint inside epoch ``epoch`` after ``batches`` batches (at an optimizer step),
        with the epoch's running loss and metric statistics: --recover continues from it."""
        losses.mean()  # folds the pending batch losses into the total
        duration = self._duration_before_s + time.monotonic() - self._train_started
        rng_states = self.distributed.all_gather(get_rng_state()) if self.distributed else None
        progress = {
            "batches": batches,
            "loss_total": losses.total,
            "loss_count": losses.summed,
            "metrics": [_encode_state(metric.state()) for metric in metrics_of(self.model)],
        }
        if self.writes:
            self._save_checkpoint(epoch, duration, rng_states, progress)
            logger.info("checkpoint in epoch %d after batch %d", epoch, batches)
        self._last_checkpoint_time = time.monotonic()

    def _save_checkpoint(
        self,
        epoch: int,
        duration_s: float,
        rng_states: list[Any] | None = None,
        progress: dict[str, Any] | None = None,
    ) -> None:
        assert self.checkpointer is not None
        state = {
            "format_version": TRAINING_STATE_FORMAT,
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "tracker": self.tracker.state_dict(),
            "metrics_history": self.metrics_history,
            "optimizer_steps": self.optimizer_steps,
            "training_duration_s": duration_s,
            "rng": get_rng_state(),
            # every rank's random state (rank order), so a distributed run resumes exactly
            "world_size": self.distributed.world_size if self.distributed else 1,
            "rng_per_rank": rng_states,
            "callbacks": [callback.state_dict() for callback in self.callbacks],
            # inside an epoch: how far it got (None for a finished epoch)
            "progress": progress,
        }
        batches = progress["batches"] if progress is not None else None
        self.checkpointer.save(epoch, self.model.state_dict(), state, batches=batches)
        self._last_checkpoint_time = time.monotonic()

    def _restore_checkpoint(self) -> int:
        """Load the latest checkpoint; return the first epoch still to train."""
        if self.checkpointer is None:
            raise TrainingError(
                "cannot recover without a serialization directory", code=errors.NOTHING_TO_RECOVER
            )
        assert self.serialization_dir is not None
        # A killed run may have left the temporary file of an unfinished atomic write.
        remove_stale_temporaries(self.serialization_dir)
        checkpoint = self.checkpointer.latest()
        if checkpoint is None:
            raise TrainingError(
                f"nothing to recover: {self.checkpointer.directory} holds no complete checkpoint",
                code=errors.NOTHING_TO_RECOVER,
            )
        weights, state = self.checkpointer.load(checkpoint, self.device)
        if state.get("format_version") != TRAINING_STATE_FORMAT:
            raise TrainingError(
                f"{checkpoint.state_path} has training-state format "
                f"{state.get('format_version')!r}; this keel reads {TRAINING_STATE_FORMAT}",
                code=errors.NOTHING_TO_RECOVER,
            )
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.tracker.load_state_dict(state["tracker"])
        self.metrics_history = list(state["metrics_history"])
        self.optimizer_steps = int(state["optimizer_steps"])
        self._duration_before_s = float(state["training_duration_s"])
        epoch = int(state["epoch"])
        world_size = self.distributed.world_size if self.distributed else 1
        if int(state.get("world_size", 1)) != world_size:
            raise TrainingError(
                f"{checkpoint.state_path} was written by a run of {state.get('world_size', 1)} "
                f"process(es); --recover needs the same number, not {world_size}",
                code=errors.NOTHING_TO_RECOVER,
            )
        progress = state.get("progress")
        for callback, callback_state in zip(
            self.callbacks, state.get("callbacks") or [{}] * len(self.callbacks), strict=False
        ):
            callback.load_state_dict(callback_state)
        best_path = self.serialization_dir / BEST_WEIGHTS_FILE
        if self.tracker.best_epoch is None:
            self.best_weights = None  # stopped inside the first epoch: no best epoch yet
        elif self.tracker.best_epoch == epoch and progress is None:
            # This checkpoint's weights are the best ones; the best file may be older or missing
            # if the run died between writing the checkpoint and the best file.
            self.best_weights = _cpu_copy(weights)
            if self.writes:
                save_weights(self.best_weights, best_path)
        elif best_path.is_file():
            self.best_weights = read_weights(best_path)
        else:
            raise TrainingError(
                f"cannot recover: {best_path} (the weights of the best epoch, "
                f"{self.tracker.best_epoch}) is missing",
                code=errors.NOTHING_TO_RECOVER,
            )
        per_rank = state.get("rng_per_rank")
        rank = self.distributed.rank if self.distributed else 0
        set_rng_state(per_rank[rank] if per_rank else state["rng"])
        if progress is not None:
            self._resume = {"epoch": epoch, **progress}
            logger.info(
                "recovered from %s; continuing epoch %d after batch %d",
                checkpoint.path,
                epoch + 1,
                progress["batches"],
            )
            return epoch
        logger.info("recovered from %s; continuing at epoch %d", checkpoint.path, epoch + 2)
        return epoch + 1


def _resolve_device(cuda_device: int | None) -> torch.device:
    if cuda_device is None or cuda_device < 0:
        return torch.device("cpu")
    return resolve_device(f"cuda:{cuda_device}", option="trainer.cuda_device")


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except (TypeError, NotImplementedError):
        return None


def _set_epoch(loader: Any, epoch: int) -> None:
    set_epoch = getattr(loader, "set_epoch", None)
    if set_epoch is not None:
        set_epoch(epoch)


def _move_to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {key: _move_to_device(item, device) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_move_to_device(item, device) for item in value)
    return value


class _LossTotal:
    """The mean training loss so far; batch losses are summed in bulk when the mean is asked
    for, so the loop does no tensor arithmetic and no device sync per batch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.pending: list[torch.Tensor] = []
        self.total = 0.0
        self.summed = 0

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss.detach())

    @property
    def count(self) -> int:
        return self.summed + len(self.pending)

    def mean(self) -> float:
        """The mean so far; raises NAN_LOSS once the loss is not finite."""
        if self.pending:
            self.total += float(torch.stack(self.pending).double().sum().item())
            self.summed += len(self.pending)
            self.pending.clear()
        mean = self.total / max(self.summed, 1)
        self.check(mean)
        return mean

    def check(self, mean: float) -> None:
        if not math.isfinite(mean):
            raise TrainingError(
                f"the training loss became {mean} in epoch {self.epoch} (by batch {self.summed}); "
                "lower the learning rate, clip gradients (grad_norm) or check the data",
                code=errors.NAN_LOSS,
            )


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor | numpy.generic | numpy.ndarray):
        return value.item()
    return value


def _plain_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as python numbers, so they serialize to JSON and load with weights_only."""
    return {str(key): _plain(value) for key, value in metrics.items()}


def _cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def _summary(metrics: Mapping[str, Any], names: list[str]) -> str:
    """``training_loss=0.6628, validation_loss=0.7149, ...`` for ``names`` (when present);
    every metric is in metrics_epoch_N.json."""
    keys = [f"{split}_{name}" for split in ("training", "validation") for name in names]
    shown = [key for index, key in enumerate(keys) if key not in keys[:index]]
    return ", ".join(
        f"{key}={metrics[key]:.4f}" if isinstance(metrics[key], float) else f"{key}={metrics[key]}"
        for key in shown
        if key in metrics
    )


def _handle_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM (main thread only); return the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def _batch_loss(outputs: list[dict[str, Any]]) -> float | None:
    losses = [float(output["loss"].detach()) for output in outputs if "loss" in output]
    return sum(losses) / len(losses) if losses else None


def _encode_state(state: Mapping[str, Any]) -> dict[str, Any]:
    # torch.load(weights_only=True) reads plain dicts but not Counters: mark them.
    return {
        name: ("counter", dict(value)) if isinstance(value, Counter) else value
        for name, value in state.items()
    }


def _decode_state(state: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: Counter(value[1])
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "counter"
        else value
        for name, value in state.items()
    }

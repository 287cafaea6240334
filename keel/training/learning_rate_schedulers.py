"""Learning-rate schedulers: when and how the optimizer's learning rate changes.

The trainer calls ``step_batch()`` after every optimizer step and ``step(metric)`` after every
epoch (``metric`` is the epoch's validation metric, as named by the trainer's
``validation_metric``, without its sign). A scheduler acts on one of the two and ignores the other.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch

from keel.common.constraints import NonNegative, Range, Supplied
from keel.common.registry import Registrable


class LearningRateScheduler(Registrable):
    """Base class; ``optimizer`` is supplied by the trainer."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def step_batch(self) -> None:
        """Called after each optimizer step."""

    def step(self, metric: float | None = None) -> None:
        """Called after each epoch with the epoch's validation metric."""

    def get_last_lr(self) -> list[float]:
        """The current learning rate of each parameter group."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain values only, so that checkpoints load with ``weights_only=True``."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


@LearningRateScheduler.register("linear_with_warmup")
class LinearWithWarmup(LearningRateScheduler):
    """Rise linearly from 0 to the optimizer's rate over ``warmup_steps`` optimizer steps, then
    fall linearly to 0 at the last step of ``num_epochs`` x ``num_steps_per_epoch``.

    ``num_epochs`` and ``num_steps_per_epoch`` (optimizer steps, after gradient accumulation) are
    supplied by the trainer. The rate at optimizer step ``s`` (counting from 0) is
    ``lr * s / warmup_steps`` during warmup and ``lr * (total - s) / (total - warmup_steps)`` after.
    """

    def __init__(
        self,
        optimizer: Annotated[torch.optim.Optimizer, Supplied],
        num_epochs: Annotated[int, Supplied],
        num_steps_per_epoch: Annotated[int, Supplied],
        warmup_steps: Annotated[int, NonNegative] = 100,
    ) -> None:
        super().__init__(optimizer)
        self.warmup_steps = warmup_steps
        self.total_steps = max(1, num_epochs * num_steps_per_epoch)
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.steps = 0
        self._apply()

    def factor(self, step: int) -> float:
        """The multiplier of the base rate at optimizer step ``step``."""
        if step < self.warmup_steps:
            return step / self.warmup_steps
        if step >= self.total_steps:
            return 0.0
        return (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)

    def _apply(self) -> None:
        factor = self.factor(self.steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def step_batch(self) -> None:
        self.steps += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self._apply()


@LearningRateScheduler.register("reduce_on_plateau")
class ReduceOnPlateau(LearningRateScheduler):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``, stepped once per epoch on the validation
    metric. Use ``mode: "max"`` for a metric that should grow (accuracy)."""

    def __init__(
        self,
        optimizer: Annotated[torch.optim.Optimizer, Supplied],
        mode: Literal["min", "max"] = "min",
        factor: Annotated[float, Range(gt=0, lt=1)] = 0.1,
        patience: Annotated[int, NonNegative] = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-08,
    ) -> None:
        super().__init__(optimizer)
        # torch removed ``verbose``; AllenNLP 2.10 still passes it and crashes, so never do.
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lr=min_lr,
            eps=eps,
        )

    def step(self, metric: float | None = None) -> None:
        if metric is None or math.isnan(metric):
            return  # no validation metric this epoch: nothing to judge a plateau by
        self.scheduler.step(metric)

    def state_dict(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.scheduler.state_dict().items()
            if isinstance(value, int | float | str | bool | list | tuple | type(None))
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)

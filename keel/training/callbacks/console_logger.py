"""``console_logger``: the shapes of the first batch and a line of metrics per epoch, in the log."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import torch

from keel.common.constraints import Supplied
from keel.training.callbacks.callback import TrainerCallback

logger = logging.getLogger(__name__)


@TrainerCallback.register("console_logger")
class ConsoleLoggerCallback(TrainerCallback):
    """AllenNLP's ``console_logger``: with ``should_log_inputs``, what the first training batch
    holds (each tensor's name, shape and dtype); after each epoch, its metrics on one line."""

    def __init__(
        self, serialization_dir: Annotated[str, Supplied], should_log_inputs: bool = True
    ) -> None:
        super().__init__(serialization_dir)
        self.should_log_inputs = should_log_inputs
        self._logged_inputs = False

    def on_batch(
        self,
        trainer: Any,
        batch_inputs: list[dict[str, Any]],
        batch_outputs: list[dict[str, Any]],
        batch_metrics: dict[str, Any],
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        batch_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        if not (is_primary and is_training and self.should_log_inputs) or self._logged_inputs:
            return
        self._logged_inputs = True
        for name, shape, dtype in _tensors(batch_inputs[0]):
            logger.info("batch input %s: shape %s, %s", name, shape, dtype)

    def on_epoch(
        self,
        trainer: Any,
        metrics: dict[str, Any],
        epoch: int,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        if not is_primary:
            return
        shown = ", ".join(
            f"{key}={value:.4f}"
            for key, value in sorted(metrics.items())
            if key.startswith(("training_", "validation_")) and isinstance(value, float)
        )
        logger.info("epoch %d metrics: %s", epoch, shown)


def _tensors(value: Any, prefix: str = "") -> list[tuple[str, list[int], str]]:
    if isinstance(value, torch.Tensor):
        return [(prefix, list(value.shape), str(value.dtype).removeprefix("torch."))]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += _tensors(item, f"{prefix}.{key}" if prefix else str(key))
        return found
    return []

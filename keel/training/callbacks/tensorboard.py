"""``tensorboard``: loss, metrics, learning rate and gradient norm as TensorBoard event files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from keel.common.constraints import Positive, Supplied
from keel.common.optional_dependencies import require
from keel.training.callbacks.callback import TrainerCallback


@TrainerCallback.register("tensorboard")
class TensorBoardCallback(TrainerCallback):
    """AllenNLP's ``tensorboard`` callback: event files under ``SERIALIZATION_DIR/log/train`` and
    ``log/validation`` (``tensorboard --logdir SERIALIZATION_DIR/log``).

    Every ``summary_interval`` optimizer steps: the batch loss, the gradient norm, the running
    training metrics and, with ``should_log_learning_rate``, each parameter group's learning
    rate. After each epoch: every training and validation metric (``epoch_metrics/NAME``, step =
    epoch). Written by rank 0 only; steps continue across ``--recover``.
    """

    def __init__(
        self,
        serialization_dir: Annotated[str, Supplied],
        summary_interval: Annotated[int, Positive] = 100,
        should_log_learning_rate: bool = False,
    ) -> None:
        super().__init__(serialization_dir)
        self.summary_interval = summary_interval
        self.should_log_learning_rate = should_log_learning_rate
        self.global_step = 0
        self._writers: dict[str, Any] = {}

    def _writer(self, split: str) -> Any:
        if split not in self._writers:
            module = require(
                "torch.utils.tensorboard",
                extra="tensorboard",
                needed_by=("the tensorboard callback"),
            )
            self._writers[split] = module.SummaryWriter(str(self.serialization_dir / "log" / split))
        return self._writers[split]

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        if is_primary:
            self._writer("train")  # a missing tensorboard package fails before the first step

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
        if not (is_primary and is_training):
            return
        self.global_step += 1
        if self.global_step % self.summary_interval:
            return
        writer = self._writer("train")
        for name, value in sorted(batch_metrics.items()):
            if isinstance(value, int | float):
                writer.add_scalar(name, value, self.global_step)
        if batch_grad_norm is not None:
            writer.add_scalar("gradient_norm", batch_grad_norm, self.global_step)
        if self.should_log_learning_rate:
            for index, group in enumerate(trainer.optimizer.param_groups):
                writer.add_scalar(f"learning_rate/group{index}", group["lr"], self.global_step)

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
        for split, prefix in (("train", "training_"), ("validation", "validation_")):
            for key, value in sorted(metrics.items()):
                if key.startswith(prefix) and isinstance(value, int | float):
                    name = key.removeprefix(prefix)
                    self._writer(split).add_scalar(f"epoch_metrics/{name}", value, epoch)
            if split in self._writers:
                self._writers[split].flush()

    def on_end(
        self,
        trainer: Any,
        metrics: dict[str, Any] | None = None,
        epoch: int | None = None,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        self._close()

    def on_error(self, error: BaseException, is_primary: bool = True) -> None:
        self._close()

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"global_step": self.global_step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.global_step = int(state.get("global_step", 0))

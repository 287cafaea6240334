"""The Metric base class: accumulate over batches, report floats, reset per epoch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from keel.common import errors
from keel.common.errors import ModelError
from keel.common.registry import Registrable


class Metric(Registrable):
    """Accumulates statistics batch by batch; ``get_metric`` reports them as named floats.

    Statistics stay as tensors on the batch's device, so calling a metric never waits for the
    accelerator; only ``get_metric`` does.

    ``statistics`` names the attributes that hold the running counts: ``state()`` copies them,
    ``load_state`` restores them, and ``add_states`` adds several processes' states up, which
    is how distributed training reports the metric of the whole validation set.
    """

    statistics: ClassVar[tuple[str, ...]] = ()

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        raise NotImplementedError

    def get_metric(self, reset: bool = False) -> dict[str, float]:
        """The metric's values so far; ``reset`` starts over afterwards."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """A copy of the running statistics, on the CPU."""
        return {name: _portable(getattr(self, name)) for name in self.statistics}

    def load_state(self, state: Mapping[str, Any]) -> None:
        for name in self.statistics:
            setattr(self, name, state[name])

    @classmethod
    def add_states(cls, states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The statistics of several processes added up (counts, sums, per-class tensors)."""
        total = dict(states[0])
        for state in states[1:]:
            for name in cls.statistics:
                # ints, floats, tensors (an int 0 plus a tensor: a process that saw no
                # batch) and Counters all add with +
                total[name] = total[name] + state[name]
        return total

    @staticmethod
    def require_gold_shape(
        name: str,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor | None,
        expected: tuple[int, ...],
        layout: str,
    ) -> torch.Tensor:
        """``gold_labels`` when its shape is ``expected``, else a ModelError naming both shapes."""
        if gold_labels is None or tuple(gold_labels.shape) != tuple(expected):
            found = None if gold_labels is None else tuple(gold_labels.shape)
            raise ModelError(
                f"{name} expects {layout}; got {tuple(predictions.shape)} and {found}",
                code=errors.SHAPE_MISMATCH,
            )
        return gold_labels

    @staticmethod
    def detach_tensors(
        predictions: torch.Tensor, gold_labels: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The tensors cut from the autograd graph, so accumulating them keeps no graph alive."""
        return (
            predictions.detach(),
            gold_labels.detach() if gold_labels is not None else None,
            mask.detach() if mask is not None else None,
        )


def _portable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Counter):
        return Counter(value)
    return value

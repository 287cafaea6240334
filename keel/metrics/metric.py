"""The Metric base class: accumulate over batches, report floats, reset per epoch."""

from __future__ import annotations

import torch

from keel.common import errors
from keel.common.errors import ModelError
from keel.common.registry import Registrable


class Metric(Registrable):
    """Accumulates statistics batch by batch; ``get_metric`` reports them as named floats.

    Statistics stay as tensors on the batch's device, so calling a metric never waits for the
    accelerator; only ``get_metric`` does.
    """

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

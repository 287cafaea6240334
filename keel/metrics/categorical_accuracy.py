"""``categorical_accuracy``: how often the gold class is among the top-k predicted classes."""

from __future__ import annotations

import torch

from keel.common import errors
from keel.common.errors import ModelError
from keel.metrics.metric import Metric


@Metric.register("categorical_accuracy")
class CategoricalAccuracy(Metric):
    """Predictions (..., C) scores against gold (...) class ids; masked positions are skipped.

    Reports ``{"accuracy": correct / counted}`` (0.0 before anything was counted).
    """

    statistics = ("_correct", "_total")

    _correct: torch.Tensor | int
    _total: torch.Tensor | int

    def __init__(self, top_k: int = 1) -> None:
        if top_k < 1:
            raise ModelError(f"top_k must be at least 1, got {top_k}", code=errors.SHAPE_MISMATCH)
        self._top_k = top_k
        self.reset()

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        gold_labels = self.require_gold_shape(
            "categorical_accuracy",
            predictions,
            gold_labels,
            predictions.shape[:-1],
            "predictions (..., C) and gold labels (...)",
        )
        gold_labels = gold_labels.long()
        num_classes = predictions.size(-1)
        if self._top_k == 1:
            correct = predictions.argmax(dim=-1) == gold_labels
        else:
            top = predictions.topk(min(self._top_k, num_classes), dim=-1).indices
            correct = (top == gold_labels.unsqueeze(-1)).any(dim=-1)
        if mask is None:
            self._correct = self._correct + correct.sum()
            self._total = self._total + correct.numel()
        else:
            mask = mask.bool()
            self._correct = self._correct + (correct & mask).sum()
            self._total = self._total + mask.sum()

    def get_metric(self, reset: bool = False) -> dict[str, float]:
        total = float(self._total)
        accuracy = float(self._correct) / total if total > 0 else 0.0
        if reset:
            self.reset()
        return {"accuracy": accuracy}

    def reset(self) -> None:
        self._correct = 0
        self._total = 0

"""``fbeta``: per-label and macro precision, recall and F-beta of single-label predictions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from keel.common import errors
from keel.common.errors import ModelError
from keel.metrics.metric import Metric


@Metric.register("fbeta")
class FBetaMeasure(Metric):
    """Precision, recall and F-beta of argmax predictions (..., C) against gold ids (...).

    ``get_metric`` reports ``<label>_precision``, ``<label>_recall`` and ``<label>_f<beta>``
    (``_f1`` for beta 1) per label, and their unweighted means as ``macro_precision``,
    ``macro_recall`` and ``macro_f<beta>``. Labels are class indices unless ``label_names``
    names them (models fill it from the vocabulary). ``labels`` restricts the report and the
    macro average to those class indices; by default every predicted class counts. A score
    whose denominator is 0 is reported as 0.0.
    """

    statistics = ("_true_positives", "_predicted", "_gold")

    _num_classes: int | None
    _true_positives: torch.Tensor | int
    _predicted: torch.Tensor | int
    _gold: torch.Tensor | int

    def __init__(
        self,
        beta: float = 1.0,
        labels: list[int] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        if beta <= 0:
            raise ModelError(f"beta must be positive, got {beta}", code=errors.SHAPE_MISMATCH)
        self._beta = beta
        self._labels = labels
        self.label_names = label_names
        self._score_name = f"f{beta:g}"
        self.reset()

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        gold_labels = self.require_gold_shape(
            "fbeta",
            predictions,
            gold_labels,
            predictions.shape[:-1],
            "predictions (..., C) and gold labels (...)",
        )
        num_classes = predictions.size(-1)
        if self._num_classes is None:
            self._num_classes = num_classes
        elif num_classes != self._num_classes:
            raise ModelError(
                f"fbeta saw {num_classes} classes after {self._num_classes} in earlier batches",
                code=errors.SHAPE_MISMATCH,
            )
        predicted = predictions.argmax(dim=-1)
        gold = gold_labels.long()
        if mask is not None:
            mask = mask.bool()
            predicted = predicted[mask]
            gold = gold[mask]
        else:
            predicted = predicted.reshape(-1)
            gold = gold.reshape(-1)
        gold_counts = torch.bincount(gold, minlength=num_classes)
        if gold_counts.numel() != num_classes:
            raise ModelError(
                f"a gold label is {gold_counts.numel() - 1} but there are only {num_classes} "
                "predicted classes",
                code=errors.SHAPE_MISMATCH,
            )
        hits = gold[predicted == gold]
        self._true_positives = self._true_positives + torch.bincount(hits, minlength=num_classes)
        self._predicted = self._predicted + torch.bincount(predicted, minlength=num_classes)
        self._gold = self._gold + gold_counts

    def get_scores(self, reset: bool = False) -> tuple[list[float], list[float], list[float]]:
        """Per-class precision, recall and F-beta, indexed by class id."""
        if self._num_classes is None:
            scores: tuple[list[float], list[float], list[float]] = ([], [], [])
        else:
            true_positives = torch.as_tensor(self._true_positives, dtype=torch.float64)
            predicted = torch.as_tensor(self._predicted, dtype=torch.float64)
            gold = torch.as_tensor(self._gold, dtype=torch.float64)
            precision = _safe_divide(true_positives, predicted)
            recall = _safe_divide(true_positives, gold)
            beta2 = self._beta**2
            fscore = _safe_divide((1 + beta2) * precision * recall, beta2 * precision + recall)
            scores = (precision.tolist(), recall.tolist(), fscore.tolist())
        if reset:
            self.reset()
        return scores

    def get_metric(self, reset: bool = False) -> dict[str, float]:
        precision, recall, fscore = self.get_scores(reset=reset)
        classes = self._labels if self._labels is not None else list(range(len(precision)))
        classes = [index for index in classes if index < len(precision)]
        names = self.label_names or []
        metrics: dict[str, float] = {}
        for index in classes:
            name = names[index] if index < len(names) else str(index)
            metrics[f"{name}_precision"] = precision[index]
            metrics[f"{name}_recall"] = recall[index]
            metrics[f"{name}_{self._score_name}"] = fscore[index]
        count = len(classes)
        metrics["macro_precision"] = sum(precision[i] for i in classes) / count if count else 0.0
        metrics["macro_recall"] = sum(recall[i] for i in classes) / count if count else 0.0
        metrics[f"macro_{self._score_name}"] = (
            sum(fscore[i] for i in classes) / count if count else 0.0
        )
        return metrics

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        counts = state["_gold"]
        self._num_classes = int(counts.numel()) if isinstance(counts, torch.Tensor) else None

    def reset(self) -> None:
        self._num_classes = None
        self._true_positives = 0
        self._predicted = 0
        self._gold = 0


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-300), 0.0)

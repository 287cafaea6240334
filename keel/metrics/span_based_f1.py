"""``span_f1``: span-level precision, recall and F1 per type and overall, as conlleval scores."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import torch

from keel.common import errors
from keel.common.constraints import Supplied
from keel.common.errors import ConfigurationError
from keel.data import span_utils
from keel.data.vocabulary import DEFAULT_OOV_TOKEN, DEFAULT_PADDING_TOKEN, Vocabulary
from keel.metrics.metric import Metric

# The prefixes each scheme may use; a label outside them means the wrong label_encoding.
_SCHEME_PREFIXES = {"BIO": {"B", "I"}, "IOB1": {"B", "I"}, "BIOUL": {"B", "I", "L", "U"}}


@Metric.register("span_f1")
class SpanBasedF1Measure(Metric):
    """Exact-match span scores over tag sequences in ``label_encoding`` (BIO, IOB1, BIOUL).

    Spans are read as conlleval reads them (see ``keel.data.span_utils``), so ill-formed
    predicted sequences are scored, not rejected. Predictions are (B, T, C) scores or (B, T) tag
    ids; gold labels (B, T) tag ids; the mask (B, T) left-aligned. Reports
    ``precision-<type>``, ``recall-<type>``, ``f1-measure-<type>`` and the same for ``overall``.
    """

    statistics = ("_true_positives", "_false_positives", "_false_negatives")

    def __init__(
        self,
        vocab: Annotated[Vocabulary, Supplied],
        tag_namespace: str = "labels",
        ignore_classes: list[str] | None = None,
        label_encoding: str = "BIO",
    ) -> None:
        if label_encoding not in _SCHEME_PREFIXES:
            raise ConfigurationError(
                f"label_encoding {label_encoding!r} is not a span scheme; expected one of "
                f"{', '.join(_SCHEME_PREFIXES)}",
                code=errors.BAD_VALUE,
            )
        index_to_label = vocab.get_index_to_token_vocabulary(tag_namespace)
        # A padded namespace's padding and OOV entries count as outside any span.
        self._labels = [
            "O"
            if index_to_label[index] in (DEFAULT_PADDING_TOKEN, DEFAULT_OOV_TOKEN)
            else index_to_label[index]
            for index in range(len(index_to_label))
        ]
        allowed = _SCHEME_PREFIXES[label_encoding]
        for label in self._labels:
            prefix = label.partition("-")[0]
            valid = label == "O" or (prefix in allowed and len(label) > len(prefix) + 1)
            if not valid:
                raise ConfigurationError(
                    f"label {label!r} in namespace {tag_namespace!r} is not a span tag of "
                    f"{label_encoding} (O or {'/'.join(sorted(allowed))}-TYPE); set label_encoding "
                    "to the data's scheme, or turn calculate_span_f1 off",
                    code=errors.BAD_VALUE,
                )
        self._label_encoding = label_encoding
        self._ignore_classes = list(ignore_classes or [])
        self.reset()

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        if predictions.dim() == 3:
            predictions = predictions.argmax(dim=-1)
        gold_labels = self.require_gold_shape(
            "span_f1",
            predictions,
            gold_labels,
            predictions.shape,
            "predictions (B, T, C) or (B, T) and gold labels (B, T)",
        )
        if mask is None:
            mask = torch.ones_like(gold_labels, dtype=torch.bool)
        lengths = mask.bool().sum(dim=1).tolist()
        labels = self._labels
        for length, predicted_row, gold_row in zip(
            lengths, predictions.tolist(), gold_labels.tolist(), strict=True
        ):
            predicted = [labels[i] for i in predicted_row[:length]]
            gold = [labels[i] for i in gold_row[:length]]
            predicted_spans = set(span_utils.tags_to_spans(predicted, self._ignore_classes))
            gold_spans = set(span_utils.tags_to_spans(gold, self._ignore_classes))
            for label, _ in predicted_spans & gold_spans:
                self._true_positives[label] += 1
            for label, _ in predicted_spans - gold_spans:
                self._false_positives[label] += 1
            for label, _ in gold_spans - predicted_spans:
                self._false_negatives[label] += 1

    def get_metric(self, reset: bool = False) -> dict[str, float]:
        types = set(self._true_positives) | set(self._false_positives)
        types |= set(self._false_negatives)
        metrics: dict[str, float] = {}
        for span_type in sorted(types):
            precision, recall, f1 = _prf(
                self._true_positives[span_type],
                self._false_positives[span_type],
                self._false_negatives[span_type],
            )
            metrics[f"precision-{span_type}"] = precision
            metrics[f"recall-{span_type}"] = recall
            metrics[f"f1-measure-{span_type}"] = f1
        precision, recall, f1 = _prf(
            sum(self._true_positives.values()),
            sum(self._false_positives.values()),
            sum(self._false_negatives.values()),
        )
        metrics["precision-overall"] = precision
        metrics["recall-overall"] = recall
        metrics["f1-measure-overall"] = f1
        if reset:
            self.reset()
        return metrics

    def reset(self) -> None:
        self._true_positives: Counter[str] = Counter()
        self._false_positives: Counter[str] = Counter()
        self._false_negatives: Counter[str] = Counter()


def _prf(true_positives: int, false_positives: int, false_negatives: int) -> tuple[float, ...]:
    """conlleval's definitions: 0 where a denominator is 0."""
    found = true_positives + false_positives
    gold = true_positives + false_negatives
    precision = true_positives / found if found else 0.0
    recall = true_positives / gold if gold else 0.0
    total = precision + recall
    f1 = 2 * precision * recall / total if total else 0.0
    return precision, recall, f1

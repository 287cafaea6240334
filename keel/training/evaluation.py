"""Evaluating a model on instances: the metrics the trainer reports for validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from keel.data.batch import PackedInstances
from keel.data.data_loaders.multiprocess_data_loader import MultiProcessDataLoader
from keel.data.instance import Instance
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model, split_outputs


def evaluate(
    model: Model,
    instances: Sequence[Instance],
    vocab: Vocabulary,
    *,
    batch_size: int = 32,
    packed: PackedInstances | None = None,
    collect: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """Run ``model`` over ``instances`` without gradients; returns its metrics and mean loss.

    ``packed``: the same instances already packed with ``vocab``, so they are not packed again.
    ``collect`` receives each batch's decoded outputs, one dict per instance, in order.
    """
    loader = MultiProcessDataLoader(instances=list(instances), batch_size=batch_size)
    loader.index_with(vocab, packed=packed)
    was_training = model.training
    model.eval()
    model.get_metrics(reset=True)
    total_loss, batches, seen = 0.0, 0, 0
    with torch.inference_mode():
        for batch in loader:
            output = model(**batch)
            if "loss" in output:
                total_loss += float(output["loss"])
                batches += 1
            if collect is not None:  # the loader keeps the instances' order
                size = min(batch_size, len(instances) - seen)
                seen += size
                collect(split_outputs(model.make_output_human_readable(dict(output)), size))
    metrics: dict[str, Any] = dict(model.get_metrics(reset=True))
    if batches:
        metrics["loss"] = total_loss / batches
    model.train(was_training)
    return metrics


def gold_and_predicted(instance: Instance, output: dict[str, Any]) -> list[tuple[str, str]]:
    """(gold, predicted) pairs of one instance: its label, or each token's tag."""
    fields = instance.fields
    if "label" in output and "label" in fields:
        return [(str(getattr(fields["label"], "label", "")), str(output["label"]))]
    if "tags" in output and "tags" in fields:
        gold = getattr(fields["tags"], "labels", [])
        return [(str(g), str(p)) for g, p in zip(gold, output["tags"], strict=False)]
    return []


def class_report(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, and the confusion matrix (rows: gold,
    columns: predicted, both in ``labels`` order), from (gold, predicted) pairs."""
    labels = sorted({gold for gold, _ in pairs} | {predicted for _, predicted in pairs})
    position = {label: index for index, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for gold, predicted in pairs:
        matrix[position[gold]][position[predicted]] += 1
    per_class = {}
    for label, index in position.items():
        hits = matrix[index][index]
        support = sum(matrix[index])
        predicted_count = sum(row[index] for row in matrix)
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    return {"per_class": per_class, "confusion_matrix": {"labels": labels, "matrix": matrix}}

"""Evaluating a model on instances: the metrics the trainer reports for validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from keel.data.batch import PackedInstances
from keel.data.data_loaders.multiprocess_data_loader import MultiProcessDataLoader
from keel.data.instance import Instance
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model


def evaluate(
    model: Model,
    instances: Sequence[Instance],
    vocab: Vocabulary,
    *,
    batch_size: int = 32,
    packed: PackedInstances | None = None,
) -> dict[str, Any]:
    """Run ``model`` over ``instances`` without gradients; returns its metrics and mean loss.

    ``packed``: the same instances already packed with ``vocab``, so they are not packed again.
    """
    loader = MultiProcessDataLoader(instances=list(instances), batch_size=batch_size)
    loader.index_with(vocab, packed=packed)
    was_training = model.training
    model.eval()
    model.get_metrics(reset=True)
    total_loss, batches = 0.0, 0
    with torch.inference_mode():
        for batch in loader:
            output = model(**batch)
            if "loss" in output:
                total_loss += float(output["loss"])
                batches += 1
    metrics: dict[str, Any] = dict(model.get_metrics(reset=True))
    if batches:
        metrics["loss"] = total_loss / batches
    model.train(was_training)
    return metrics

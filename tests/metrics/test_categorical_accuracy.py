"""categorical_accuracy: top-1, top-k, masks, accumulation and reset."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ModelError
from keel.metrics import CategoricalAccuracy, Metric

TOL = 1e-9
SCORES = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
GOLD = torch.tensor([1, 1, 2, 2])


def test_categorical_accuracy_top1_accumulates_and_resets():
    metric = Metric.by_name("categorical_accuracy")()
    metric(SCORES, GOLD)  # right, wrong, right, wrong
    assert metric.get_metric()["accuracy"] == pytest.approx(0.5, abs=TOL)
    metric(SCORES[:1], GOLD[:1])
    assert metric.get_metric(reset=True)["accuracy"] == pytest.approx(3 / 5, abs=TOL)
    assert metric.get_metric() == {"accuracy": 0.0}


def test_categorical_accuracy_top_k_and_mask():
    metric = CategoricalAccuracy(top_k=2)
    metric(SCORES, GOLD)  # row 1: gold 1 is 2nd best; row 3: gold 2 is 2nd best
    assert metric.get_metric(reset=True)["accuracy"] == pytest.approx(1.0, abs=TOL)
    metric = CategoricalAccuracy()
    metric(SCORES.unsqueeze(0), GOLD.unsqueeze(0), torch.tensor([[True, False, True, False]]))
    assert metric.get_metric()["accuracy"] == pytest.approx(1.0, abs=TOL)


def test_categorical_accuracy_shape_mismatch():
    with pytest.raises(ModelError, match="predictions"):
        CategoricalAccuracy()(SCORES, GOLD[:2])

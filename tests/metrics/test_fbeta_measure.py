"""fbeta: per-label and macro precision / recall / F1 on a hand-made case."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ModelError
from keel.metrics import FBetaMeasure, Metric

TOL = 1e-9


def _one_hot(ids: list[int], classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), classes).float()


# predicted: 0 0 1 1 1 2 ; gold: 0 1 1 1 2 2
# class 0: tp 1, predicted 2, gold 1 -> p 1/2, r 1,   f1 2/3
# class 1: tp 2, predicted 3, gold 3 -> p 2/3, r 2/3, f1 2/3
# class 2: tp 1, predicted 1, gold 2 -> p 1,   r 1/2, f1 2/3
PREDICTED = _one_hot([0, 0, 1, 1, 1, 2])
GOLD = torch.tensor([0, 1, 1, 1, 2, 2])


def test_fbeta_measure_per_label_and_macro_hand_computed():
    metric = Metric.by_name("fbeta")(label_names=["neg", "neu", "pos"])
    metric(PREDICTED, GOLD)
    scores = metric.get_metric()
    assert scores["neg_precision"] == pytest.approx(1 / 2, abs=TOL)
    assert scores["neg_recall"] == pytest.approx(1.0, abs=TOL)
    assert scores["neu_precision"] == pytest.approx(2 / 3, abs=TOL)
    assert scores["pos_recall"] == pytest.approx(1 / 2, abs=TOL)
    for name in ("neg", "neu", "pos"):
        assert scores[f"{name}_f1"] == pytest.approx(2 / 3, abs=TOL)
    assert scores["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3, abs=TOL)
    assert scores["macro_recall"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3, abs=TOL)
    assert scores["macro_f1"] == pytest.approx(2 / 3, abs=TOL)
    assert all(isinstance(value, float) for value in scores.values())


def test_fbeta_measure_accumulates_over_batches_with_mask():
    metric = FBetaMeasure()
    metric(PREDICTED[:3], GOLD[:3])
    metric(PREDICTED[3:].unsqueeze(0), GOLD[3:].unsqueeze(0), torch.tensor([[True, True, True]]))
    metric(_one_hot([2]), torch.tensor([0]), torch.tensor([False]))  # masked out: ignored
    assert metric.get_metric(reset=True)["macro_f1"] == pytest.approx(2 / 3, abs=TOL)
    assert metric.get_metric() == {"macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0}


def test_fbeta_measure_beta_labels_and_empty_classes():
    metric = FBetaMeasure(beta=2.0, labels=[0, 2])
    metric(_one_hot([0, 0], classes=3), torch.tensor([0, 2]))
    scores = metric.get_metric()
    # class 0: p 1/2, r 1 -> f2 = 5 * 0.5 / (4 * 0.5 + 1) = 5/6; class 2: never predicted -> 0
    assert scores["0_f2"] == pytest.approx(5 / 6, abs=TOL)
    assert scores["2_precision"] == 0.0 and scores["2_f2"] == 0.0
    assert "1_f2" not in scores
    assert scores["macro_f2"] == pytest.approx(5 / 12, abs=TOL)


def test_fbeta_measure_rejects_out_of_range_gold_and_class_count_changes():
    metric = FBetaMeasure()
    with pytest.raises(ModelError, match="gold label"):
        metric(_one_hot([0]), torch.tensor([5]))
    metric = FBetaMeasure()
    metric(_one_hot([0]), torch.tensor([0]))
    with pytest.raises(ModelError, match="classes"):
        metric(_one_hot([0], classes=4), torch.tensor([0]))

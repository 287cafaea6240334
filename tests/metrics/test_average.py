"""average: the running mean of scalars."""

from __future__ import annotations

import pytest
import torch

from keel.metrics import Average, Metric


def test_average_running_mean_of_floats_and_tensors_and_reset():
    metric = Metric.by_name("average")()
    assert isinstance(metric, Average)
    metric(1.0)
    metric(torch.tensor(2.0, requires_grad=True))
    metric(6.0)
    assert metric.get_metric(reset=True)["average"] == pytest.approx(3.0, abs=1e-9)
    assert metric.get_metric() == {"average": 0.0}

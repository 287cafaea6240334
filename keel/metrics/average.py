"""``average``: the running mean of a scalar, e.g. a loss term."""

from __future__ import annotations

import torch

from keel.metrics.metric import Metric


@Metric.register("average")
class Average(Metric):
    """Call with a scalar (float or 0-d tensor) per batch; reports ``{"average": mean}``."""

    statistics = ("_total", "_count")

    _total: torch.Tensor | float
    _count: int

    def __init__(self) -> None:
        self.reset()

    def __call__(  # type: ignore[override]
        self, value: torch.Tensor | float, gold_labels: None = None, mask: None = None
    ) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach()
        self._total = self._total + value
        self._count += 1

    def get_metric(self, reset: bool = False) -> dict[str, float]:
        average = float(self._total) / self._count if self._count else 0.0
        if reset:
            self.reset()
        return {"average": average}

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0

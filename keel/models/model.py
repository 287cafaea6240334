"""The Model base class: a torch module with metrics, decoding and a predict-on-instances helper."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Any, ClassVar

import numpy as np
import torch

from keel.common.constraints import Supplied
from keel.common.registry import Registrable
from keel.data.batch import collate
from keel.data.instance import Instance
from keel.data.vocabulary import Vocabulary
from keel.modules.regularizers import RegularizerApplicator
from keel.modules.util import move_to_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoldenOutputs:
    """The outputs of a model that ``verify`` compares on its golden inputs.

    ``scores``: float outputs compared within a tolerance (logits); ``decoded``: outputs compared
    exactly (labels, tags); ``mask``: a per-token mask output whose padding rows are cut from
    the scores before comparing (taggers), or None.
    """

    scores: tuple[str, ...] = ()
    decoded: tuple[str, ...] = ()
    mask: str | None = None


@dataclass(frozen=True)
class MetricNames:
    """The metric names a model reports: those its config determines, and ``fnmatch`` patterns
    for names that depend on the data (per label, per span type)."""

    exact: frozenset[str]
    patterns: tuple[str, ...] = ()

    def covers(self, name: str) -> bool:
        return name in self.exact or any(fnmatchcase(name, pattern) for pattern in self.patterns)


class Model(torch.nn.Module, Registrable):
    """A keel model: ``forward(**batch)`` returns a dict of tensors, with ``"loss"`` when the
    batch carries gold labels.

    ``default_predictor`` names the predictor that serves the model. ``golden_outputs`` names
    the outputs ``verify`` compares; None (the default, for models that do not say) compares
    every per-instance output except ``loss``: float arrays within the tolerance, everything
    else exactly.
    """

    default_predictor: ClassVar[str | None] = None
    golden_outputs: ClassVar[GoldenOutputs | None] = None

    def __init__(
        self,
        vocab: Annotated[Vocabulary, Supplied],
        regularizer: RegularizerApplicator | None = None,
    ) -> None:
        super().__init__()
        self.vocab = vocab
        self._regularizer = regularizer

    def get_regularization_penalty(self) -> torch.Tensor | None:
        """The penalty the config's ``regularizer`` adds to a training batch's loss, or None."""
        return None if self._regularizer is None else self._regularizer(self)

    def forward(self, *inputs: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def get_metrics(self, reset: bool = False) -> dict[str, float]:
        """The model's metrics since the last reset, as a flat dict of floats."""
        return {}

    @classmethod
    def metric_names(cls, config: Mapping[str, Any]) -> MetricNames | None:
        """The metrics a model built from ``config`` (its resolved section) will report, so a
        misspelled ``trainer.validation_metric`` is a config error before any work; None when
        the model does not say, and the trainer checks at the first validation instead. Only a
        class that defines this itself is taken at its word (a subclass may add metrics)."""
        return None

    def make_output_human_readable(self, output_dict: dict[str, Any]) -> dict[str, Any]:
        """``output_dict`` plus decoded, per-instance values (label strings, tag lists)."""
        return output_dict

    def get_device(self) -> torch.device:
        """The device the model's parameters are on (CPU for a model without any)."""
        parameter = next(self.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def forward_on_instance(self, instance: Instance) -> dict[str, Any]:
        """``forward_on_instances`` for a single instance."""
        return self.forward_on_instances([instance])[0]

    def forward_on_instances(self, instances: Sequence[Instance]) -> list[dict[str, Any]]:
        """Run the model on ``instances`` as one batch (no gradients) and split the decoded output
        per instance: tensors become numpy arrays (or Python scalars), lists are split by item.

        Outputs that are not per instance (a 0-d loss, say) are left out. The caller chooses
        train or eval mode; predictors and evaluation put the model in eval mode first.
        """
        if not instances:
            return []
        for instance in instances:
            instance.index_fields(self.vocab)
        batch = move_to_device(collate(instances), self.get_device())
        with torch.no_grad():
            outputs = self.make_output_human_readable(self(**batch))
        return split_outputs(outputs, len(instances))


def split_outputs(outputs: dict[str, Any], batch_size: int) -> list[dict[str, Any]]:
    """Per-instance dicts from a batched output dict (see ``Model.forward_on_instances``)."""
    per_instance: list[dict[str, Any]] = [{} for _ in range(batch_size)]
    for name, value in outputs.items():
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or value.size(0) != batch_size:
                logger.debug("output %r is not per instance; left out of the split", name)
                continue
            value = value.detach()
            if value.dtype in (torch.bfloat16, torch.float16):
                value = value.float()
            array = value.cpu().numpy()
            for index in range(batch_size):
                row = array[index]
                per_instance[index][name] = row.item() if np.ndim(row) == 0 else row
        elif isinstance(value, list | tuple) and len(value) == batch_size:
            for index in range(batch_size):
                per_instance[index][name] = value[index]
        else:
            logger.debug("output %r is not per instance; left out of the split", name)
    return per_instance

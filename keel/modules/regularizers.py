"""Weight penalties added to the training loss (AllenNLP's ``regularizer`` model key).

A model's config may say::

    "regularizer": {"regexes": [["transitions$", {"type": "l2", "alpha": 0.01}]]}

Each trainable parameter whose name matches a regex (``re.search``, first match wins, in the
given order) adds its regularizer's penalty to every training batch's loss, as in AllenNLP.
Validation losses carry no penalty.
"""

from __future__ import annotations

import re
from typing import Annotated

import torch

from keel.common import errors
from keel.common.constraints import NonNegative
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.common.registry import Registrable


class Regularizer(Registrable):
    """A penalty on one parameter tensor."""

    def __call__(self, parameter: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@Regularizer.register("l1")
class L1Regularizer(Regularizer):
    """``alpha * sum(|w|)``."""

    def __init__(self, alpha: Annotated[float, NonNegative] = 0.01) -> None:
        self.alpha = alpha

    def __call__(self, parameter: torch.Tensor) -> torch.Tensor:
        return self.alpha * parameter.abs().sum()


@Regularizer.register("l2")
class L2Regularizer(Regularizer):
    """``alpha * sum(w ** 2)`` (no 1/2 factor, as in AllenNLP)."""

    def __init__(self, alpha: Annotated[float, NonNegative] = 0.01) -> None:
        self.alpha = alpha

    def __call__(self, parameter: torch.Tensor) -> torch.Tensor:
        return self.alpha * parameter.pow(2).sum()


class RegularizerApplicator:
    """Applies regularizers to the parameters whose names match their regexes."""

    def __init__(self, regexes: list[tuple[str, Regularizer]] | None = None) -> None:
        self._regularizers: list[tuple[re.Pattern[str], Regularizer]] = []
        for index, (regex, regularizer) in enumerate(regexes or []):
            try:
                self._regularizers.append((re.compile(regex), regularizer))
            except re.error as error:
                raise ConfigurationError(
                    [
                        ConfigIssue(
                            errors.BAD_VALUE,
                            f"regexes[{index}][0]",
                            f"not a regular expression ({error})",
                            found=regex,
                        )
                    ]
                ) from error

    def __call__(self, module: torch.nn.Module) -> torch.Tensor:
        """The summed penalty of ``module``'s trainable parameters (0 when none matches)."""
        penalty = torch.zeros(())
        for name, parameter in module.named_parameters():
            if not parameter.requires_grad:
                continue
            for pattern, regularizer in self._regularizers:
                if pattern.search(name):
                    penalty = penalty.to(parameter.device) + regularizer(parameter)
                    break
        return penalty

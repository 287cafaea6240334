"""Optimizers built from config: torch's, with AllenNLP's names, keys and parameter groups.

Each optimizer receives ``model_parameters`` (a list of ``(name, parameter)`` pairs, supplied by
the trainer) and optional ``parameter_groups`` in AllenNLP's format::

    "parameter_groups": [[["^embedder\\\\.", "bias$"], {"lr": 0.01}], ...]

Each group is a list of regexes and the options for the parameters whose names match one of them
(``re.search``); options may include ``"requires_grad": false`` to freeze those parameters.
Parameters that match no group form a last group with the optimizer's own options.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

import torch

from keel.common import errors
from keel.common.constraints import NonNegative, NonNegativeFinite, Positive, Range, Supplied
from keel.common.errors import ConfigurationError
from keel.common.registry import Registrable

logger = logging.getLogger(__name__)

NamedParameters = list[tuple[str, torch.nn.Parameter]]
ParameterGroups = list[tuple[list[str], dict[str, Any]]]


class Optimizer(torch.optim.Optimizer, Registrable):
    """Base class of keel's optimizers (each is also the ``torch.optim`` class it names)."""

    default_implementation = "adam"


def make_parameter_groups(
    model_parameters: NamedParameters, groups: ParameterGroups | None
) -> list[dict[str, Any]] | list[torch.nn.Parameter]:
    """Split named parameters into torch parameter groups by AllenNLP-style regex groups."""
    parameters = [(name, p) for name, p in model_parameters if p.requires_grad]
    if not groups:
        return [p for _, p in parameters]
    compiled: list[tuple[list[re.Pattern[str]], dict[str, Any]]] = []
    for index, group in enumerate(groups):
        if len(group) != 2 or not isinstance(group[1], dict):
            raise ConfigurationError(
                f"parameter_groups[{index}] must be [[regex, ...], {{option: value}}]",
                code=errors.BAD_VALUE,
            )
        try:
            patterns = [re.compile(regex) for regex in group[0]]
        except re.error as error:
            raise ConfigurationError(
                f"parameter_groups[{index}]: bad regex: {error}", code=errors.BAD_VALUE
            ) from error
        compiled.append((patterns, dict(group[1])))
    members: list[list[torch.nn.Parameter]] = [[] for _ in compiled]
    rest: list[torch.nn.Parameter] = []
    used = [False] * len(compiled)
    for name, parameter in parameters:
        matched = [
            index
            for index, (patterns, _) in enumerate(compiled)
            if any(pattern.search(name) for pattern in patterns)
        ]
        if len(matched) > 1:
            raise ConfigurationError(
                f"parameter {name!r} matches parameter_groups {matched}; it must match at most one",
                code=errors.BAD_VALUE,
            )
        if matched:
            members[matched[0]].append(parameter)
            used[matched[0]] = True
        else:
            rest.append(parameter)
    for index, was_used in enumerate(used):
        if not was_used:
            logger.warning("parameter_groups[%d] matches no parameter", index)
    result: list[dict[str, Any]] = []
    for (_, options), group_parameters in zip(compiled, members, strict=True):
        requires_grad = options.pop("requires_grad", True)
        if not requires_grad:
            for parameter in group_parameters:
                parameter.requires_grad_(False)
            continue
        if group_parameters:
            result.append({"params": group_parameters, **options})
    if rest:
        result.append({"params": rest})
    return result


@Optimizer.register("adam")
class AdamOptimizer(Optimizer, torch.optim.Adam):
    """``torch.optim.Adam``."""

    def __init__(
        self,
        model_parameters: Annotated[NamedParameters, Supplied],
        parameter_groups: ParameterGroups | None = None,
        lr: Annotated[float, NonNegativeFinite] = 0.001,
        betas: tuple[Annotated[float, Range(ge=0, lt=1)], Annotated[float, Range(ge=0, lt=1)]] = (
            0.9,
            0.999,
        ),
        eps: Annotated[float, Positive] = 1e-08,
        weight_decay: Annotated[float, NonNegative] = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            betas=(betas[0], betas[1]),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
        )


@Optimizer.register("adamw")
class AdamWOptimizer(Optimizer, torch.optim.AdamW):
    """``torch.optim.AdamW`` (decoupled weight decay)."""

    def __init__(
        self,
        model_parameters: Annotated[NamedParameters, Supplied],
        parameter_groups: ParameterGroups | None = None,
        lr: Annotated[float, NonNegativeFinite] = 0.001,
        betas: tuple[Annotated[float, Range(ge=0, lt=1)], Annotated[float, Range(ge=0, lt=1)]] = (
            0.9,
            0.999,
        ),
        eps: Annotated[float, Positive] = 1e-08,
        weight_decay: Annotated[float, NonNegative] = 0.01,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            betas=(betas[0], betas[1]),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
        )


@Optimizer.register("sgd")
class SgdOptimizer(Optimizer, torch.optim.SGD):
    """``torch.optim.SGD``; ``lr`` is required, as in AllenNLP."""

    def __init__(
        self,
        model_parameters: Annotated[NamedParameters, Supplied],
        lr: Annotated[float, NonNegativeFinite],
        parameter_groups: ParameterGroups | None = None,
        momentum: Annotated[float, NonNegative] = 0.0,
        dampening: Annotated[float, NonNegative] = 0.0,
        weight_decay: Annotated[float, NonNegative] = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )


@Optimizer.register("adadelta")
class AdadeltaOptimizer(Optimizer, torch.optim.Adadelta):
    """``torch.optim.Adadelta`` with torch's defaults (AllenNLP's ``adadelta``)."""

    def __init__(
        self,
        model_parameters: Annotated[NamedParameters, Supplied],
        lr: Annotated[float, NonNegativeFinite] = 1.0,
        parameter_groups: ParameterGroups | None = None,
        rho: Annotated[float, NonNegative] = 0.9,
        eps: Annotated[float, NonNegative] = 1e-6,
        weight_decay: Annotated[float, NonNegative] = 0.0,
    ) -> None:
        super().__init__(
            make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
        )

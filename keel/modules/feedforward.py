"""A stack of Linear -> activation -> dropout layers, configured as in AllenNLP."""

from __future__ import annotations

from typing import Annotated, TypeVar

import torch

from keel.common import errors
from keel.common.constraints import Positive, Probability
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.modules.activations import get_activation

T = TypeVar("T")


class FeedForward(torch.nn.Module):
    """``num_layers`` Linear layers, each followed by its activation and dropout.

    ``hidden_dims``, ``activations`` and ``dropout`` take one value for every layer or a list
    with one value per layer.
    """

    def __init__(
        self,
        input_dim: Annotated[int, Positive],
        num_layers: Annotated[int, Positive],
        hidden_dims: int | list[int],
        activations: str | list[str],
        dropout: Annotated[float, Probability] | list[Annotated[float, Probability]] = 0.0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.BAD_VALUE, "num_layers", "must be at least 1", found=num_layers
                    )
                ]
            )
        dims = _per_layer(hidden_dims, num_layers, "hidden_dims")
        names = _per_layer(activations, num_layers, "activations")
        rates = _per_layer(dropout, num_layers, "dropout")
        layers: list[torch.nn.Module] = []
        in_dims = [input_dim, *dims[:-1]]
        for index, (in_dim, out_dim, name, rate) in enumerate(
            zip(in_dims, dims, names, rates, strict=True)
        ):
            layers.append(torch.nn.Linear(in_dim, out_dim))
            layers.append(get_activation(name, path=f"activations.{index}"))
            if rate > 0:
                layers.append(torch.nn.Dropout(rate))
        self._layers = torch.nn.Sequential(*layers)
        self._input_dim = input_dim
        self._output_dim = dims[-1]

    def get_input_dim(self) -> int:
        return self._input_dim

    def get_output_dim(self) -> int:
        return self._output_dim

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(..., input_dim) -> (..., output_dim)."""
        return self._layers(inputs)


def _per_layer(value: T | list[T], num_layers: int, name: str) -> list[T]:
    if not isinstance(value, list):
        return [value] * num_layers
    if len(value) != num_layers:
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_VALUE,
                    name,
                    f"has {len(value)} entries but num_layers is {num_layers}",
                    expected=f"one value or a list of {num_layers}",
                    found=value,
                )
            ]
        )
    return list(value)

"""Activation functions by name, as configs spell them ("relu", "tanh", "linear", ...)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from keel.common import errors
from keel.common.errors import ConfigIssue, ConfigurationError, did_you_mean

_ACTIVATIONS: dict[str, Callable[[], torch.nn.Module]] = {
    "linear": torch.nn.Identity,
    "relu": torch.nn.ReLU,
    "relu6": torch.nn.ReLU6,
    "elu": torch.nn.ELU,
    "gelu": torch.nn.GELU,
    "leaky_relu": torch.nn.LeakyReLU,
    "mish": torch.nn.Mish,
    "selu": torch.nn.SELU,
    "sigmoid": torch.nn.Sigmoid,
    "silu": torch.nn.SiLU,
    "swish": torch.nn.SiLU,
    "softplus": torch.nn.Softplus,
    "tanh": torch.nn.Tanh,
}


def activation_names() -> list[str]:
    """Every activation name a config may use."""
    return sorted(_ACTIVATIONS)


def get_activation(name: str, path: str = "activation") -> torch.nn.Module:
    """A fresh activation module for ``name``; an unknown name is a ConfigurationError."""
    factory = _ACTIVATIONS.get(name)
    if factory is None:
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_VALUE,
                    path,
                    "unknown activation",
                    expected="one of " + ", ".join(activation_names()),
                    found=name,
                    suggestion=did_you_mean(name, _ACTIVATIONS),
                )
            ]
        )
    return factory()

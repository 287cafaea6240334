"""Activations by name."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.modules.activations import activation_names, get_activation


def test_activations_known_names_compute_the_named_function():
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert torch.equal(get_activation("relu")(x), torch.tensor([0.0, 0.0, 2.0]))
    assert torch.equal(get_activation("linear")(x), x)
    assert torch.allclose(get_activation("tanh")(x), torch.tanh(x))
    assert torch.allclose(get_activation("sigmoid")(x), torch.sigmoid(x))
    assert torch.allclose(get_activation("gelu")(x), torch.nn.functional.gelu(x))
    assert {"relu", "tanh", "sigmoid", "gelu", "linear"} <= set(activation_names())


def test_activations_unknown_name_suggests_close_one():
    with pytest.raises(ConfigurationError, match="relu") as info:
        get_activation("rellu", path="activations.0")
    assert info.value.code == "KC009"
    assert info.value.issues[0].path == "activations.0"
    assert info.value.issues[0].suggestion == "relu"

"""FeedForward: layer shapes, per-layer settings, config errors."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.modules.feedforward import FeedForward


def test_feedforward_output_shape_and_dims():
    network = FeedForward(input_dim=5, num_layers=2, hidden_dims=[4, 3], activations="relu")
    assert network.get_input_dim() == 5 and network.get_output_dim() == 3
    assert network(torch.randn(7, 5)).shape == (7, 3)
    assert network(torch.randn(2, 6, 5)).shape == (2, 6, 3)


def test_feedforward_computes_linear_then_activation():
    network = FeedForward(input_dim=2, num_layers=1, hidden_dims=2, activations="relu")
    linear = network._layers[0]
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        linear.bias.zero_()
    assert torch.equal(network(torch.tensor([[3.0, 2.0]])), torch.tensor([[3.0, 0.0]]))


def test_feedforward_per_layer_activations_and_dropout():
    network = FeedForward(
        input_dim=3, num_layers=2, hidden_dims=4, activations=["tanh", "linear"], dropout=[0.5, 0.0]
    )
    kinds = [type(layer).__name__ for layer in network._layers]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Identity"]
    network.eval()
    x = torch.randn(2, 3)
    assert torch.equal(network(x), network(x))


def test_feedforward_list_length_must_match_num_layers():
    with pytest.raises(ConfigurationError, match="num_layers is 2") as info:
        FeedForward(input_dim=3, num_layers=2, hidden_dims=[4, 4, 4], activations="relu")
    assert info.value.issues[0].path == "hidden_dims"
    with pytest.raises(ConfigurationError, match="activation"):
        FeedForward(input_dim=3, num_layers=1, hidden_dims=4, activations="nope")


def test_feedforward_builds_from_config_and_reports_located_errors():
    from keel.common.from_params import build

    config = {"input_dim": 3, "num_layers": 2, "hidden_dims": [4, 2], "activations": "tanh"}
    network = build(FeedForward, dict(config))
    assert network.get_output_dim() == 2
    with pytest.raises(ConfigurationError) as info:
        build(FeedForward, {**config, "hidden_dims": "four"})
    assert info.value.issues[0].path == "hidden_dims"

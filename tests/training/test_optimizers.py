import pytest
import torch

from keel.common import errors
from keel.common.errors import ConfigurationError
from keel.common.from_params import Lazy
from keel.training.optimizers import (
    AdamOptimizer,
    AdamWOptimizer,
    Optimizer,
    SgdOptimizer,
)


class TwoLayers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedder = torch.nn.Embedding(5, 3)
        self.output = torch.nn.Linear(3, 2)


def _build(config):
    model = TwoLayers()
    named = list(model.named_parameters())
    return model, Lazy(Optimizer, config).construct(model_parameters=named)


def test_optimizers_registered_names():
    assert Optimizer.list_available() == ["adam", "adadelta", "adamw", "sgd"]


def test_optimizers_adadelta_keys_reach_torch():
    _, optimizer = _build({"type": "adadelta", "lr": 0.5, "rho": 0.8, "weight_decay": 0.01})
    assert isinstance(optimizer, torch.optim.Adadelta)
    group = optimizer.param_groups[0]
    settings = (group["lr"], group["rho"], group["eps"], group["weight_decay"])
    assert settings == (0.5, 0.8, 1e-6, 0.01)


def test_optimizers_adam_keys_reach_torch():
    _, optimizer = _build(
        {
            "type": "adam",
            "lr": 0.01,
            "betas": [0.8, 0.9],
            "eps": 1e-6,
            "weight_decay": 0.1,
            "amsgrad": True,
        }
    )
    assert isinstance(optimizer, AdamOptimizer)
    assert isinstance(optimizer, torch.optim.Adam)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (0.01, (0.8, 0.9), 1e-6)
    assert (group["weight_decay"], group["amsgrad"]) == (0.1, True)


def test_optimizers_default_type_is_adam():
    _, optimizer = _build({})
    assert type(optimizer) is AdamOptimizer
    assert optimizer.param_groups[0]["lr"] == 0.001


def test_optimizers_adamw_and_sgd():
    _, adamw = _build({"type": "adamw", "lr": 0.002})
    assert isinstance(adamw, AdamWOptimizer)
    assert adamw.param_groups[0]["weight_decay"] == 0.01
    _, sgd = _build({"type": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": True})
    assert isinstance(sgd, SgdOptimizer)
    assert (sgd.param_groups[0]["momentum"], sgd.param_groups[0]["nesterov"]) == (0.9, True)


def test_optimizers_sgd_requires_lr():
    with pytest.raises(ConfigurationError) as caught:
        _build({"type": "sgd"})
    assert caught.value.code == errors.MISSING_KEY


def test_optimizers_unknown_key_is_reported():
    with pytest.raises(ConfigurationError) as caught:
        _build({"type": "adam", "learning_rate": 0.1})
    assert caught.value.code == errors.UNKNOWN_KEY
    assert "lr" in str(caught.value)


def test_optimizers_parameter_groups():
    model, optimizer = _build(
        {
            "type": "adam",
            "lr": 0.01,
            "parameter_groups": [
                [["^embedder\\."], {"lr": 0.1}],
                [["bias$"], {"requires_grad": False}],
            ],
        }
    )
    assert len(optimizer.param_groups) == 2
    embedder, rest = optimizer.param_groups
    assert embedder["lr"] == 0.1
    assert embedder["params"] == [model.embedder.weight]
    assert rest["lr"] == 0.01
    assert rest["params"] == [model.output.weight]
    assert not model.output.bias.requires_grad


def test_optimizers_parameter_matching_two_groups_is_an_error():
    with pytest.raises(ConfigurationError) as caught:
        _build({"parameter_groups": [[["weight"], {}], [["^output"], {}]]})
    assert "output.weight" in str(caught.value)


def test_optimizers_state_round_trips_with_weights_only(tmp_path):
    model, optimizer = _build({"type": "adam", "lr": 0.01, "parameter_groups": [[["bias"], {}]]})
    model.output(model.embedder(torch.tensor([1, 2]))).sum().backward()
    optimizer.step()
    torch.save(optimizer.state_dict(), tmp_path / "o.pt")
    _, fresh = _build({"type": "adam", "lr": 0.01, "parameter_groups": [[["bias"], {}]]})
    fresh.load_state_dict(torch.load(tmp_path / "o.pt", weights_only=True))
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(fresh.state_dict()["state"][0][key], value)

import os

import pytest
import torch

from keel.common import errors
from keel.common.errors import TrainingError
from keel.common.weights import read_weights as load_weights
from keel.common.weights import save_weights
from keel.training.checkpointer import Checkpointer


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {"layer.weight": torch.full((2, 3), value), "layer.bias": torch.zeros(2)}


def _state(epoch: int) -> dict:
    return {"epoch": epoch, "history": [{"loss": 0.5}], "optimizer": {"state": {0: torch.ones(2)}}}


def test_checkpointer_save_latest_load(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    assert checkpointer.latest() is None
    checkpointer.save(0, _weights(0.0), _state(0))
    checkpointer.save(1, _weights(1.0), _state(1))
    latest = checkpointer.latest()
    assert latest is not None and latest.epoch == 1
    weights, state = checkpointer.load(latest)
    assert torch.equal(weights["layer.weight"], torch.full((2, 3), 1.0))
    assert state["epoch"] == 1
    assert torch.equal(state["optimizer"]["state"][0], torch.ones(2))


def test_checkpointer_keeps_most_recent(tmp_path):
    checkpointer = Checkpointer(tmp_path, keep_most_recent=2)
    for epoch in range(4):
        checkpointer.save(epoch, _weights(float(epoch)), _state(epoch))
    assert [c.epoch for c in checkpointer.all()] == [2, 3]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch_2", "epoch_3"]
    keep_all = Checkpointer(tmp_path / "all", keep_most_recent=None)
    for epoch in range(3):
        keep_all.save(epoch, _weights(0.0), _state(epoch))
    assert len(keep_all.all()) == 3


def test_checkpointer_orders_epochs_numerically(tmp_path):
    checkpointer = Checkpointer(tmp_path, keep_most_recent=None)
    for epoch in (9, 10, 2):
        checkpointer.save(epoch, _weights(0.0), _state(epoch))
    assert [c.epoch for c in checkpointer.all()] == [2, 9, 10]


def test_checkpointer_ignores_interrupted_and_incomplete_checkpoints(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(0, _weights(0.0), _state(0))
    # What a kill during the next save leaves: a temporary directory, never an epoch_1.
    (tmp_path / "checkpoints" / ".epoch_1.x.tmp").mkdir()
    (tmp_path / "checkpoints" / ".epoch_1.x.tmp" / "model.safetensors").write_bytes(b"partial")
    (tmp_path / "checkpoints" / "epoch_7").mkdir()  # no files: not a checkpoint
    assert checkpointer.latest().epoch == 0
    checkpointer.save(1, _weights(1.0), _state(1))
    assert not (tmp_path / "checkpoints" / ".epoch_1.x.tmp").exists()


def test_checkpointer_failed_save_publishes_nothing(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - torch.save refuses a lambda
        checkpointer.save(0, _weights(0.0), {"bad": lambda: None})
    assert checkpointer.latest() is None
    assert os.listdir(tmp_path / "checkpoints") == []


class Payload:
    pass


def test_checkpointer_refuses_pickled_objects(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    checkpoint = checkpointer.save(0, _weights(0.0), _state(0))
    torch.save({"epoch": 0, "payload": Payload()}, checkpoint.state_path)
    with pytest.raises(TrainingError) as caught:
        checkpointer.load(checkpoint)
    assert caught.value.code == errors.NOTHING_TO_RECOVER


def test_checkpointer_keep_most_recent_must_be_positive(tmp_path):
    with pytest.raises(TrainingError):
        Checkpointer(tmp_path, keep_most_recent=0)


def test_checkpointer_tied_weights_save_under_every_name(tmp_path):
    shared = torch.nn.Parameter(torch.randn(4, 2))
    state = {"embedding.weight": shared, "output.weight": shared, "t.weight": shared.t()}
    save_weights(state, tmp_path / "w.safetensors")
    loaded = load_weights(tmp_path / "w.safetensors")
    assert sorted(loaded) == ["embedding.weight", "output.weight", "t.weight"]
    assert torch.equal(loaded["output.weight"], shared.detach())
    assert torch.equal(loaded["t.weight"], shared.detach().t())

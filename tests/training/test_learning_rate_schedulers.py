import pytest
import torch

from keel.common.from_params import Lazy
from keel.training.learning_rate_schedulers import (
    LearningRateScheduler,
    LinearWithWarmup,
    ReduceOnPlateau,
)


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _build(config, optimizer, **extras):
    return Lazy(LearningRateScheduler, config).construct(optimizer=optimizer, **extras)


def test_learning_rate_schedulers_registered_names():
    assert LearningRateScheduler.list_available() == ["linear_with_warmup", "reduce_on_plateau"]


def test_learning_rate_schedulers_linear_with_warmup_rates():
    optimizer = _optimizer(lr=2.0)
    scheduler = _build(
        {"type": "linear_with_warmup", "warmup_steps": 4},
        optimizer,
        num_epochs=2,
        num_steps_per_epoch=6,
    )
    assert isinstance(scheduler, LinearWithWarmup)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(13):
        scheduler.step_batch()
        scheduler.step(0.5)  # the per-epoch call changes nothing
        rates.append(scheduler.get_last_lr()[0])
    # 0..4 warm up to 2.0, then fall linearly to 0 at step 12 (2 epochs x 6 steps), and stay 0.
    expected = [0.0, 0.5, 1.0, 1.5, 2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert rates == pytest.approx(expected, abs=1e-12)
    assert optimizer.param_groups[0]["lr"] == rates[-1]


def test_learning_rate_schedulers_linear_with_warmup_resumes_from_state(tmp_path):
    optimizer = _optimizer()
    scheduler = LinearWithWarmup(optimizer, num_epochs=1, num_steps_per_epoch=10, warmup_steps=2)
    for _ in range(5):
        scheduler.step_batch()
    torch.save(scheduler.state_dict(), tmp_path / "s.pt")
    fresh_optimizer = _optimizer()
    fresh = LinearWithWarmup(fresh_optimizer, num_epochs=1, num_steps_per_epoch=10, warmup_steps=2)
    fresh.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert fresh.get_last_lr() == scheduler.get_last_lr()
    scheduler.step_batch()
    fresh.step_batch()
    assert fresh.get_last_lr() == scheduler.get_last_lr()


def test_learning_rate_schedulers_reduce_on_plateau_steps_on_metric(tmp_path):
    optimizer = _optimizer(lr=1.0)
    scheduler = _build(
        {"type": "reduce_on_plateau", "mode": "max", "factor": 0.5, "patience": 1},
        optimizer,
        num_epochs=5,
    )
    assert isinstance(scheduler, ReduceOnPlateau)
    rates = []
    for metric in [0.5, 0.6, 0.6, 0.6, 0.7, 0.7]:
        scheduler.step_batch()  # per-batch calls change nothing
        scheduler.step(metric)
        rates.append(scheduler.get_last_lr()[0])
    # The 2nd epoch without improvement (patience 1) halves the rate; the counter then restarts.
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    scheduler.step(None)  # no validation metric: nothing happens
    assert scheduler.get_last_lr() == [0.5]
    torch.save(scheduler.state_dict(), tmp_path / "s.pt")
    fresh = ReduceOnPlateau(_optimizer(lr=0.5), mode="max", factor=0.5, patience=1)
    fresh.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    fresh.step(0.7)
    assert fresh.get_last_lr() == [0.25]


def test_learning_rate_schedulers_reduce_on_plateau_min_lr():
    optimizer = _optimizer(lr=1.0)
    scheduler = ReduceOnPlateau(optimizer, factor=0.1, patience=0, min_lr=0.05)
    for _ in range(4):
        scheduler.step(1.0)
    assert scheduler.get_last_lr() == [0.05]

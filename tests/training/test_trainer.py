import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from keel.common import errors
from keel.common.errors import ConfigurationError, TrainingError
from keel.common.from_params import build
from keel.common.weights import read_weights as load_weights
from keel.data import Instance, LabelField, MultiProcessDataLoader, TextField, Vocabulary
from keel.data.token_indexers import SingleIdTokenIndexer
from keel.data.tokenizers import WhitespaceTokenizer
from keel.models import Model
from keel.training.trainer import GradientDescentTrainer, Trainer
from keel.training.util import prepare_environment, set_deterministic

POSITIVE = ["good", "great", "fine", "fun", "warm"]
NEGATIVE = ["bad", "dull", "awful", "cold", "weak"]
NEUTRAL = ["the", "a", "film", "plot", "cast", "was", "is", "very"]

MODEL_CONFIG = {
    "type": "basic_classifier",
    "text_field_embedder": {
        "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 8}}
    },
    "seq2vec_encoder": {"type": "boe", "embedding_dim": 8, "averaged": True},
    "dropout": 0.3,
}
# Weights from two runs that should agree up to float rounding (accumulation, clipping).
ATOL = 1e-6


def _sentences(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    data = []
    for _ in range(count):
        label = rng.choice(["pos", "neg"])
        words = rng.sample(NEUTRAL, 3) + rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2)
        rng.shuffle(words)
        data.append((" ".join(words), label))
    return data


def _instances(count: int, seed: int) -> list[Instance]:
    tokenizer = WhitespaceTokenizer()
    indexers = {"tokens": SingleIdTokenIndexer()}
    return [
        Instance(
            {"tokens": TextField(tokenizer.tokenize(text), indexers), "label": LabelField(label)}
        )
        for text, label in _sentences(count, seed)
    ]


class Interrupted(Exception):
    """Stands in for the process being killed."""


class CrashingLoader:
    """A real data loader that dies in the middle of one epoch (fault injection)."""

    def __init__(self, loader: MultiProcessDataLoader, epoch: int, batch: int) -> None:
        self.loader, self.crash_epoch, self.crash_batch = loader, epoch, batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if (self.epoch, index) == (self.crash_epoch, self.crash_batch):
                raise Interrupted
            yield batch


class ScriptedScoreClassifier(torch.nn.Module):
    """A real (small) model whose validation metric ``score`` follows a script, one value per
    validation pass, so tests can decide which epoch is best."""

    def __init__(self, inner: Model, scores: list[float], validation_batches: int) -> None:
        super().__init__()
        self.inner = inner
        self.scores = scores
        self.validation_batches = validation_batches
        self.validation_forwards = 0

    def forward(self, **batch: Any) -> dict[str, torch.Tensor]:
        if not self.training:
            self.validation_forwards += 1
        return self.inner(**batch)

    def get_metrics(self, reset: bool = False) -> dict[str, float]:
        metrics = self.inner.get_metrics(reset)
        passes = self.validation_forwards // self.validation_batches
        if not self.training and passes:
            metrics["score"] = self.scores[passes - 1]
        return metrics


TRAIN = _instances(48, seed=0)
VALIDATION = _instances(16, seed=1)
VOCAB = Vocabulary.from_instances(TRAIN + VALIDATION)


def _loader(instances: list[Instance], batch_size: int = 4, shuffle: bool = True):
    loader = MultiProcessDataLoader(instances, batch_size=batch_size, shuffle=shuffle, seed=7)
    loader.index_with(VOCAB)
    return loader


def _model(dropout: float = 0.3) -> Model:
    prepare_environment(1, 2, 3)
    return build(Model, {**MODEL_CONFIG, "dropout": dropout}, extras={"vocab": VOCAB})


def _trainer(
    model: torch.nn.Module | None = None,
    serialization_dir: Path | None = None,
    data_loader: Any = None,
    validation: bool = True,
    **config: Any,
) -> GradientDescentTrainer:
    """The trainer as the train command builds it: from config, plus its extras."""
    config = {"optimizer": {"type": "adam", "lr": 0.01}, "num_epochs": 3, "quiet": True, **config}
    return build(
        Trainer,
        config,
        extras={
            "model": model if model is not None else _model(),
            "data_loader": data_loader if data_loader is not None else _loader(TRAIN),
            "validation_data_loader": _loader(VALIDATION, 8, False) if validation else None,
            "serialization_dir": str(serialization_dir) if serialization_dir else None,
        },
    )


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _assert_identical(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


def test_trainer_learns_and_reports_allennlp_metrics(tmp_path):
    trainer = _trainer(serialization_dir=tmp_path, num_epochs=4, validation_metric="+accuracy")
    metrics = trainer.train()
    assert metrics["epoch"] == 3
    assert metrics["training_epochs"] == 4
    assert metrics["validation_accuracy"] >= 0.9  # the words decide the label
    assert metrics["best_validation_accuracy"] >= metrics["validation_accuracy"] - 1e-12
    for key in (
        "best_epoch",
        "training_loss",
        "training_accuracy",
        "validation_loss",
        "training_duration",
        "peak_worker_0_memory_MB",
    ):
        assert key in metrics, key
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == pytest.approx(metrics)
    for epoch in range(4):
        per_epoch = json.loads((tmp_path / f"metrics_epoch_{epoch}.json").read_text())
        assert per_epoch["epoch"] == epoch
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch_2", "epoch_3"]


def test_trainer_two_runs_are_bit_identical():
    first = _trainer(learning_rate_scheduler={"type": "linear_with_warmup", "warmup_steps": 5})
    first.train()
    second = _trainer(learning_rate_scheduler={"type": "linear_with_warmup", "warmup_steps": 5})
    second.train()
    _assert_identical(_weights(first.model), _weights(second.model))
    different = _trainer(optimizer={"type": "adam", "lr": 0.02})
    different.train()
    assert not torch.equal(
        different.model.state_dict()["_classification_layer.weight"],
        first.model.state_dict()["_classification_layer.weight"],
    )


@pytest.mark.slow
def test_trainer_deterministic_bilstm_runs_are_bit_identical():
    config = {
        **MODEL_CONFIG,
        "seq2vec_encoder": {
            "type": "lstm",
            "input_size": 8,
            "hidden_size": 4,
            "bidirectional": True,
        },
    }
    runs = []
    try:
        for _ in range(2):
            prepare_environment(1, 2, 3, deterministic=True)
            model = build(Model, config, extras={"vocab": VOCAB})
            _trainer(model=model, num_epochs=2).train()
            runs.append(_weights(model))
    finally:
        set_deterministic(False)
    _assert_identical(runs[0], runs[1])


def test_trainer_recover_after_interruption_is_bit_identical(tmp_path):
    config = {
        "num_epochs": 3,
        "validation_metric": "+accuracy",
        "learning_rate_scheduler": {"type": "linear_with_warmup", "warmup_steps": 5},
    }
    uninterrupted = _trainer(serialization_dir=tmp_path / "a", **config)
    expected_metrics = uninterrupted.train()
    expected = _weights(uninterrupted.model)

    crashing = CrashingLoader(_loader(TRAIN), epoch=2, batch=5)
    with pytest.raises(Interrupted):
        _trainer(serialization_dir=tmp_path / "b", data_loader=crashing, **config).train()
    assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == ["epoch_0", "epoch_1"]

    # A new process: fresh model (different init RNG use) and trainer, same config.
    torch.manual_seed(999)
    recovered = _trainer(model=_model(), serialization_dir=tmp_path / "b", **config)
    metrics = recovered.train(recover=True)
    _assert_identical(_weights(recovered.model), expected)
    _assert_identical(
        load_weights(tmp_path / "b" / "best.safetensors"),
        load_weights(tmp_path / "a" / "best.safetensors"),
    )
    assert metrics["best_epoch"] == expected_metrics["best_epoch"]
    assert metrics["validation_loss"] == expected_metrics["validation_loss"]
    assert metrics["training_start_epoch"] == 2


def test_trainer_recover_from_finished_run_changes_nothing(tmp_path):
    trainer = _trainer(serialization_dir=tmp_path, num_epochs=2)
    metrics = trainer.train()
    weights = _weights(trainer.model)
    again = _trainer(serialization_dir=tmp_path, num_epochs=2)
    assert again.train(recover=True)["epoch"] == metrics["epoch"]
    _assert_identical(_weights(again.model), weights)


def test_trainer_recover_repairs_best_file_after_a_crash_right_after_the_checkpoint(tmp_path):
    def scripted_model():
        return ScriptedScoreClassifier(_model(), [0.1, 0.9, 0.5], validation_batches=2)

    trainer = _trainer(
        model=scripted_model(), serialization_dir=tmp_path, num_epochs=2, validation_metric="+score"
    )
    trainer.train()
    # As if killed after epoch 1's checkpoint rename but before best.safetensors was replaced,
    # in the middle of writing it.
    best_weights = _weights(trainer.model)  # the model ends with the best epoch's weights
    (tmp_path / "best.safetensors").unlink()
    (tmp_path / ".best.safetensors.abc.tmp").write_bytes(b"partial")
    recovered = _trainer(
        model=scripted_model(), serialization_dir=tmp_path, num_epochs=2, validation_metric="+score"
    )
    assert recovered.train(recover=True)["best_epoch"] == 1
    best = load_weights(tmp_path / "best.safetensors")
    _assert_identical(
        best, load_weights(tmp_path / "checkpoints" / "epoch_1" / "model.safetensors")
    )
    _assert_identical(best, best_weights)
    assert not (tmp_path / ".best.safetensors.abc.tmp").exists()


def test_trainer_recover_without_checkpoint_raises(tmp_path):
    with pytest.raises(TrainingError) as caught:
        _trainer(serialization_dir=tmp_path).train(recover=True)
    assert caught.value.code == errors.NOTHING_TO_RECOVER


def test_trainer_patience_stops_early(tmp_path):
    # A learning rate of 0 never improves the validation loss: epoch 0 stays best.
    trainer = _trainer(
        serialization_dir=tmp_path, optimizer={"type": "sgd", "lr": 0.0}, num_epochs=10, patience=2
    )
    metrics = trainer.train()
    assert metrics["epoch"] == 2
    assert metrics["best_epoch"] == 0
    assert not (tmp_path / "metrics_epoch_3.json").exists()


@pytest.mark.parametrize(
    ("validation_metric", "best_epoch"), [("+score", 1), ("-score", 2), ("-loss", None)]
)
def test_trainer_validation_metric_picks_best_epoch(tmp_path, validation_metric, best_epoch):
    scores = [0.5, 0.9, 0.1, 0.7]
    model = ScriptedScoreClassifier(_model(), scores, validation_batches=2)
    trainer = _trainer(
        model=model,
        serialization_dir=tmp_path,
        num_epochs=4,
        validation_metric=validation_metric,
        keep_most_recent=None,
    )
    metrics = trainer.train()
    history = [
        json.loads((tmp_path / f"metrics_epoch_{epoch}.json").read_text()) for epoch in range(4)
    ]
    if best_epoch is None:  # "-loss": whichever epoch had the lowest validation loss
        losses = [epoch_metrics["validation_loss"] for epoch_metrics in history]
        best_epoch = losses.index(min(losses))
    assert metrics["best_epoch"] == best_epoch
    assert metrics["best_validation_loss"] == history[best_epoch]["validation_loss"]
    best = load_weights(tmp_path / "best.safetensors")
    _assert_identical(
        best, load_weights(tmp_path / "checkpoints" / f"epoch_{best_epoch}" / "model.safetensors")
    )
    _assert_identical(_weights(model), best)


def test_trainer_validation_metric_needs_a_sign():
    with pytest.raises(ConfigurationError) as caught:
        _trainer(validation_metric="accuracy")
    assert caught.value.code == errors.BAD_VALUE


def test_trainer_unknown_validation_metric_names_the_available_ones():
    with pytest.raises(TrainingError, match="accuracy"):
        _trainer(validation_metric="+f2", num_epochs=1).train()


def test_trainer_without_validation_selects_on_training_metrics():
    trainer = _trainer(validation=False, num_epochs=2)
    metrics = trainer.train()
    assert "validation_loss" not in metrics
    assert "best_training_loss" in metrics


def test_trainer_gradient_accumulation_matches_larger_batch():
    # No dropout, no shuffle: two accumulated batches of 4 are exactly one batch of 8.
    sgd = {"type": "sgd", "lr": 0.5}
    big = _trainer(
        model=_model(dropout=0.0),
        data_loader=_loader(TRAIN, batch_size=8, shuffle=False),
        optimizer=sgd,
        num_epochs=2,
    )
    big.train()
    accumulated = _trainer(
        model=_model(dropout=0.0),
        data_loader=_loader(TRAIN, batch_size=4, shuffle=False),
        optimizer=sgd,
        num_epochs=2,
        num_gradient_accumulation_steps=2,
    )
    accumulated.train()
    assert accumulated.optimizer_steps == big.optimizer_steps == 12
    for name, tensor in _weights(big.model).items():
        torch.testing.assert_close(_weights(accumulated.model)[name], tensor, atol=ATOL, rtol=0)


def test_trainer_gradient_accumulation_steps_on_a_partial_last_group():
    # 12 batches in groups of 5: steps after batches 5, 10 and 12.
    trainer = _trainer(num_epochs=1, num_gradient_accumulation_steps=5)
    trainer.train()
    assert trainer.optimizer_steps == 3


def _one_sgd_step(**config: Any) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    model = _model(dropout=0.0)
    before = _weights(model)
    trainer = _trainer(
        model=model,
        data_loader=_loader(TRAIN, batch_size=48),
        validation=False,
        optimizer={"type": "sgd", "lr": 1.0},
        num_epochs=1,
        **config,
    )
    trainer.train()
    return before, _weights(model)


def test_trainer_grad_norm_clips_total_norm():
    before, after = _one_sgd_step(grad_norm=1e-3)
    change = torch.cat([(after[name] - before[name]).flatten() for name in before])
    assert change.norm().item() == pytest.approx(1e-3, rel=1e-4)


def test_trainer_grad_clipping_clamps_each_value():
    before, after = _one_sgd_step(grad_clipping=1e-4)
    change = torch.cat([(after[name] - before[name]).flatten() for name in before])
    assert change.abs().max().item() == pytest.approx(1e-4, rel=1e-3)
    unclipped_before, unclipped_after = _one_sgd_step()
    unclipped = torch.cat(
        [(unclipped_after[n] - unclipped_before[n]).flatten() for n in unclipped_before]
    )
    assert unclipped.abs().max().item() > 1e-3


def test_trainer_reduce_on_plateau_steps_on_validation_metric():
    model = ScriptedScoreClassifier(_model(), [0.5, 0.5, 0.5], validation_batches=2)
    trainer = _trainer(
        model=model,
        num_epochs=3,
        validation_metric="+score",
        learning_rate_scheduler={"type": "reduce_on_plateau", "mode": "max", "patience": 0},
    )
    trainer.train()
    # Epoch 0 sets the best; epochs 1 and 2 do not improve: two reductions by 0.1.
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.1 * 0.1)


def test_trainer_linear_with_warmup_gets_steps_per_epoch():
    trainer = _trainer(
        num_epochs=2,
        num_gradient_accumulation_steps=2,
        learning_rate_scheduler={"type": "linear_with_warmup", "warmup_steps": 3},
    )
    assert trainer.scheduler.total_steps == 2 * 6
    trainer.train()
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0


def test_trainer_builds_from_config():
    trainer = build(
        Trainer,
        {
            "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
            "learning_rate_scheduler": {"type": "linear_with_warmup", "warmup_steps": 2},
            "num_epochs": 2,
            "validation_metric": "+accuracy",
            "quiet": True,
        },
        extras={
            "model": _model(),
            "data_loader": _loader(TRAIN),
            "validation_data_loader": _loader(VALIDATION),
            "serialization_dir": None,
        },
    )
    assert isinstance(trainer, GradientDescentTrainer)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.9
    assert trainer.scheduler.total_steps == 2 * 12
    assert trainer.train()["training_epochs"] == 2


def test_trainer_default_optimizer_is_adam():
    trainer = build(
        Trainer,
        {"num_epochs": 1, "quiet": True},
        extras={"model": _model(), "data_loader": _loader(TRAIN)},
    )
    assert isinstance(trainer.optimizer, torch.optim.Adam)


def test_trainer_nan_loss_raises():
    # A huge (but finite, so valid) learning rate overflows the weights within a step.
    trainer = _trainer(optimizer={"type": "sgd", "lr": 1e30}, num_epochs=1)
    with pytest.raises(TrainingError) as caught:
        trainer.train()
    assert caught.value.code == errors.NAN_LOSS


def test_trainer_bfloat16_autocast_on_cpu():
    metrics = _trainer(use_amp=True, num_epochs=1).train()
    assert math.isfinite(metrics["training_loss"])
    assert math.isfinite(metrics["validation_loss"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine")
def test_trainer_cuda_device_without_cuda_is_a_config_error():
    with pytest.raises(ConfigurationError) as caught:
        _trainer(cuda_device=0)
    assert "cuda_device" in str(caught.value)


def test_trainer_rejects_bad_values():
    for config in ({"num_epochs": 0}, {"patience": 0}, {"grad_norm": -1.0}):
        with pytest.raises(ConfigurationError):
            _trainer(**config)


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import test_trainer as t

class SlowLoader(t.CrashingLoader):
    def __iter__(self):
        for batch in self.loader:
            time.sleep(0.02)  # long enough epochs for the parent to kill one mid-way
            yield batch

loader = SlowLoader(t._loader(t.TRAIN), epoch=-1, batch=-1)
trainer = t._trainer(
    serialization_dir=sys.argv[1],
    data_loader=loader,
    num_epochs=4,
    validation_metric="+accuracy",
    learning_rate_scheduler={{"type": "linear_with_warmup", "warmup_steps": 5}},
)
trainer.train(recover=sys.argv[2] == "1")
"""


@pytest.mark.slow
def test_trainer_recovers_bit_identically_after_sigkill(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent)))

    def run(directory: Path, recover: bool) -> None:
        subprocess.run(
            [sys.executable, str(script), str(directory), "1" if recover else "0"], check=True
        )

    run(tmp_path / "whole", recover=False)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed"), "0"])
    deadline = time.monotonic() + 120
    while not (tmp_path / "killed" / "checkpoints" / "epoch_1").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()  # it really died mid-run
    run(tmp_path / "killed", recover=True)
    for name in ("best.safetensors", "checkpoints/epoch_3/model.safetensors"):
        _assert_identical(
            load_weights(tmp_path / "killed" / name), load_weights(tmp_path / "whole" / name)
        )
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    killed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert killed["validation_loss"] == whole["validation_loss"]
    assert killed["best_epoch"] == whole["best_epoch"]


def test_trainer_logs_progress_away_from_a_terminal(monkeypatch, caplog):
    """A batch job has no progress bar: progress and each epoch's summary go to the log."""
    import logging

    import keel.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "_LOG_INTERVAL_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with caplog.at_level(logging.INFO, logger="keel.training.trainer"):
        _trainer(num_epochs=2, quiet=False).train()
    messages = [record.getMessage() for record in caplog.records]
    batches = len(_loader(TRAIN))
    progress = [m for m in messages if m.startswith("epoch 1/2: ") and " batches, loss " in m]
    assert progress and progress[-1].startswith(f"epoch 1/2: {batches}/{batches} batches, loss ")
    assert all(", about " in m and m.endswith(" left") for m in progress)
    done = [m for m in messages if m.startswith("epoch 2/2 done: training_loss=")]
    assert len(done) == 1 and "validation_accuracy=" in done[0] and "elapsed" in done[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="keel.training.trainer"):
        _trainer(num_epochs=1, quiet=True).train()
    assert not [r for r in caplog.records if " batches, " in r.getMessage()]


def test_trainer_duration_format():
    from keel.training.trainer import _duration

    assert [_duration(s) for s in (0, 59.9, 61, 3599, 3600, 7322)] == [
        "0s",
        "59s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h02m",
    ]


def test_the_models_regularizer_penalty_is_added_to_every_training_batchs_loss():
    # lr 0 keeps the weights fixed, so the reported training loss must be the mean over the
    # batches of (data loss + penalty), the penalty computed from the unchanged weights.
    regularizer = {"regexes": [["weight$", {"type": "l2", "alpha": 0.05}]]}
    plain = _model(dropout=0.0)
    penalised = build(
        Model,
        {**MODEL_CONFIG, "dropout": 0.0, "regularizer": regularizer},
        extras={"vocab": VOCAB},
    )
    penalised.load_state_dict(plain.state_dict())
    penalty = penalised.get_regularization_penalty()
    assert plain.get_regularization_penalty() is None and penalty.item() > 0
    sgd = {"type": "sgd", "lr": 0.0}
    without = _trainer(plain, optimizer=sgd, num_epochs=1, validation=False).train()
    with_penalty = _trainer(penalised, optimizer=sgd, num_epochs=1, validation=False).train()
    assert with_penalty["training_loss"] == pytest.approx(
        without["training_loss"] + penalty.item(), abs=1e-6
    )

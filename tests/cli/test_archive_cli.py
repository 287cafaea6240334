"""keel archive inspect / diff / migrate as a pipeline runs them: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel.archive.archive import read_manifest
from keel.common.params import load_config
from keel.pipeline.train import train_model
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "archives"
CNN_V1 = FIXTURES / "components1-cnn-classifier.tar.gz"


def keel(*args: str) -> subprocess.CompletedProcess:
    # A wide terminal, so that table cells are not wrapped across lines.
    return subprocess.run(
        [sys.executable, "-m", "keel.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny classifier trained twice, with different seeds."""
    archives = []
    for seed in (1, 2):
        config = load_config(
            TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"}
        )
        config["random_seed"], config["numpy_seed"], config["pytorch_seed"] = seed, seed, seed
        config["golden_sample_size"] = 24
        directory = tmp_path_factory.mktemp(f"seed{seed}") / "run"
        archives.append(train_model(config, directory, quiet=True).archive_path)
    return archives[0], archives[1]


def test_cli_inspect_json_describes_the_archive_without_loading_it(tmp_path) -> None:
    result = keel("archive", "inspect", str(CNN_V1), "--json")
    assert result.returncode == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["archive"]["format_version"] == 2
    assert description["integrity"] == {"ok": True, "problems": None}
    assert description["signature"] == {"status": "unsigned"}
    cnn = next(item for item in description["components"] if item["name"] == "cnn")
    assert cnn["version"] == 1 and cnn["installed_version"] == 2
    assert cnn["status"] == "migrates v1 -> v2"
    assert cnn["paths"] == ["model.seq2vec_encoder"]
    files = {item["name"]: item for item in description["files"]}
    assert set(files) == set(read_manifest(CNN_V1).files)
    assert all(item["matches_manifest"] for item in files.values())
    assert description["golden"]["sample_size"] == 64
    assert description["golden"]["outputs"] == ["label", "logits"]
    assert description["state_dict"]["modules"]["_seq2vec_encoder"]["tensors"] == 8
    assert description["environment"]["torch"].startswith("2.")
    assert set(description["data_files"]) == {"train", "validation"}


def test_cli_inspect_reports_signature_status(tmp_path) -> None:
    import shutil

    archive = tmp_path / "model.tar.gz"
    shutil.copy(CNN_V1, archive)
    assert keel("keygen", "--out", str(tmp_path / "keys")).returncode == 0
    assert (
        keel("sign", str(archive), "--key", str(tmp_path / "keys" / "keel_signing.key")).returncode
        == 0
    )
    unchecked = json.loads(keel("archive", "inspect", str(archive), "--json").stdout)
    assert unchecked["signature"]["status"] == "not checked"
    signer = next((tmp_path / "keys").glob("*.pub"))
    checked = keel("archive", "inspect", str(archive), "--json", "--signer", str(signer))
    assert json.loads(checked.stdout)["signature"]["status"] == "valid"
    human = keel("archive", "inspect", str(archive))
    assert human.returncode == 0
    assert "migrates v1 -> v2" in human.stdout and "not checked" in human.stdout


def test_cli_migrate_writes_a_current_archive_then_has_nothing_to_do(tmp_path) -> None:
    target = tmp_path / "migrated.tar.gz"
    result = keel("archive", "migrate", str(CNN_V1), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert "cnn" in result.stderr and "v1 -> v2" in result.stderr
    assert "golden check: 64 golden outputs reproduced" in result.stderr.replace("\n", " ")
    description = json.loads(keel("archive", "inspect", str(target), "--json").stdout)
    assert {item["status"] for item in description["components"]} == {"current"}
    assert description["migrations"][0]["name"] == "cnn"
    again = keel("archive", "migrate", str(target), "-o", str(tmp_path / "again.tar.gz"))
    assert again.returncode == 0 and "nothing to migrate" in again.stderr
    assert not (tmp_path / "again.tar.gz").exists()
    assert keel("archive", "diff", str(CNN_V1), str(target)).returncode == 0


def test_cli_diff_same_archive_is_identical_exit_0(two_seeds) -> None:
    first, _ = two_seeds
    result = keel("archive", "diff", str(first), str(first), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["identical"]
    assert report["config"] == [] and report["weights"] == [] and report["vocabulary"] == {}
    assert report["predictions"]["agreement"] == 1.0


def test_cli_diff_two_seeds_weights_differ_schema_same_exit_1(two_seeds) -> None:
    first, second = two_seeds
    result = keel("archive", "diff", str(first), str(second), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert not report["identical"]
    changed_paths = {entry["path"] for entry in report["config"]}
    assert {"random_seed", "numpy_seed", "pytorch_seed"} <= changed_paths
    # Same schema: every weight is in both with the same shape; values moved.
    assert report["weights"] and {entry["change"] for entry in report["weights"]} == {"~"}
    assert all(entry["rms"] > 0 for entry in report["weights"])
    assert report["vocabulary"] == {}  # same data, same vocabulary
    # Each run sampled 24 golden inputs with its own seed: both models run on the union.
    assert 24 < report["predictions"]["compared"] <= 48
    assert report["predictions"]["max_score_difference"] > 0
    # A threshold above every distance hides them all (as allennlp diff's --threshold does).
    biggest = max(entry["rms"] for entry in report["weights"])
    quiet = keel("archive", "diff", str(first), str(second), "--json", "--threshold", str(biggest))
    assert json.loads(quiet.stdout)["weights"] == []
    human = keel("archive", "diff", str(first), str(second))
    assert human.returncode == 1 and "differ" in human.stderr and "rms" in human.stdout


def test_cli_diff_two_different_models(tmp_path) -> None:
    classifier = FIXTURES / "format2-classifier.tar.gz"
    tagger = FIXTURES / "format2-tagger.tar.gz"
    result = keel("archive", "diff", str(classifier), str(tagger), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    changes = {entry["change"] for entry in report["weights"]}
    assert {"+", "-"} <= changes
    assert any(e["path"] == "model.type" and e["b"] == "simple_tagger" for e in report["config"])
    assert "labels" in report["vocabulary"]
    assert report["vocabulary"]["labels"]["added"] > 0
    assert "not comparable" in report["predictions"]["note"]
    lstm_vs_cnn = keel(
        "archive", "diff", str(classifier), str(CNN_V1), "--json"
    )  # same task, different encoders: both read the other's golden inputs
    compared = json.loads(lstm_vs_cnn.stdout)["predictions"]
    assert compared["compared"] == 64  # the same seeded sample of the same dev file
    # Both one-epoch models may well predict the same labels; their scores differ.
    assert 0.0 <= compared["agreement"] <= 1.0 and compared["max_score_difference"] > 0

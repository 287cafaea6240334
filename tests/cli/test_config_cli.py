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


def test_config_check_passes_an_allennlp_config_and_names_where_defaults_differ(tmp_path) -> None:
    archive = REPO / "tests" / "fixtures" / "allennlp" / "basic_classifier.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extract("config.json", tmp_path, filter="data")
    result = runner.invoke(
        app, ["config", "check", str(tmp_path / "config.json"), "--no-check-files", "--json"]
    )
    # spacy, bag_of_embeddings and the feedforward are all understood.
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["issues"] == []
    # The config names datasets_for_vocab_creation and its tokenizer; the embedding's padding
    # row is the one default it leaves to the framework, and keel's differs.
    assert document["allennlp_defaults_differ"] == [
        {
            "path": "model.text_field_embedder.token_embedders.tokens.padding_index",
            "allennlp": None,
            "keel": 0,
        }
    ]


def test_config_check_says_which_defaults_keel_train_allennlp_would_write(tmp_path) -> None:
    config = {
        "dataset_reader": {"type": "text_classification_json"},
        "train_data_path": "train.jsonl",
        "validation_data_path": "dev.jsonl",
        "model": {
            "type": "basic_classifier",
            "text_field_embedder": {
                "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}
            },
            "seq2vec_encoder": {"type": "cnn", "embedding_dim": 4, "num_filters": 2},
        },
        "data_loader": {"batch_size": 2},
        "trainer": {"num_epochs": 1},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(path), "--no-check-files"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "keel train --allennlp writes AllenNLP's" in text
    for expected in (
        "datasets_for_vocab_creation = ['train', 'validation'] (keel's default: ['train'])",
        "dataset_reader.tokenizer = {'type': 'spacy'}",
        "model.seq2vec_encoder.window_pooling = 'allennlp' (keel's default: 'keel')",
        "model.text_field_embedder.token_embedders.tokens.padding_index = None",
    ):
        assert expected in text, expected


def test_config_check_names_pre_1_0_keys_and_missing_files(tmp_path) -> None:
    archive = REPO / "tests" / "fixtures" / "allennlp" / "simple_tagger.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extract("config.json", tmp_path, filter="data")
    result = runner.invoke(app, ["config", "check", str(tmp_path / "config.json"), "--json"])
    assert result.exit_code == 1
    paths = {issue["path"] for issue in json.loads(result.stdout)["issues"]}
    assert {"iterator", "data_loader", "train_data_path"} <= paths


def test_config_check_allennlp_checks_the_config_as_train_allennlp_trains_it(tmp_path) -> None:
    archive = REPO / "tests" / "fixtures" / "allennlp" / "simple_tagger-full.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extract("config.json", tmp_path, filter="data")
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    embedder = config["model"]["text_field_embedder"]
    config["model"]["text_field_embedder"] = embedder["token_embedders"]  # AllenNLP 0.9 layout
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    plain = runner.invoke(
        app, ["config", "check", str(tmp_path / "config.json"), "--no-check-files", "--json"]
    )
    document = json.loads(plain.stdout)
    assert plain.exit_code == 1
    assert any("token_embedders" in change for change in document["allennlp_0_9_layout"])
    upgraded = runner.invoke(
        app, ["config", "check", str(tmp_path / "config.json"), "--no-check-files", "--allennlp"]
    )
    assert upgraded.exit_code == 0, upgraded.output
    assert "trains as is with keel train --allennlp" in " ".join(upgraded.output.split())

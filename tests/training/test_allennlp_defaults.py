"""AllenNLP's defaults, written into a config where keel's differ (keel train --allennlp)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.archive.model_archive import load_archive
from keel.cli.main import app
from keel.common.errors import ConfigurationError
from keel.training.allennlp_defaults import allennlp_defaults

ALLENNLP_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "allennlp"


def _classifier_config(**extra) -> dict:
    return {
        "dataset_reader": {"type": "text_classification_json"},
        "train_data_path": "train.jsonl",
        "validation_data_path": "dev.jsonl",
        "test_data_path": "test.jsonl",
        "model": {
            "type": "basic_classifier",
            "text_field_embedder": {
                "token_embedders": {
                    "tokens": {"type": "embedding", "embedding_dim": 4},
                    "chars": {
                        "type": "character_encoding",
                        "embedding": {"embedding_dim": 3},
                        "encoder": {"type": "cnn", "embedding_dim": 3, "num_filters": 2},
                    },
                }
            },
            "seq2vec_encoder": {"type": "boe", "embedding_dim": 8},
        },
        "data_loader": {"batch_size": 2},
        "trainer": {"num_epochs": 1},
        **extra,
    }


def test_every_differing_default_is_written_explicitly_and_the_input_is_untouched():
    config = _classifier_config()
    filled, written = allennlp_defaults(config)
    assert "datasets_for_vocab_creation" not in config  # a copy was changed
    assert filled["datasets_for_vocab_creation"] == ["train", "validation", "test"]
    assert filled["dataset_reader"]["tokenizer"] == {"type": "spacy"}
    embedders = filled["model"]["text_field_embedder"]["token_embedders"]
    assert embedders["tokens"]["padding_index"] is None
    assert embedders["chars"]["embedding"]["padding_index"] is None
    assert embedders["chars"]["encoder"]["window_pooling"] == "allennlp"
    assert [item.path for item in written] == [
        "datasets_for_vocab_creation",
        "dataset_reader.tokenizer",
        "model.text_field_embedder.token_embedders.tokens.padding_index",
        "model.text_field_embedder.token_embedders.chars.embedding.padding_index",
        "model.text_field_embedder.token_embedders.chars.encoder.window_pooling",
    ]


def test_values_the_config_gives_are_kept_and_releases_before_1_2_1_pool_every_window():
    config = _classifier_config(datasets_for_vocab_creation=["train"])
    config["dataset_reader"]["tokenizer"] = {"type": "whitespace"}
    config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["padding_index"] = 0
    filled, written = allennlp_defaults(config, allennlp_version="1.1.0")
    assert filled["datasets_for_vocab_creation"] == ["train"]
    assert filled["dataset_reader"]["tokenizer"] == {"type": "whitespace"}
    embedders = filled["model"]["text_field_embedder"]["token_embedders"]
    assert embedders["tokens"]["padding_index"] == 0
    assert embedders["chars"]["encoder"]["window_pooling"] == "allennlp_legacy"
    assert len(written) == 2
    vocabulary = _classifier_config(vocabulary={"type": "from_files", "directory": "v"})
    assert "datasets_for_vocab_creation" not in allennlp_defaults(vocabulary)[0]
    with pytest.raises(ConfigurationError, match="not an AllenNLP version"):
        allennlp_defaults(config, allennlp_version="latest")


def test_keel_train_allennlp_trains_an_allennlp_config_with_allennlps_semantics(tmp_path):
    """The basic_classifier fixture's own config.json (AllenNLP 2.0 era), unchanged but for
    its data paths: with --allennlp the vocabulary holds the validation file's words too, and
    the embedding's row 0 is a trained row; without it, keel's defaults apply."""
    pytest.importorskip("spacy")
    with tarfile.open(ALLENNLP_FIXTURES / "basic_classifier.tar.gz") as tar:
        tar.extract("config.json", tmp_path, filter="data")
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    del config["datasets_for_vocab_creation"]  # AllenNLP's default: every dataset
    train = tmp_path / "train.jsonl"
    dev = tmp_path / "dev.jsonl"
    train.write_text(
        "".join(
            json.dumps({"text": text, "label": label}) + "\n"
            for text, label in [("A fine film.", "pos"), ("Didn't like it.", "neg")] * 4
        ),
        encoding="utf-8",
    )
    dev.write_text(json.dumps({"text": "Zorgon's sequel!", "label": "neg"}) + "\n")
    config.update(train_data_path=str(train), validation_data_path=str(dev))
    config["trainer"].update(num_epochs=1, cuda_device=-1)
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    runner = CliRunner()

    def train(directory: str, *flags: str):
        result = runner.invoke(
            app,
            ["train", str(tmp_path / "config.json"), "-s", str(tmp_path / directory), "--quiet"]
            + list(flags),
        )
        assert result.exit_code == 0, result.output
        return result, load_archive(tmp_path / directory / "model.tar.gz")

    result, archive = train("allennlp", "--allennlp")
    assert "AllenNLP default: datasets_for_vocab_creation = ['train', 'validation']" in " ".join(
        result.output.split()
    )
    words = set(archive.vocab.get_token_to_index_vocabulary("tokens"))
    assert {"zorgon", "'s", "sequel", "did", "n't"} <= words  # spaCy's tokens, dev included
    assert archive.config["datasets_for_vocab_creation"] == ["train", "validation"]
    embedding = archive.model._text_field_embedder.token_embedder_tokens
    assert embedding.padding_index is None and embedding.weight[0].abs().sum() > 0

    _, keels = train("keel")
    keel_words = set(keels.vocab.get_token_to_index_vocabulary("tokens"))
    assert "zorgon" not in keel_words  # keel's default: the training data only
    keel_embedding = keels.model._text_field_embedder.token_embedder_tokens
    assert keel_embedding.weight[0].abs().sum() == 0


def test_allennlp_models_crf_tagger_config_trains_unchanged_but_for_its_data(tmp_path):
    """allennlp-models' own crf_tagger fixture config (GRU character encoder, constrained CRF
    over IOB1, an l2 regularizer on the transitions, ``"optimizer": "adam"``) trains as it is:
    only the data paths and the number of epochs are overridden."""
    data = Path(__file__).resolve().parents[1] / "fixtures" / "tagging" / "conll2003_iob1.txt"
    overrides = json.dumps(
        {
            "train_data_path": str(data),
            "validation_data_path": str(data),
            "trainer": {"num_epochs": 2},
        }
    )
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(ALLENNLP_FIXTURES / "crf_tagger_experiment.json"),
            "-s",
            str(tmp_path / "run"),
            "--overrides",
            overrides,
            "--allennlp",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    archive = load_archive(tmp_path / "run" / "model.tar.gz")
    assert archive.config["model"]["regularizer"]["regexes"][0][0] == "transitions$"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert 0.0 <= metrics["validation_f1-measure-overall"] <= 1.0
    assert metrics["training_loss"] > 0

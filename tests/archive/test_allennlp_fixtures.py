"""Archives written by AllenNLP itself (tests/fixtures/allennlp, see SOURCE.md) import into
keel, and the imported model computes what AllenNLP's did: checked against the same layers
written directly in torch from the archive's own weights.th."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from keel.archive.allennlp import import_allennlp_archive, read_allennlp_weights
from keel.archive.archive import read_manifest
from keel.archive.model_archive import load_archive
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.guard.verify import verify_archive
from tests.archive.allennlp_layout import pack_directory, write_allennlp_archive

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "allennlp"
TAGGERS = ["simple_tagger.tar.gz", "simple_tagger_with_span_f1.tar.gz", "simple_tagger-full.tar.gz"]
SENTENCES = [
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Peter", "Blackburn"],
    ["an", "unseenword", "here"],
]


def _unpacked(archive: Path, directory: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return directory


def _allennlp_tagger_logits(root: Path, words: list[str], lowercase: bool) -> torch.Tensor:
    """AllenNLP's simple_tagger, written out: single_id lookup (the padded namespace puts
    @@PADDING@@ at 0, then tokens.txt in order, @@UNKNOWN@@ first), the Embedding and its
    projection, a one-layer LSTM, the TimeDistributed linear projection to the tags."""
    state = read_allennlp_weights(root / "weights.th")
    vocabulary = (root / "vocabulary" / "tokens.txt").read_text(encoding="utf-8").splitlines()
    index = {token: position + 1 for position, token in enumerate(vocabulary)}
    unknown = index["@@UNKNOWN@@"]
    ids = torch.tensor(
        [[index.get(word.lower() if lowercase else word, unknown) for word in words]]
    )
    prefix = "text_field_embedder.token_embedder_tokens."
    embedded = torch.nn.functional.embedding(ids, state[prefix + "weight"])
    projected = torch.nn.functional.linear(
        embedded, state[prefix + "_projection.weight"], state[prefix + "_projection.bias"]
    )
    lstm = torch.nn.LSTM(
        projected.size(-1), state["encoder._module.weight_hh_l0"].size(1), batch_first=True
    )
    lstm.load_state_dict(
        {
            key.removeprefix("encoder._module."): value
            for key, value in state.items()
            if key.startswith("encoder._module.")
        }
    )
    encoded, _ = lstm(projected)
    return torch.nn.functional.linear(
        encoded,
        state["tag_projection_layer._module.weight"],
        state["tag_projection_layer._module.bias"],
    )[0]


@pytest.mark.parametrize("name", TAGGERS)
def test_allennlp_tagger_archives_import_and_compute_what_allennlp_computed(name, tmp_path):
    source = FIXTURES / name
    imported = import_allennlp_archive(source, tmp_path / "keel.tar.gz")
    archive = load_archive(imported)
    root = _unpacked(source, tmp_path / "allennlp")
    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    indexer = config["dataset_reader"].get("token_indexers", {}).get("tokens", {})
    lowercase = bool(indexer.get("lowercase_tokens", False))
    reader = archive.validation_dataset_reader
    for words in SENTENCES:
        instance = reader.text_to_instance(words)
        [output] = archive.model.forward_on_instances([instance])
        expected = _allennlp_tagger_logits(root, words, lowercase)
        got = torch.as_tensor(output["logits"])[: len(words)]
        assert torch.allclose(got, expected, atol=1e-5), (name, words)
        tags = archive.vocab.get_index_to_token_vocabulary("labels")
        assert output["tags"] == [tags[int(i)] for i in expected.argmax(-1)]


@pytest.mark.parametrize("name", TAGGERS)
def test_allennlp_import_records_provenance_and_keeps_training_sections(name, tmp_path):
    manifest = read_manifest(import_allennlp_archive(FIXTURES / name, tmp_path / "k.tar.gz"))
    imported = manifest.imported_from
    assert imported is not None and imported["format"] == "allennlp"
    assert len(imported["sha256"]) == 64
    assert "trainer" in imported["training_sections"]  # kept for reference, not built
    if name == "simple_tagger.tar.gz":
        assert "iterator" in imported["training_sections"]  # the pre-1.0 key
    if name == "simple_tagger-full.tar.gz":
        assert imported["meta"] == {"version": "2.8.0"}
    # verify checks what it can and says what it cannot: no golden predictions were made.
    report = verify_archive(tmp_path / "k.tar.gz")
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["integrity"] == statuses["config"] == statuses["weights"] == "pass"
    assert statuses["predictions"] == "not_checked"


def _allennlp_basic_classifier_probabilities(root: Path, text: str) -> torch.Tensor:
    """basic_classifier.tar.gz's model, written out from AllenNLP's documented behaviour:
    spaCy tokens (whitespace tokens dropped, at most max_sequence_length=400), lowercased
    single_id lookup, Embedding, a one-layer LSTM seq2seq, the averaged bag of embeddings,
    FeedForward (Linear, relu; dropout is off at inference), the classification layer, softmax."""
    import spacy

    tokens = [token.text for token in spacy.blank("en")(text) if not token.is_space][:400]
    vocabulary = (root / "vocabulary" / "tokens.txt").read_text(encoding="utf-8").splitlines()
    index = {token: position + 1 for position, token in enumerate(vocabulary)}
    ids = torch.tensor([[index.get(token.lower(), index["@@UNKNOWN@@"]) for token in tokens]])
    state = read_allennlp_weights(root / "weights.th")
    embedded = torch.nn.functional.embedding(
        ids, state["_text_field_embedder.token_embedder_tokens.weight"]
    )
    lstm = torch.nn.LSTM(10, 16, batch_first=True)
    lstm.load_state_dict(
        {
            key.removeprefix("_seq2seq_encoder._module."): value
            for key, value in state.items()
            if key.startswith("_seq2seq_encoder._module.")
        }
    )
    encoded, _ = lstm(embedded)
    averaged = encoded.mean(dim=1)
    hidden = torch.relu(
        torch.nn.functional.linear(
            averaged,
            state["_feedforward._linear_layers.0.weight"],
            state["_feedforward._linear_layers.0.bias"],
        )
    )
    logits = torch.nn.functional.linear(
        hidden, state["_classification_layer.weight"], state["_classification_layer.bias"]
    )
    return torch.softmax(logits, dim=-1)[0]


def test_allennlp_spacy_tokenized_classifier_imports_and_computes_what_allennlp_computed(
    tmp_path,
):
    pytest.importorskip("spacy")
    source = FIXTURES / "basic_classifier.tar.gz"
    imported = import_allennlp_archive(source, tmp_path / "keel.tar.gz")
    archive = load_archive(imported)
    assert archive.config["dataset_reader"]["tokenizer"]["type"] == "spacy"
    root = _unpacked(source, tmp_path / "allennlp")
    reader = archive.validation_dataset_reader
    texts = [
        json.loads(line)["text"]
        for line in (FIXTURES / "imdb_corpus.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    texts.append("I can't say it's bad: see https://example.com/review, it's na\u00efve.")
    labels = archive.vocab.get_index_to_token_vocabulary("labels")
    for text in texts:
        [output] = archive.model.forward_on_instances([reader.text_to_instance(text)])
        expected = _allennlp_basic_classifier_probabilities(root, text)
        assert torch.allclose(torch.as_tensor(output["probs"]), expected, atol=1e-5)
        assert output["label"] == labels[int(expected.argmax())]


def test_allennlp_spacy_archive_without_spacy_installed_is_refused_naming_the_extra(
    tmp_path, monkeypatch
):
    import sys

    from keel.common.optional_dependencies import MissingDependencyError

    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(MissingDependencyError, match=r"'spacy' tokenizer needs .*keel\[spacy\]"):
        import_allennlp_archive(FIXTURES / "basic_classifier.tar.gz", tmp_path / "k.tar.gz")
    assert not (tmp_path / "k.tar.gz").exists()


def test_allennlp_feedforward_and_time_distributed_names_map_to_keels(tmp_path):
    # basic_classifier.tar.gz's weights, read without unpickling, with keel's names: the
    # FeedForward's _linear_layers.0 is keel's _layers.0 (Linear, then activation, dropout).
    from keel.archive.allennlp import adapt_allennlp_state
    from keel.common.from_params import build
    from keel.data.vocabulary import Vocabulary
    from keel.models.model import Model

    root = _unpacked(FIXTURES / "basic_classifier.tar.gz", tmp_path / "a")
    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    vocab = Vocabulary.from_files(str(root / "vocabulary"))
    model = build(Model, config["model"], path="model", extras={"vocab": vocab})
    state = adapt_allennlp_state(read_allennlp_weights(root / "weights.th"), model)
    assert set(state) == set(model.state_dict())
    assert "_feedforward._layers.0.weight" in state


def test_import_with_golden_input_makes_every_verify_step_check(tmp_path):
    golden_input = tmp_path / "golden.tsv"  # AllenNLP's sequence_tagging format: word###TAG
    golden_input.write_text(
        "cats###N are###V animals###N .###N\ndogs###N are###V animals###N .###N\n"
        "cats###N are###V dogs###N .###N\n",
        encoding="utf-8",
    )
    from typer.testing import CliRunner

    from keel.cli.main import app

    target = tmp_path / "imported.tar.gz"
    result = CliRunner().invoke(
        app,
        [
            "archive",
            "import-allennlp",
            str(FIXTURES / "simple_tagger-full.tar.gz"),
            "-o",
            str(target),
            "--golden-input",
            str(golden_input),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = read_manifest(target)
    assert manifest.environment is not None and manifest.tokenizer_fingerprint is not None
    report = verify_archive(target)
    statuses = {check.name: check.status for check in report.checks}
    assert report.ok, [check.to_dict() for check in report.checks]
    assert statuses == {
        "integrity": "pass",
        "environment": "pass",
        "components": "pass",
        "config": "pass",
        "weights": "pass",
        "tokenizer": "pass",
        "preprocessing": "pass",
        "predictions": "pass",
        "data": "skipped",
    }
    without = CliRunner().invoke(
        app,
        [
            "archive",
            "import-allennlp",
            str(FIXTURES / "simple_tagger-full.tar.gz"),
            "-o",
            str(tmp_path / "bare.tar.gz"),
        ],
    )
    assert without.exit_code == 0 and "predictions step as not checked" in without.output


def test_allennlp_2x_conll2003_option_name_and_adadelta_are_understood():
    from keel.common.from_params import build
    from keel.data.dataset_readers.dataset_reader import DatasetReader

    reader = build(
        DatasetReader,
        {"type": "conll2003", "tag_label": "ner", "convert_to_coding_scheme": "BIOUL"},
    )
    assert reader.coding_scheme == "BIOUL"
    from keel.common.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="disagree"):
        build(
            DatasetReader,
            {"type": "conll2003", "coding_scheme": "BIO", "convert_to_coding_scheme": "BIOUL"},
        )
    from keel.training.optimizers import Optimizer

    assert Optimizer.resolve("adadelta").cls.__name__ == "AdadeltaOptimizer"


def _allennlp_cnn_classifier(directory: Path, *, meta: dict | None) -> Path:
    """A basic_classifier with a cnn encoder in AllenNLP's archive layout (its weights under
    AllenNLP's state-dict names: conv_layer_N)."""
    words = ["@@UNKNOWN@@", "a", "good", "bad", "movie", "."]
    config = {
        "dataset_reader": {"type": "text_classification_json", "tokenizer": {"type": "whitespace"}},
        "train_data_path": "train.jsonl",
        "model": {
            "type": "basic_classifier",
            "text_field_embedder": {
                "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}
            },
            "seq2vec_encoder": {
                "type": "cnn",
                "embedding_dim": 4,
                "num_filters": 3,
                "ngram_filter_sizes": [2, 3],
            },
        },
        "data_loader": {"batch_size": 8},
        "trainer": {"optimizer": "adam", "num_epochs": 1},
    }
    generator = torch.Generator().manual_seed(7)
    state = {
        "_text_field_embedder.token_embedder_tokens.weight": torch.randn(
            len(words) + 1, 4, generator=generator
        ),
        "_seq2vec_encoder.conv_layer_0.weight": torch.randn(3, 4, 2, generator=generator),
        "_seq2vec_encoder.conv_layer_0.bias": torch.randn(3, generator=generator),
        "_seq2vec_encoder.conv_layer_1.weight": torch.randn(3, 4, 3, generator=generator),
        "_seq2vec_encoder.conv_layer_1.bias": torch.randn(3, generator=generator),
        "_classification_layer.weight": torch.randn(2, 6, generator=generator),
        "_classification_layer.bias": torch.randn(2, generator=generator),
    }
    return write_allennlp_archive(
        directory,
        config=config,
        state=state,
        vocabulary={"tokens": words, "labels": ["neg", "pos"]},
        meta=meta,
    )


@pytest.mark.parametrize(
    ("meta", "given", "pooling"),
    [
        ({"version": "2.10.1"}, None, "allennlp"),
        (None, "2.4.0", "allennlp"),
        (None, "1.1.0", "allennlp_legacy"),
    ],
)
def test_allennlp_cnn_archive_imports_with_the_writing_releases_window_pooling(
    tmp_path, meta, given, pooling
):
    from tests.modules.test_allennlp_numerics import (
        allennlp_cnn_1_2_1,
        allennlp_cnn_before_1_2_1,
    )

    source = _allennlp_cnn_classifier(tmp_path, meta=meta)
    imported = import_allennlp_archive(source, tmp_path / "k.tar.gz", allennlp_version=given)
    archive = load_archive(imported)
    encoder = archive.model._seq2vec_encoder
    assert archive.config["model"]["seq2vec_encoder"]["window_pooling"] == pooling
    manifest = read_manifest(imported)
    assert manifest.imported_from["allennlp_version"] == (given or meta["version"])
    assert any("window_pooling" in line for line in manifest.imported_from["defaults_filled"])
    reference = allennlp_cnn_1_2_1 if pooling == "allennlp" else allennlp_cnn_before_1_2_1
    state = read_allennlp_weights(_unpacked(source, tmp_path / "a") / "weights.th")
    # A batch of a long and a 1-word text: the short one is where the releases differ.
    texts = ["a good movie . a bad movie", "good"]
    instances = [archive.validation_dataset_reader.text_to_instance(text) for text in texts]
    outputs = archive.model.forward_on_instances(instances)
    index = {"a": 2, "good": 3, "bad": 4, "movie": 5, ".": 6}
    ids = torch.zeros(2, 7, dtype=torch.long)
    for row, text in enumerate(texts):
        for column, word in enumerate(text.split()):
            ids[row, column] = index[word]
    embedded = torch.nn.functional.embedding(
        ids, state["_text_field_embedder.token_embedder_tokens.weight"]
    )
    pooled = reference(encoder, embedded, ids != 0)
    logits = torch.nn.functional.linear(
        pooled, state["_classification_layer.weight"], state["_classification_layer.bias"]
    )
    for output, expected in zip(outputs, logits, strict=True):
        assert torch.allclose(torch.as_tensor(output["logits"]), expected, atol=1e-5)


def test_allennlp_cnn_archive_without_meta_or_version_is_refused_naming_the_encoder(tmp_path):
    source = _allennlp_cnn_classifier(tmp_path, meta=None)
    with pytest.raises(ArchiveError) as raised:
        import_allennlp_archive(source, tmp_path / "k.tar.gz")
    assert raised.value.code == errors.BAD_VALUE
    assert "model.seq2vec_encoder is a 'cnn' encoder" in str(raised.value)
    assert "--allennlp-version" in str(raised.value)
    with pytest.raises(ArchiveError, match="contradicts the archive's meta.json"):
        import_allennlp_archive(
            _allennlp_cnn_classifier(tmp_path / "m", meta={"version": "2.10.1"}),
            tmp_path / "k.tar.gz",
            allennlp_version="1.1.0",
        )
    assert not (tmp_path / "k.tar.gz").exists()


def test_spacy_classifier_imported_with_golden_input_passes_every_verify_step(tmp_path):
    pytest.importorskip("spacy")
    from keel.pipeline.imports import import_allennlp

    target = import_allennlp(
        FIXTURES / "basic_classifier.tar.gz",
        tmp_path / "k.tar.gz",
        golden_input=FIXTURES / "imdb_corpus.jsonl",
    )
    manifest = read_manifest(target)
    # the spaCy version and rules in use are part of the fingerprint (a spaCy upgrade shows)
    assert set(manifest.tokenizer_fingerprint["materials"]) == {"tokenizer"}
    report = verify_archive(target)
    assert report.ok, [check.to_dict() for check in report.checks]
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["tokenizer"] == statuses["predictions"] == "pass"


def test_allennlp_0_9_flat_text_field_embedder_layout_imports_with_the_same_logits(tmp_path):
    # AllenNLP 0.9 let token embedders sit directly under text_field_embedder (with
    # allow_unmatched_keys); the same archive in that layout imports to the same model.
    root = _unpacked(FIXTURES / "simple_tagger.tar.gz", tmp_path / "a")
    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    embedder = config["model"]["text_field_embedder"]
    config["model"]["text_field_embedder"] = {
        **embedder.pop("token_embedders"),
        "allow_unmatched_keys": True,
    }
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    flat = pack_directory(root, tmp_path / "flat.tar.gz")
    imported = load_archive(import_allennlp_archive(flat, tmp_path / "flat-keel.tar.gz"))
    original = load_archive(
        import_allennlp_archive(FIXTURES / "simple_tagger.tar.gz", tmp_path / "k.tar.gz")
    )
    manifest = read_manifest(tmp_path / "flat-keel.tar.gz")
    assert any(
        "moved under token_embedders" in c for c in manifest.imported_from["layout_upgraded"]
    )
    for words in SENTENCES:
        [a] = imported.model.forward_on_instances(
            [imported.validation_dataset_reader.text_to_instance(words)]
        )
        [b] = original.model.forward_on_instances(
            [original.validation_dataset_reader.text_to_instance(words)]
        )
        assert a["logits"].tolist() == b["logits"].tolist() and a["tags"] == b["tags"]


def test_archive_inspect_says_which_allennlp_release_an_import_came_from(tmp_path):
    from typer.testing import CliRunner

    from keel.cli.main import app

    target = import_allennlp_archive(FIXTURES / "simple_tagger-full.tar.gz", tmp_path / "k.tar.gz")
    result = CliRunner().invoke(app, ["archive", "inspect", str(target)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "imported from" in text and "allennlp 2.8.0, sha256" in text

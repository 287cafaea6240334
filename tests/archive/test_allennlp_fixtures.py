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


def test_allennlp_archive_with_the_spacy_tokenizer_is_refused_naming_it(tmp_path):
    with pytest.raises(ArchiveError) as raised:
        import_allennlp_archive(FIXTURES / "basic_classifier.tar.gz", tmp_path / "k.tar.gz")
    assert raised.value.code == errors.UNKNOWN_COMPONENT
    message = str(raised.value)
    assert "dataset_reader.tokenizer is 'spacy'" in message and "refusing to import" in message
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

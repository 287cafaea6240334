"""crf_tagger on the synthetic CoNLL-2003 fixture, BIOUL with constrained decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.common.from_params import build
from keel.data import span_utils
from keel.data.batch import collate
from keel.data.dataset_readers.conll2003 import Conll2003DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models.crf_tagger import CrfTagger
from keel.models.model import Model
from keel.modules.conditional_random_field import allowed_transitions
from keel.modules.seq2seq_encoders import GruSeq2SeqEncoder
from keel.modules.token_embedders.character_encoding import TokenCharactersEncoder

FIXTURE = Path(__file__).parents[1] / "fixtures" / "tagging" / "conll2003_iob1.txt"


def _data(coding_scheme: str = "BIOUL"):
    instances = list(Conll2003DatasetReader(coding_scheme=coding_scheme).read(FIXTURE))
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    return instances, vocab


def _config(**extra) -> dict:
    return {
        "type": "crf_tagger",
        "text_field_embedder": {"token_embedders": {"tokens": {"embedding_dim": 6}}},
        "encoder": {"type": "gru", "input_size": 6, "hidden_size": 5, "bidirectional": True},
        "label_encoding": "BIOUL",
        **extra,
    }


def _is_well_formed(tags: list[str]) -> bool:
    """Every transition (with START/END) is allowed in BIOUL."""
    labels = dict(enumerate(sorted(set(tags) | {"O"})))
    index = {label: i for i, label in labels.items()}
    allowed = set(allowed_transitions("BIOUL", labels))
    ids = [len(labels)] + [index[t] for t in tags] + [len(labels) + 1]
    return all(pair in allowed for pair in zip(ids, ids[1:], strict=False))


def test_crf_tagger_forward_decodes_constrained_tags():
    instances, vocab = _data()
    torch.manual_seed(0)
    model = build(Model, _config(), extras={"vocab": vocab})
    assert isinstance(model, CrfTagger) and model.default_predictor == "sentence_tagger"
    assert isinstance(model.encoder, GruSeq2SeqEncoder)
    output = model(**collate(instances))
    assert output["loss"].dim() == 0 and output["loss"].item() > 0
    output["loss"].backward()
    assert model.crf.transitions.grad is not None
    assert [len(tags) for tags in output["tags"]] == [len(i["tokens"]) for i in instances]
    readable = model.make_output_human_readable(output)
    for tags in readable["tags"]:
        assert _is_well_formed(tags), tags
    metrics = model.get_metrics()
    assert set(metrics) == {"accuracy", "precision-overall", "recall-overall", "f1-measure-overall"}


def test_crf_tagger_top_k_outputs():
    instances, vocab = _data()
    model = build(Model, _config(top_k=3), extras={"vocab": vocab}).eval()
    results = model.forward_on_instances(instances[:2])
    for instance, result in zip(instances, results, strict=False):
        assert len(result["top_k_tags"]) == 3
        assert result["top_k_tags"][0]["tags"] == result["tags"]
        scores = [item["score"] for item in result["top_k_tags"]]
        assert scores == sorted(scores, reverse=True)
        assert len(result["tags"]) == len(instance["tokens"])


@pytest.mark.slow
def test_crf_tagger_learns_the_fixture_to_full_span_f1():
    instances, vocab = _data()
    torch.manual_seed(0)
    model = build(Model, _config(verbose_metrics=True), extras={"vocab": vocab})
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = collate(instances)
    for _ in range(40):
        optimizer.zero_grad()
        model(**batch)["loss"].backward()
        optimizer.step()
    model.get_metrics(reset=True)
    model.eval()
    output = model.make_output_human_readable(model(**batch))
    metrics = model.get_metrics()
    assert metrics["f1-measure-overall"] == 1.0 and metrics["f1-measure-PER"] == 1.0
    gold = [list(i["tags"].labels) for i in instances]
    assert output["tags"] == gold
    assert span_utils.bioul_tags_to_spans(output["tags"][1])[0] == ("ORG", (0, 1))


def test_crf_tagger_constraints_need_a_label_encoding():
    _, vocab = _data()
    config = _config(constrain_crf_decoding=True)
    del config["label_encoding"]
    with pytest.raises(ConfigurationError, match="constrain_crf_decoding needs label_encoding"):
        build(Model, config, extras={"vocab": vocab})
    # Without a label encoding the CRF decodes freely and no span metric is kept.
    del config["constrain_crf_decoding"]
    model = build(Model, config, extras={"vocab": vocab})
    assert bool(model.crf._constraint_mask.all())
    assert set(model.get_metrics()) == {"accuracy"}


EXAMPLE = Path(__file__).parents[2] / "examples" / "conll2003" / "crf_tagger.jsonnet"


def test_crf_tagger_conll2003_example_config_builds_and_runs():
    from keel.common.params import load_config
    from keel.data.dataset_readers.dataset_reader import DatasetReader
    from keel.training.experiment import validate_experiment

    paths = {"train_path": str(FIXTURE), "validation_path": str(FIXTURE)}
    resolved = validate_experiment(load_config(EXAMPLE, ext_vars=paths)).resolved
    reader = build(DatasetReader, resolved["dataset_reader"])
    instances = list(reader.read(resolved["train_data_path"]))
    assert list(instances[1]["tags"].labels)[:2] == ["B-ORG", "L-ORG"]
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    model = build(Model, resolved["model"], extras={"vocab": vocab}).eval()
    characters = model.text_field_embedder.token_embedder_token_characters
    assert isinstance(characters, TokenCharactersEncoder)
    output = model.make_output_human_readable(model(**collate(instances)))
    assert all(_is_well_formed(tags) for tags in output["tags"])


@pytest.mark.slow
def test_crf_tagger_conll2003_example_trains_archives_and_predicts(tmp_path):
    """The whole path on the fixture: train one epoch, archive, reload strictly, predict."""
    from keel.archive.model_archive import load_archive
    from keel.common.params import load_config
    from keel.pipeline.train import train_model
    from keel.predict.predictor import Predictor

    paths = {"train_path": str(FIXTURE), "validation_path": str(FIXTURE)}
    overrides = {
        "trainer.num_epochs": 1,
        "vocabulary.min_count": {"tokens": 1},
        "model.encoder.hidden_size": 8,
        "model.encoder.num_layers": 1,
        "model.encoder.dropout": 0.0,
    }
    config = load_config(EXAMPLE, overrides=json.dumps(overrides), ext_vars=paths)
    result = train_model(config, tmp_path / "run", quiet=True)
    assert "best_validation_f1-measure-overall" in result.metrics
    archive = load_archive(result.archive_path)
    predictor = Predictor.from_archive(archive)
    output = predictor.predict_json({"tokens": ["Maria", "Lopez", "visited", "Oslo", "."]})
    assert output["words"][0] == "Maria" and len(output["tags"]) == 5
    assert _is_well_formed(output["tags"])

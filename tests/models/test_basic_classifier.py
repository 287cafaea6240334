"""basic_classifier: built from config, outputs, metrics, decoding, and a real training run."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from keel.common.errors import ConfigurationError, ModelError
from keel.common.from_params import build, resolve
from keel.data.batch import collate
from keel.data.data_loaders import MultiProcessDataLoader
from keel.data.dataset_readers import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models import BasicClassifier, Model

TOL = 1e-5
TEXTS = [
    ("a good movie", "pos"),
    ("a bad film", "neg"),
    ("good", "pos"),
    ("so bad it hurts", "neg"),
]

BOE_CONFIG = {
    "type": "basic_classifier",
    "text_field_embedder": {
        "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 6}}
    },
    "seq2vec_encoder": {"type": "boe", "embedding_dim": 6, "averaged": True},
}


def _instances(pairs=TEXTS):
    reader = DatasetReader.by_name("text_classification_json")()
    return [reader.text_to_instance(text, label) for text, label in pairs]


def _setup(config=BOE_CONFIG, pairs=TEXTS):
    instances = _instances(pairs)
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    model = build(Model, copy.deepcopy(config), extras={"vocab": vocab})
    return model, vocab, instances


def test_basic_classifier_builds_from_config_with_defaults_resolved():
    model, vocab, _ = _setup()
    assert isinstance(model, BasicClassifier)
    assert model.default_predictor == "text_classifier"
    assert model._classification_layer.out_features == vocab.get_vocab_size("labels") == 2
    resolved = resolve(Model, copy.deepcopy(BOE_CONFIG))
    assert resolved["label_namespace"] == "labels" and resolved["dropout"] is None
    embedding = resolved["text_field_embedder"]["token_embedders"]["tokens"]
    assert embedding["vocab_namespace"] == "tokens" and embedding["padding_index"] == 0


def test_basic_classifier_forward_shapes_loss_and_probs():
    model, _, instances = _setup()
    output = model(**collate(instances))
    assert output["logits"].shape == (4, 2) and output["probs"].shape == (4, 2)
    assert torch.allclose(output["probs"].sum(dim=-1), torch.ones(4), atol=TOL)
    expected_loss = torch.nn.functional.cross_entropy(output["logits"], collate(instances)["label"])
    assert output["loss"].item() == pytest.approx(expected_loss.item(), abs=TOL)
    output["loss"].backward()
    batch = collate(instances)
    del batch["label"]
    assert "loss" not in model(**batch)


def test_basic_classifier_metrics_are_flat_floats_named_by_label():
    model, _, instances = _setup()
    model(**collate(instances))
    metrics = model.get_metrics()
    for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "pos_f1", "neg_f1"):
        assert isinstance(metrics[key], float), key
    probs = model(**collate(instances))["probs"]
    gold = collate(instances)["label"]
    accuracy = (probs.argmax(-1) == gold).float().mean().item()
    assert model.get_metrics(reset=True)["accuracy"] == pytest.approx(accuracy, abs=TOL)
    assert model.get_metrics()["accuracy"] == 0.0


def test_basic_classifier_human_readable_labels_and_forward_on_instances():
    model, vocab, instances = _setup()
    output = model.make_output_human_readable(model(**collate(instances)))
    indices = output["probs"].argmax(-1).tolist()
    assert output["label"] == [vocab.get_token_from_index(i, "labels") for i in indices]
    unlabeled = _instances([("a good movie", None), ("bad", None)])
    predictions = model.eval().forward_on_instances(unlabeled)
    assert len(predictions) == 2
    assert predictions[0]["label"] in {"pos", "neg"}
    assert predictions[0]["probs"].shape == (2,) and "loss" not in predictions[0]
    assert predictions[0]["tokens"] == ["a", "good", "movie"]
    assert predictions[1]["tokens"] == ["bad"]


@pytest.mark.parametrize(
    ("encoder", "encoded_dim"),
    [
        ({"type": "cnn", "embedding_dim": 8, "num_filters": 3, "ngram_filter_sizes": [1, 2]}, 6),
        ({"type": "lstm", "input_size": 8, "hidden_size": 5, "bidirectional": True}, 10),
        ({"type": "gru", "input_size": 8, "hidden_size": 5}, 5),
    ],
)
def test_basic_classifier_full_config_with_seq2seq_feedforward_dropout(encoder, encoded_dim):
    config = {
        "type": "basic_classifier",
        "text_field_embedder": {
            "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}
        },
        "seq2seq_encoder": {
            "type": "lstm",
            "input_size": 4,
            "hidden_size": 4,
            "bidirectional": True,
        },
        "seq2vec_encoder": encoder,
        "feedforward": {
            "input_dim": encoded_dim,
            "num_layers": 2,
            "hidden_dims": [7, 3],
            "activations": ["relu", "linear"],
            "dropout": 0.1,
        },
        "dropout": 0.2,
    }
    model, _, instances = _setup(config)
    output = model(**collate(instances))
    assert output["logits"].shape == (4, 2) and torch.isfinite(output["loss"])


def test_basic_classifier_dimension_mismatch_names_both_parts():
    config = copy.deepcopy(BOE_CONFIG)
    config["seq2vec_encoder"]["embedding_dim"] = 5
    with pytest.raises(ModelError, match="text_field_embedder outputs vectors of size 6") as info:
        _setup(config)
    assert "seq2vec_encoder expects input of size 5" in str(info.value)


def test_basic_classifier_config_errors_are_located():
    config = copy.deepcopy(BOE_CONFIG)
    config["seq2vec_encoder"] = {"type": "bow", "embedding_dim": 6}
    config["text_field_embedder"]["token_embedders"]["tokens"]["embeding_dim"] = 3
    with pytest.raises(ConfigurationError) as info:
        _setup(config)
    paths = {issue.path for issue in info.value.issues}
    assert "seq2vec_encoder.type" in paths
    assert "text_field_embedder.token_embedders.tokens.embeding_dim" in paths


def test_basic_classifier_num_labels_override():
    config = {**copy.deepcopy(BOE_CONFIG), "num_labels": 5}
    model, _, instances = _setup(config)
    assert model(**collate(instances))["logits"].shape == (4, 5)


def _toy_dataset(size: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    filler = ["the", "a", "movie", "film", "plot", "was", "very", "actors", "and", "it", "this"]
    cues = {"pos": ["good", "great", "lovely"], "neg": ["bad", "awful", "boring"]}
    pairs = []
    for _ in range(size):
        label = rng.choice(["pos", "neg"])
        words = rng.choices(filler, k=rng.randint(2, 8)) + [rng.choice(cues[label])]
        rng.shuffle(words)
        pairs.append((" ".join(words), label))
    return pairs


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["boe", "cnn", "lstm"])
def test_basic_classifier_learns_a_separable_toy_task(encoder):
    torch.manual_seed(0)
    encoders = {
        "boe": {"type": "boe", "embedding_dim": 8},
        "cnn": {"type": "cnn", "embedding_dim": 8, "num_filters": 4, "ngram_filter_sizes": [1, 2]},
        "lstm": {"type": "lstm", "input_size": 8, "hidden_size": 8},
    }
    config = {
        "type": "basic_classifier",
        "text_field_embedder": {
            "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 8}}
        },
        "seq2vec_encoder": encoders[encoder],
    }
    train = _instances(_toy_dataset(200, seed=1))
    test = _instances(_toy_dataset(100, seed=2))
    vocab = Vocabulary.from_instances(train + test)
    model = build(Model, config, extras={"vocab": vocab})
    loader = MultiProcessDataLoader(train, batch_size=16, shuffle=True)
    loader.index_with(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(15):  # 15 epochs x 13 batches ~ 200 steps
        for batch in loader:
            optimizer.zero_grad()
            model(**batch)["loss"].backward()
            optimizer.step()
    model.eval()
    model.get_metrics(reset=True)
    for instance in test:
        instance.index_fields(vocab)
    with torch.no_grad():
        model(**collate(test))
    metrics = model.get_metrics(reset=True)
    assert metrics["accuracy"] >= 0.95, metrics
    assert metrics["macro_f1"] >= 0.95, metrics

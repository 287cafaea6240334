"""simple_tagger on a few real UD EWT sentences (shipped sample)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from keel.common.errors import ConfigurationError, ModelError
from keel.common.from_params import build
from keel.data.batch import collate
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.token_indexers.single_id_token_indexer import SingleIdTokenIndexer
from keel.data.token_indexers.token_characters_indexer import TokenCharactersIndexer
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model
from keel.models.simple_tagger import SimpleTagger
from keel.modules.seq2seq_encoders import LstmSeq2SeqEncoder
from keel.modules.token_embedders.character_encoding import TokenCharactersEncoder

SAMPLE = (
    Path(__file__).parents[2]
    / "examples"
    / "data"
    / "ud-ewt-sample"
    / "en_ewt-ud-train.sample.conllu"
)


def _data(count: int = 8):
    reader = ConlluDatasetReader(
        token_indexers={
            "tokens": SingleIdTokenIndexer(lowercase_tokens=True),
            "token_characters": TokenCharactersIndexer(min_padding_length=3),
        },
        max_instances=count,
    )
    instances = list(reader.read(SAMPLE))
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    return instances, vocab


def model_config(model_type: str = "simple_tagger", **extra) -> dict:
    return {
        "type": model_type,
        "text_field_embedder": {
            "token_embedders": {
                "tokens": {"type": "embedding", "embedding_dim": 8},
                "token_characters": {
                    "type": "character_encoding",
                    "embedding": {"embedding_dim": 4},
                    "encoder": {
                        "type": "cnn",
                        "embedding_dim": 4,
                        "num_filters": 6,
                        "ngram_filter_sizes": [3],
                    },
                },
            }
        },
        "encoder": {"type": "lstm", "input_size": 14, "hidden_size": 8, "bidirectional": True},
        **extra,
    }


def test_simple_tagger_forward_outputs_and_human_readable_tags():
    instances, vocab = _data()
    torch.manual_seed(0)
    model = build(Model, model_config(), extras={"vocab": vocab})
    assert isinstance(model, SimpleTagger) and model.default_predictor == "sentence_tagger"
    assert isinstance(model.encoder, LstmSeq2SeqEncoder)
    embedders = model.text_field_embedder
    assert isinstance(embedders.token_embedder_token_characters, TokenCharactersEncoder)
    batch = collate(instances)
    output = model(**batch)
    num_tags = vocab.get_vocab_size("labels")
    longest = max(len(instance["tokens"]) for instance in instances)
    assert output["logits"].shape == (8, longest, num_tags)
    assert output["mask"].shape == (8, longest)
    assert torch.isfinite(output["loss"]) and output["loss"].dim() == 0
    output["loss"].backward()
    readable = model.make_output_human_readable(output)
    for instance, tags, words in zip(instances, readable["tags"], readable["words"], strict=True):
        assert len(tags) == len(instance["tokens"]) == len(words)
        assert set(tags) <= set(vocab.get_token_to_index_vocabulary("labels"))
    assert set(model.get_metrics()) == {"accuracy", "accuracy3"}


@pytest.mark.slow
def test_simple_tagger_learns_a_small_batch():
    instances, vocab = _data(4)
    torch.manual_seed(0)
    model = build(Model, model_config(), extras={"vocab": vocab})
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    batch = collate(instances)
    for _ in range(40):
        optimizer.zero_grad()
        model(**batch)["loss"].backward()
        optimizer.step()
    model.get_metrics(reset=True)
    model.eval()
    model(**batch)
    assert model.get_metrics()["accuracy"] >= 0.95


def test_simple_tagger_forward_on_instances_returns_per_instance_tags():
    instances, vocab = _data(3)
    model = build(Model, model_config(), extras={"vocab": vocab}).eval()
    results = model.forward_on_instances(instances)
    assert [len(result["tags"]) for result in results] == [len(i["tokens"]) for i in instances]
    assert results[0]["words"] == instances[0]["metadata"]["words"]


def test_simple_tagger_dimension_mismatch_is_reported():
    _, vocab = _data(2)
    config = model_config()
    config["encoder"]["input_size"] = 10
    with pytest.raises(
        ModelError, match="outputs vectors of size 14 but encoder expects input of size 10"
    ):
        build(Model, config, extras={"vocab": vocab})


def test_simple_tagger_span_f1_on_pos_tags_is_refused():
    _, vocab = _data(2)
    with pytest.raises(ConfigurationError, match="not a span tag"):
        build(Model, model_config(label_encoding="BIO"), extras={"vocab": vocab})
    with pytest.raises(ConfigurationError, match="needs label_encoding"):
        build(Model, model_config(calculate_span_f1=True), extras={"vocab": vocab})


EXAMPLES = Path(__file__).parents[2] / "examples" / "ud_pos"


@pytest.mark.parametrize("name", ["bilstm_char_cnn.jsonnet", "sample.jsonnet"])
def test_simple_tagger_ud_pos_example_configs_build_and_run(name):
    from keel.common.params import load_config
    from keel.training.experiment import validate_experiment

    config = load_config(EXAMPLES / name, ext_vars={"data_dir": str(SAMPLE.parent)})
    resolved = validate_experiment(config, check_files=False).resolved
    embedding = resolved["model"]["text_field_embedder"]["token_embedders"]["token_characters"]
    assert embedding["embedding"]["vocab_namespace"] == "token_characters"
    instances, vocab = _data(4)
    model = build(Model, resolved["model"], extras={"vocab": vocab}).eval()
    output = model.make_output_human_readable(model(**collate(instances)))
    assert [len(tags) for tags in output["tags"]] == [len(i["tokens"]) for i in instances]

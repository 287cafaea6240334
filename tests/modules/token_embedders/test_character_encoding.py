"""character_encoding: namespace defaults, the word-vocabulary pitfall, bulk encoding."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.common.from_params import build
from keel.data.batch import collate
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.token_indexers.single_id_token_indexer import SingleIdTokenIndexer
from keel.data.token_indexers.token_characters_indexer import TokenCharactersIndexer
from keel.data.tokenizers.token import Token
from keel.data.vocabulary import Vocabulary
from keel.modules.seq2vec_encoders.boe_encoder import BagOfEmbeddingsEncoder
from keel.modules.seq2vec_encoders.cnn_encoder import CnnEncoder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder
from keel.modules.token_embedders.character_encoding import TokenCharactersEncoder
from keel.modules.token_embedders.embedding import Embedding
from keel.modules.token_embedders.token_embedder import TokenEmbedder

SENTENCES = [["the", "cat", "sat"], ["a", "dog"], ["catalogue", "of", "dogs", "and", "cats"]]


def _instances() -> list[Instance]:
    indexers = {"tokens": SingleIdTokenIndexer(), "token_characters": TokenCharactersIndexer()}
    return [Instance({"tokens": TextField([Token(w) for w in s], indexers)}) for s in SENTENCES]


def _vocab() -> Vocabulary:
    return Vocabulary.from_instances(_instances())


CONFIG = {
    "type": "character_encoding",
    "embedding": {"embedding_dim": 5},
    "encoder": {"type": "cnn", "embedding_dim": 5, "num_filters": 4, "ngram_filter_sizes": [2, 3]},
}


def test_character_encoding_embedding_defaults_to_the_character_namespace():
    vocab = _vocab()
    assert vocab.get_vocab_size("token_characters") != vocab.get_vocab_size("tokens")
    embedder = build(TokenEmbedder, CONFIG, extras={"vocab": vocab})
    assert isinstance(embedder, TokenCharactersEncoder)
    assert embedder._embedding.num_embeddings == vocab.get_vocab_size("token_characters")
    assert embedder.get_output_dim() == 8


def test_character_encoding_accepts_an_explicit_embedding_type():
    vocab = _vocab()
    config = dict(CONFIG)
    config["embedding"] = {
        "type": "embedding",
        "embedding_dim": 5,
        "vocab_namespace": "token_characters",
    }
    embedder = build(TokenEmbedder, config, extras={"vocab": vocab})
    assert embedder._embedding.num_embeddings == vocab.get_vocab_size("token_characters")


@pytest.mark.parametrize("with_type", [False, True])
def test_character_encoding_refuses_the_word_namespace(with_type):
    config = dict(CONFIG)
    config["embedding"] = {"embedding_dim": 5, "vocab_namespace": "tokens"}
    if with_type:
        config["embedding"]["type"] = "embedding"
    with pytest.raises(ConfigurationError, match="embedding.vocab_namespace") as info:
        build(TokenEmbedder, config, extras={"vocab": _vocab()})
    assert "word vocabulary" in str(info.value)


def test_character_encoding_refuses_a_word_sized_plain_embedding():
    vocab = _vocab()
    embedding = Embedding(embedding_dim=5, vocab=vocab)  # AllenNLP's pitfall: namespace "tokens"
    with pytest.raises(ConfigurationError, match="word vocabulary"):
        TokenCharactersEncoder(embedding, BagOfEmbeddingsEncoder(5))


def test_character_encoding_encodes_each_word_like_alone_and_zeroes_padding():
    vocab = _vocab()
    torch.manual_seed(0)
    embedder = build(TokenEmbedder, CONFIG, extras={"vocab": vocab}).eval()
    instances = _instances()
    for instance in instances:
        instance.index_fields(vocab)
    chars = collate(instances)["tokens"]["token_characters"]["token_characters"]
    output = embedder(chars)
    assert output.shape == (3, 5, 8)
    assert torch.all(output[0, 3:] == 0) and torch.all(output[1, 2:] == 0)
    embedding, encoder = embedder._embedding, embedder._encoder
    for b, sentence in enumerate(SENTENCES):
        for t, word in enumerate(sentence):
            ids = chars[b, t, : len(word)].unsqueeze(0)
            alone = encoder(embedding(ids), torch.ones_like(ids, dtype=torch.bool))
            torch.testing.assert_close(output[b, t], alone[0], atol=1e-6, rtol=0)


def test_character_encoding_combines_with_word_embeddings_in_basic_embedder():
    vocab = _vocab()
    config = {
        "type": "basic",
        "token_embedders": {
            "tokens": {"type": "embedding", "embedding_dim": 3},
            "token_characters": CONFIG,
        },
    }
    text_embedder = build(TextFieldEmbedder, config, extras={"vocab": vocab})
    instances = _instances()
    for instance in instances:
        instance.index_fields(vocab)
    output = text_embedder(collate(instances)["tokens"])
    assert output.shape == (3, 5, 11)  # sorted names: token_characters (8) then tokens (3)
    output.sum().backward()
    assert isinstance(text_embedder.token_embedder_token_characters._encoder, CnnEncoder)
    assert text_embedder.token_embedder_token_characters._embedding.weight.grad is not None

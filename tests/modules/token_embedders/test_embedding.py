"""embedding: lookup, padding, projection, pretrained GloVe-format files."""

from __future__ import annotations

import gzip
import logging

import pytest
import torch

from keel.common.errors import ConfigurationError, DataError
from keel.data.vocabulary import Vocabulary
from keel.modules.token_embedders import Embedding, TokenEmbedder

GLOVE = "the 0.1 0.2 0.3\ncat 1.0 -1.0 0.5\nunused 9.0 9.0 9.0\n"


def _vocab() -> Vocabulary:
    # tokens: 0 @@PADDING@@, 1 @@UNKNOWN@@, 2 the, 3 cat, 4 dog
    return Vocabulary(tokens_to_add={"tokens": ["the", "cat", "dog"]})


def test_embedding_is_registered_default_and_sized_from_vocab():
    assert TokenEmbedder.by_name("embedding") is Embedding
    assert TokenEmbedder.default_implementation == "embedding"
    embedding = Embedding(embedding_dim=4, vocab=_vocab())
    assert embedding.weight.shape == (5, 4)
    assert embedding.get_output_dim() == 4


def test_embedding_lookup_shape_and_zero_padding_row():
    embedding = Embedding(embedding_dim=3, num_embeddings=6)
    ids = torch.tensor([[2, 3, 0], [5, 0, 0]])
    output = embedding(ids)
    assert output.shape == (2, 3, 3)
    assert torch.equal(output[0, 0], embedding.weight[2])
    assert torch.all(output[1, 1:] == 0)
    output.sum().backward()
    assert torch.all(embedding.weight.grad[0] == 0)  # the padding row never learns


def test_embedding_projection_and_trainable_flag():
    embedding = Embedding(embedding_dim=3, num_embeddings=6, projection_dim=2, trainable=False)
    assert embedding.get_output_dim() == 2
    assert embedding(torch.tensor([[1, 2]])).shape == (1, 2, 2)
    assert not embedding.weight.requires_grad


def test_embedding_needs_vocab_or_num_embeddings():
    with pytest.raises(ConfigurationError, match="vocabulary") as info:
        Embedding(embedding_dim=3)
    assert info.value.code == "KM002"


def test_embedding_pretrained_file_sets_found_rows_and_reports_count(tmp_path, caplog):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE, encoding="utf-8")
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="keel.modules.token_embedders.embedding"):
        embedding = Embedding(embedding_dim=3, pretrained_file=str(path), vocab=_vocab())
    assert embedding.num_pretrained_found == 2
    assert "Found 2 of 5" in caplog.text
    assert torch.allclose(embedding.weight[2], torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(embedding.weight[3], torch.tensor([1.0, -1.0, 0.5]))
    assert torch.all(embedding.weight[0] == 0)
    assert torch.all(embedding.weight[4] != 0)  # "dog" is missing: random, not zero


def test_embedding_pretrained_gzip_and_word2vec_header(tmp_path):
    path = tmp_path / "vectors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("3 3\n" + GLOVE)
    embedding = Embedding(embedding_dim=3, pretrained_file=str(path), vocab=_vocab())
    assert embedding.num_pretrained_found == 2
    assert torch.allclose(embedding.weight[3], torch.tensor([1.0, -1.0, 0.5]))


def test_embedding_pretrained_wrong_dimension_names_file_and_line(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.1 0.2 0.3\ncat 1.0 -1.0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"glove\.txt:2") as info:
        Embedding(embedding_dim=3, pretrained_file=str(path), vocab=_vocab())
    assert info.value.line == 2 and info.value.code == "KD001"
    assert "expected a token and 3 numbers" in str(info.value)


def test_embedding_pretrained_non_numbers_and_missing_file(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("cat 1.0 x 2.0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"glove\.txt:1"):
        Embedding(embedding_dim=3, pretrained_file=str(path), vocab=_vocab())
    with pytest.raises(DataError) as info:
        Embedding(embedding_dim=3, pretrained_file=str(tmp_path / "nope.txt"), vocab=_vocab())
    assert info.value.code == "KD004"


def test_embedding_builds_from_config_with_vocab_extra(tmp_path):
    from keel.common.from_params import build

    path = tmp_path / "glove.txt"
    path.write_text(GLOVE, encoding="utf-8")
    config = {"type": "embedding", "embedding_dim": 3, "pretrained_file": str(path)}
    embedding = build(TokenEmbedder, config, extras={"vocab": _vocab()})
    assert isinstance(embedding, Embedding) and embedding.num_pretrained_found == 2
    assert build(TokenEmbedder, {"embedding_dim": 2, "num_embeddings": 4}).weight.shape == (4, 2)


def test_embedding_remove_pretrained_files_lets_a_model_rebuild_without_the_vectors(tmp_path):
    from keel.common.from_params import build
    from keel.modules.token_embedders import remove_pretrained_files

    path = tmp_path / "glove.txt"
    path.write_text(GLOVE, encoding="utf-8")
    config = {
        "token_embedders": {
            "tokens": {"type": "embedding", "embedding_dim": 3, "pretrained_file": str(path)}
        }
    }
    stripped = remove_pretrained_files(config)
    assert "pretrained_file" in config["token_embedders"]["tokens"]  # the input is untouched
    assert stripped == {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 3}}}
    path.unlink()  # the vectors are gone on the machine that loads the model
    from keel.modules.text_field_embedders import TextFieldEmbedder

    embedder = build(TextFieldEmbedder, stripped, extras={"vocab": _vocab()})
    assert embedder.get_output_dim() == 3

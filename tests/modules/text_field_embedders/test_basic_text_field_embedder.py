"""basic text field embedder: sorted concatenation, mask ignored, name checks."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ModelError
from keel.modules.text_field_embedders import BasicTextFieldEmbedder, TextFieldEmbedder
from keel.modules.token_embedders import Embedding, TokenEmbedder


class _CharacterSum(TokenEmbedder):
    """A stand-in for a character encoder: sums character embeddings per token."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = Embedding(embedding_dim=2, num_embeddings=10)

    def get_output_dim(self) -> int:
        return 2

    def forward(self, token_characters: torch.Tensor) -> torch.Tensor:
        return self.embedding(token_characters).sum(dim=-2)


def _batch() -> dict[str, dict[str, torch.Tensor]]:
    mask = torch.tensor([[True, True], [True, False]])
    return {
        "tokens": {"tokens": torch.tensor([[1, 2], [3, 0]]), "mask": mask},
        "chars": {
            "token_characters": torch.tensor([[[1, 2], [3, 0]], [[4, 0], [0, 0]]]),
            "mask": mask,
        },
    }


def test_basic_text_field_embedder_concatenates_in_sorted_name_order():
    assert TextFieldEmbedder.by_name("basic") is BasicTextFieldEmbedder
    words = Embedding(embedding_dim=3, num_embeddings=5)
    chars = _CharacterSum()
    embedder = BasicTextFieldEmbedder({"tokens": words, "chars": chars})
    assert embedder.get_output_dim() == 5
    output = embedder(_batch())
    assert output.shape == (2, 2, 5)
    # "chars" sorts before "tokens", so its 2 dimensions come first.
    assert torch.equal(output[0, 0, :2], chars.embedding.weight[1] + chars.embedding.weight[2])
    assert torch.equal(output[0, 1, 2:], words.weight[2])


def test_basic_text_field_embedder_weight_names_match_allennlp():
    embedder = BasicTextFieldEmbedder({"tokens": Embedding(embedding_dim=3, num_embeddings=5)})
    assert list(embedder.state_dict()) == ["token_embedder_tokens.weight"]


def test_basic_text_field_embedder_positional_for_any_single_tensor_key():
    embedder = BasicTextFieldEmbedder({"words": Embedding(embedding_dim=3, num_embeddings=5)})
    output = embedder({"words": {"ids": torch.tensor([[1, 2]]), "mask": torch.ones(1, 2).bool()}})
    assert output.shape == (1, 2, 3)


def test_basic_text_field_embedder_mismatched_indexer_names_is_clear():
    embedder = BasicTextFieldEmbedder({"tokens": Embedding(embedding_dim=3, num_embeddings=5)})
    with pytest.raises(ModelError, match="same names"):
        embedder({"words": {"tokens": torch.tensor([[1]])}})
    with pytest.raises(ModelError):
        BasicTextFieldEmbedder({})


def test_basic_text_field_embedder_builds_from_config():
    from keel.common.from_params import build
    from keel.data.vocabulary import Vocabulary

    vocab = Vocabulary(tokens_to_add={"tokens": ["a", "b"]})
    config = {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 3}}}
    embedder = build(TextFieldEmbedder, config, extras={"vocab": vocab})
    assert isinstance(embedder, BasicTextFieldEmbedder) and embedder.get_output_dim() == 3
    assert embedder.token_embedder_tokens.weight.shape == (4, 3)

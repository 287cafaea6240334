"""Token embedders: turn one indexer's id tensors into per-token vectors."""

from keel.modules.token_embedders.character_encoding import TokenCharactersEncoder
from keel.modules.token_embedders.embedding import (
    Embedding,
    read_pretrained_embeddings,
    remove_pretrained_files,
)
from keel.modules.token_embedders.pretrained_transformer_embedder import (
    PretrainedTransformerEmbedder,
    PretrainedTransformerMismatchedEmbedder,
)
from keel.modules.token_embedders.token_embedder import TokenEmbedder

__all__ = [
    "PretrainedTransformerMismatchedEmbedder",
    "PretrainedTransformerEmbedder",
    "Embedding",
    "TokenCharactersEncoder",
    "TokenEmbedder",
    "read_pretrained_embeddings",
    "remove_pretrained_files",
]

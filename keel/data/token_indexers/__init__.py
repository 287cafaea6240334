"""Token indexers: tokens -> ids in a vocabulary namespace -> padded tensors."""

from keel.data.token_indexers.pretrained_transformer_indexer import (
    PretrainedTransformerIndexer,
    PretrainedTransformerMismatchedIndexer,
)
from keel.data.token_indexers.single_id_token_indexer import SingleIdTokenIndexer
from keel.data.token_indexers.token_characters_indexer import TokenCharactersIndexer
from keel.data.token_indexers.token_indexer import TokenIndexer

__all__ = [
    "PretrainedTransformerMismatchedIndexer",
    "PretrainedTransformerIndexer",
    "SingleIdTokenIndexer",
    "TokenCharactersIndexer",
    "TokenIndexer",
]

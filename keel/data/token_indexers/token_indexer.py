"""The ``TokenIndexer`` base class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from keel.common.errors import KeelError
from keel.common.registry import Registrable
from keel.data.packing import ListPack, NestedIds, Packed, RaggedIds
from keel.data.tokenizers.token import Token

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class TokenIndexer(Registrable):
    """Turns tokens into ids in one vocabulary namespace, and pads a batch of them to tensors."""

    default_implementation = "single_id"
    namespace: str
    #: output keys whose values are ids in ``namespace`` of keel's vocabulary, where 1 is the
    #: out-of-vocabulary id (the fingerprint's OOV statistics read these)
    vocabulary_keys: tuple[str, ...] = ()

    def ids_determine_text(self, vocab: Vocabulary) -> bool:
        """True when the ids under ``vocabulary_keys[0]``, one per token, name each token's text
        exactly (the out-of-vocabulary id 1 aside); the preprocessing fingerprint then hashes
        only out-of-vocabulary texts. False unless an indexer guarantees it."""
        return False

    def count_vocab_items(self, tokens: list[Token], counter: dict[str, dict[str, int]]) -> None:
        """Add the vocabulary items of ``tokens`` to ``counter[namespace][item]``."""
        raise NotImplementedError

    def tokens_to_indices(self, tokens: list[Token], vocab: Vocabulary) -> dict[str, list[Any]]:
        """The ids of ``tokens``, keyed by output name."""
        raise NotImplementedError

    def batch_tokens_to_indices(
        self, token_lists: list[list[Token]], vocab: Vocabulary
    ) -> list[dict[str, list[Any]]]:
        """``tokens_to_indices`` for many token lists; override where bulk lookups are faster."""
        return [self.tokens_to_indices(tokens, vocab) for tokens in token_lists]

    def pack(
        self,
        token_lists: list[list[Token]],
        vocab: Vocabulary,
        texts: list[str] | None = None,
    ) -> Packed:
        """Index every token list and pack the result for repeated batching by index.

        ``texts``, when given, is every token's text in order (``TextField.pack`` extracts it
        once for all indexers).
        """
        return IndexedRowsPack(self.batch_tokens_to_indices(token_lists, vocab), self.batch_tensors)

    def pack_from_columns(self, columns: Mapping[str, Any], count: int) -> Packed:
        """The pack ``pack`` makes, rebuilt from its ``columns()`` (a preprocessing cache entry
        keeps them): output key -> ``RaggedIds``, ``NestedIds`` or per-field rows."""
        per_key = {
            key: column.to_rows() if isinstance(column, RaggedIds | NestedIds) else column
            for key, column in columns.items()
        }
        rows = [{key: outputs[index] for key, outputs in per_key.items()} for index in range(count)]
        return IndexedRowsPack(rows, self.batch_tensors)

    def batch_tensors(self, indexed: list[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        """Pad a batch of ``tokens_to_indices`` outputs (0 = padding), with a bool ``"mask"``."""
        raise NotImplementedError


class IndexedRowsPack(ListPack):
    """An indexer's outputs per instance, batched by the indexer's ``batch_tensors``."""

    def columns(self) -> dict[str, list[list[Any]]]:
        """Output key -> each instance's ids under it; every instance must have the same keys."""
        rows = self.items
        keys = sorted(rows[0]) if rows else []
        try:
            if any(len(row) != len(keys) for row in rows):
                raise KeyError
            return {key: [row[key] for row in rows] for key in keys}
        except KeyError:
            raise KeelError("the indexer gave different output keys across instances") from None

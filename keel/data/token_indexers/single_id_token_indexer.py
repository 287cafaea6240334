"""``single_id``: one id per token."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from keel.data.packing import Packed, RaggedIds
from keel.data.token_indexers.padding import pad_1d
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.token import Token

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


@TokenIndexer.register("single_id")
class SingleIdTokenIndexer(TokenIndexer):
    """Each token becomes its index in ``namespace``; output key ``"tokens"``."""

    vocabulary_keys = ("tokens",)

    def __init__(
        self,
        namespace: str = "tokens",
        lowercase_tokens: bool = False,
        start_tokens: list[str] | None = None,
        end_tokens: list[str] | None = None,
    ) -> None:
        self.namespace = namespace
        self.lowercase_tokens = lowercase_tokens
        self.start_tokens = list(start_tokens or [])
        self.end_tokens = list(end_tokens or [])

    def _texts(self, tokens: list[Token]) -> list[str]:
        if self.lowercase_tokens:
            texts = [token.text.lower() for token in tokens]
        else:
            texts = [token.text for token in tokens]
        if self.start_tokens or self.end_tokens:
            texts = [*self.start_tokens, *texts, *self.end_tokens]
        return texts

    def ids_determine_text(self, vocab: Vocabulary) -> bool:
        """True when each id names its token's text exactly, out of vocabulary (1) aside: no
        lowercasing, no added tokens, a padded namespace. The fingerprint relies on it."""
        return (
            not self.lowercase_tokens
            and not self.start_tokens
            and not self.end_tokens
            and vocab.is_padded(self.namespace)
        )

    def count_vocab_items(self, tokens: list[Token], counter: dict[str, dict[str, int]]) -> None:
        counts = counter.setdefault(self.namespace, {})
        get = counts.get
        for text in self._texts(tokens):
            counts[text] = get(text, 0) + 1

    def tokens_to_indices(self, tokens: list[Token], vocab: Vocabulary) -> dict[str, list[Any]]:
        mapping = vocab.get_token_to_index_vocabulary(self.namespace)
        get = mapping.get
        texts = self._texts(tokens)
        if vocab.is_padded(self.namespace):
            return {"tokens": [get(text, 1) for text in texts]}
        ids = [get(text) for text in texts]
        if None in ids:
            raise vocab.unseen_token_error(texts[ids.index(None)], self.namespace)
        return {"tokens": ids}

    def batch_tokens_to_indices(
        self, token_lists: list[list[Token]], vocab: Vocabulary
    ) -> list[dict[str, list[Any]]]:
        if self.lowercase_tokens or self.start_tokens or self.end_tokens:
            return super().batch_tokens_to_indices(token_lists, vocab)
        if not vocab.is_padded(self.namespace):
            return super().batch_tokens_to_indices(token_lists, vocab)
        get = vocab.get_token_to_index_vocabulary(self.namespace).get
        return [{"tokens": [get(token.text, 1) for token in tokens]} for tokens in token_lists]

    def pack(
        self,
        token_lists: list[list[Token]],
        vocab: Vocabulary,
        texts: list[str] | None = None,
    ) -> Packed:
        if self.lowercase_tokens or self.start_tokens or self.end_tokens:
            rows = [item["tokens"] for item in self.batch_tokens_to_indices(token_lists, vocab)]
            return _SingleIdPack(RaggedIds.from_rows(rows))
        if not vocab.is_padded(self.namespace):
            rows = [item["tokens"] for item in self.batch_tokens_to_indices(token_lists, vocab)]
            return _SingleIdPack(RaggedIds.from_rows(rows))
        # The common case runs entirely in C iterators: no per-token Python frame. Looking up
        # a list of texts is faster than mapping attrgetter over the tokens on the fly.
        if texts is None:
            texts = list(map(_text, chain.from_iterable(token_lists)))
        get = vocab.get_token_to_index_vocabulary(self.namespace).get
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        flat = np.fromiter(map(get, texts, repeat(1)), dtype=np.int64, count=len(texts))
        return _SingleIdPack(RaggedIds(flat, lengths))

    def pack_from_columns(self, columns: Mapping[str, Any], count: int) -> Packed:
        ragged = columns.get("tokens")
        if isinstance(ragged, RaggedIds) and len(columns) == 1:
            return _SingleIdPack(ragged)
        return super().pack_from_columns(columns, count)

    def batch_tensors(self, indexed: list[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        padded, mask = pad_1d([item["tokens"] for item in indexed])
        return {"tokens": torch.from_numpy(padded), "mask": torch.from_numpy(mask)}


_text = attrgetter("text")


class _SingleIdPack:
    def __init__(self, ragged: RaggedIds) -> None:
        self.ragged = ragged

    def columns(self) -> dict[str, RaggedIds]:
        return {"tokens": self.ragged}

    def take(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        padded, mask = self.ragged.take(indices)
        return {"tokens": torch.from_numpy(padded), "mask": torch.from_numpy(mask)}

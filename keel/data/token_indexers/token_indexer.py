"""The ``TokenIndexer`` base class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from keel.common.registry import Registrable
from keel.data.packing import ListPack, Packed
from keel.data.tokenizers.token import Token

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class TokenIndexer(Registrable):
    """Turns tokens into ids in one vocabulary namespace, and pads a batch of them to tensors."""

    default_implementation = "single_id"
    namespace: str

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

    def pack(self, token_lists: list[list[Token]], vocab: Vocabulary) -> Packed:
        """Index every token list and pack the result for repeated batching by index."""
        return ListPack(self.batch_tokens_to_indices(token_lists, vocab), self.batch_tensors)

    def batch_tensors(self, indexed: list[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        """Pad a batch of ``tokens_to_indices`` outputs (0 = padding), with a bool ``"mask"``."""
        raise NotImplementedError

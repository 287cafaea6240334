"""The TokenEmbedder base class: one indexer's tensors in, (B, T, D) vectors out."""

from __future__ import annotations

from typing import ClassVar

import torch

from keel.common.registry import Registrable


class TokenEmbedder(torch.nn.Module, Registrable):
    """Embeds the tensors of one token indexer (minus its mask) as (B, T, D) vectors.

    ``forward`` takes the indexer's tensors as keyword arguments, named as the indexer names
    them (``tokens`` for ``single_id``, ``token_characters`` for ``characters``).
    """

    default_implementation: ClassVar[str | None] = "embedding"

    def get_output_dim(self) -> int:
        """The size D of each token's vector."""
        raise NotImplementedError

"""``boe``: bag of embeddings, the sum (or mean) of a sequence's token vectors."""

from __future__ import annotations

import torch

from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder


@Seq2VecEncoder.register("bag_of_embeddings")  # AllenNLP registers both names
@Seq2VecEncoder.register("boe")
class BagOfEmbeddingsEncoder(Seq2VecEncoder):
    """Sums the unmasked token vectors, or averages them when ``averaged``.

    An all-padding sequence encodes as zeros.
    """

    def __init__(self, embedding_dim: int, averaged: bool = False) -> None:
        super().__init__()
        self._embedding_dim = embedding_dim
        self._averaged = averaged

    def get_input_dim(self) -> int:
        return self._embedding_dim

    def get_output_dim(self) -> int:
        return self._embedding_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return inputs.mean(dim=1) if self._averaged else inputs.sum(dim=1)
        weights = mask.unsqueeze(-1).to(inputs.dtype)
        summed = (inputs * weights).sum(dim=1)
        if not self._averaged:
            return summed
        return summed / weights.sum(dim=1).clamp(min=1.0)

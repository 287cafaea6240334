"""``cls_pooler``: a sequence's vector is its first (or last real) token's, e.g. BERT's [CLS]."""

from __future__ import annotations

import torch

from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder


@Seq2VecEncoder.register("cls_pooler")
class ClsPooler(Seq2VecEncoder):
    """Picks the first token's vector, or with ``cls_is_last_token`` the last unmasked one
    (XLNet-style models put their summary token last). Adds no parameters."""

    def __init__(self, embedding_dim: int, cls_is_last_token: bool = False) -> None:
        super().__init__()
        self._embedding_dim = embedding_dim
        self._cls_is_last_token = cls_is_last_token

    def get_input_dim(self) -> int:
        return self._embedding_dim

    def get_output_dim(self) -> int:
        return self._embedding_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self._cls_is_last_token:
            return inputs[:, 0]
        if mask is None:
            return inputs[:, -1]
        last = (mask.long().sum(dim=1) - 1).clamp(min=0)
        return inputs[torch.arange(inputs.size(0), device=inputs.device), last]

"""``pass_through``: the identity seq2seq encoder (padding zeroed)."""

from __future__ import annotations

import torch

from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder


@Seq2SeqEncoder.register("pass_through")
class PassThroughEncoder(Seq2SeqEncoder):
    """Returns its input unchanged except that padded positions become zeros."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self._input_dim = input_dim

    def get_input_dim(self) -> int:
        return self._input_dim

    def get_output_dim(self) -> int:
        return self._input_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return inputs
        return inputs * mask.unsqueeze(-1).to(inputs.dtype)

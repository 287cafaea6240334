"""The Seq2VecEncoder base class: (B, T, D) token vectors and a (B, T) mask in, (B, O) out."""

from __future__ import annotations

import torch

from keel.common.registry import Registrable


class Seq2VecEncoder(torch.nn.Module, Registrable):
    """Summarises each sequence of a batch as one vector, ignoring padded positions."""

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def get_input_dim(self) -> int:
        raise NotImplementedError

    def get_output_dim(self) -> int:
        raise NotImplementedError

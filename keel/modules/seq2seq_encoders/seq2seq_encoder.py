"""The Seq2SeqEncoder base class: (B, T, D) and a (B, T) mask in, (B, T, O) out."""

from __future__ import annotations

import torch

from keel.common.registry import Registrable


class Seq2SeqEncoder(torch.nn.Module, Registrable):
    """Contextualises each token vector of a batch; padded positions come out as zeros."""

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def get_input_dim(self) -> int:
        raise NotImplementedError

    def get_output_dim(self) -> int:
        raise NotImplementedError

    def is_bidirectional(self) -> bool:
        return False

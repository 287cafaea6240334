"""The TextFieldEmbedder base class: a whole batched text field in, (B, T, D) vectors out."""

from __future__ import annotations

import torch

from keel.common.registry import Registrable
from keel.modules.util import TextFieldTensors


class TextFieldEmbedder(torch.nn.Module, Registrable):
    """Embeds every indexer's tensors of a text field and combines them per token."""

    default_implementation = "basic"

    def forward(
        self, text_field_input: TextFieldTensors, num_wrapping_dims: int = 0
    ) -> torch.Tensor:
        raise NotImplementedError

    def get_output_dim(self) -> int:
        """The size D of each token's combined vector."""
        raise NotImplementedError

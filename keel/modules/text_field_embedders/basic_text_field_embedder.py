"""``basic``: one token embedder per indexer, outputs concatenated in sorted indexer order."""

from __future__ import annotations

import inspect

import torch

from keel.common import errors
from keel.common.errors import ModelError
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder
from keel.modules.token_embedders.token_embedder import TokenEmbedder
from keel.modules.util import TextFieldTensors


@TextFieldEmbedder.register("basic")
class BasicTextFieldEmbedder(TextFieldEmbedder):
    """Runs ``token_embedders[name]`` on the tensors of indexer ``name`` and concatenates the
    results along the last dimension, in sorted name order.

    Submodules are named ``token_embedder_<name>`` as in AllenNLP, so weight names match.
    """

    def __init__(self, token_embedders: dict[str, TokenEmbedder]) -> None:
        super().__init__()
        if not token_embedders:
            raise ModelError(
                "a basic text field embedder needs at least one token embedder",
                code=errors.SHAPE_MISMATCH,
            )
        self._ordered_names = sorted(token_embedders)
        self._token_embedders = token_embedders
        for name in self._ordered_names:
            self.add_module(f"token_embedder_{name}", token_embedders[name])
        # Embedders whose forward takes one tensor get it positionally, whatever the indexer
        # calls it; the rest get the indexer's tensors by keyword.
        self._positional = {
            name: _single_tensor_argument(token_embedders[name]) for name in self._ordered_names
        }

    def get_output_dim(self) -> int:
        return sum(self._token_embedders[name].get_output_dim() for name in self._ordered_names)

    def forward(
        self, text_field_input: TextFieldTensors, num_wrapping_dims: int = 0
    ) -> torch.Tensor:
        """Concatenated token vectors (B, T, D) for a batched text field."""
        if set(text_field_input) != set(self._ordered_names):
            raise ModelError(
                f"the text field has indexers {sorted(text_field_input)} but the embedder has "
                f"token embedders for {self._ordered_names}; the dataset reader's token_indexers "
                "and the model's token_embedders must use the same names",
                code=errors.SHAPE_MISMATCH,
            )
        outputs = []
        for name in self._ordered_names:
            embedder = getattr(self, f"token_embedder_{name}")
            tensors = {key: value for key, value in text_field_input[name].items() if key != "mask"}
            if self._positional[name] and len(tensors) == 1:
                outputs.append(embedder(next(iter(tensors.values()))))
            else:
                outputs.append(embedder(**tensors))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)


def _single_tensor_argument(embedder: torch.nn.Module) -> bool:
    parameters = [
        parameter
        for parameter in inspect.signature(embedder.forward).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(parameters) == 1

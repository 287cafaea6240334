"""``cnn``: convolutions of several widths over the tokens, max-pooled over time."""

from __future__ import annotations

from typing import Annotated, Literal

import torch

from keel.common.constraints import Positive
from keel.common.migrations import Migration, register_migration
from keel.modules.activations import get_activation
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder
from keel.modules.util import min_value_of_dtype


@Seq2VecEncoder.register("cnn", version=2)
class CnnEncoder(Seq2VecEncoder):
    """One Conv1d of ``num_filters`` per n-gram width, activation, then a max over positions.

    Padding is zeroed before the convolutions. Which windows the max pools is
    ``window_pooling``:

    - ``keel`` (default): windows that start at a real token and end inside the sequence, so
      padding never wins the max; a sequence shorter than a width (an empty one too) is pooled
      over its single window padded with zeros, the same whatever the batch's padded length.
    - ``allennlp``: AllenNLP 1.2.1 and later (allenai/allennlp#4746): only windows that end
      inside the sequence; where a sequence is shorter than a width, that width's filters give
      0 (a 1-character word under a width-3 filter contributes nothing).
    - ``allennlp_legacy``: AllenNLP up to 1.2.0: every window of the padded batch, so the
      result of a short sequence depends on how far the batch is padded.

    Output size is ``num_filters * len(ngram_filter_sizes)``, or ``output_dim`` when given
    (a linear projection).

    Version 2 keeps the convolutions in one ``ModuleList`` (``convolutions.N``) instead of N
    attributes named ``conv_layer_N`` (AllenNLP's names); archives with version 1 are migrated
    on load (see the migration below), and AllenNLP imports go through the same migration.
    """

    def __init__(
        self,
        embedding_dim: Annotated[int, Positive],
        num_filters: Annotated[int, Positive],
        ngram_filter_sizes: tuple[int, ...] = (2, 3, 4, 5),
        conv_layer_activation: str = "relu",
        output_dim: Annotated[int, Positive] | None = None,
        window_pooling: Literal["keel", "allennlp", "allennlp_legacy"] = "keel",
    ) -> None:
        super().__init__()
        self._embedding_dim = embedding_dim
        self.window_pooling = window_pooling
        self._ngram_filter_sizes = tuple(ngram_filter_sizes)
        self._widest = max(self._ngram_filter_sizes)
        self.convolutions = torch.nn.ModuleList(
            torch.nn.Conv1d(embedding_dim, num_filters, kernel_size=size)
            for size in self._ngram_filter_sizes
        )
        self._activation = get_activation(conv_layer_activation, path="conv_layer_activation")
        pooled_dim = num_filters * len(self._ngram_filter_sizes)
        self.projection_layer: torch.nn.Linear | None = None
        if output_dim is not None:
            self.projection_layer = torch.nn.Linear(pooled_dim, output_dim)
        self._output_dim = output_dim if output_dim is not None else pooled_dim

    def get_input_dim(self) -> int:
        return self._embedding_dim

    def get_output_dim(self) -> int:
        return self._output_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch_size, length, _ = inputs.shape
        if mask is None:
            lengths = torch.full((batch_size,), length, dtype=torch.long, device=inputs.device)
        else:
            inputs = inputs * mask.unsqueeze(-1).to(inputs.dtype)
            lengths = mask.long().sum(dim=1)
        if length < self._widest:
            inputs = torch.nn.functional.pad(inputs, (0, 0, 0, self._widest - length))
        channels_first = inputs.transpose(1, 2)
        pooled = []
        for size, convolution in zip(self._ngram_filter_sizes, self.convolutions, strict=True):
            activations = self._activation(convolution(channels_first))  # (B, F, positions)
            if self.window_pooling == "allennlp_legacy":
                pooled.append(activations.max(dim=2).values)
                continue
            positions = torch.arange(activations.size(-1), device=inputs.device)
            last_start = lengths - size
            if self.window_pooling == "keel":
                last_start = last_start.clamp(min=0)
            valid = positions.unsqueeze(0) <= last_start.unsqueeze(1)  # (B, positions)
            lowest = min_value_of_dtype(activations.dtype)
            best = activations.masked_fill(~valid.unsqueeze(1), lowest).max(dim=2).values
            if self.window_pooling == "allennlp":
                # AllenNLP gives 0 where no window was valid
                best = best.masked_fill(~valid.any(dim=1, keepdim=True), 0.0)
            pooled.append(best)
        output = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)
        if self.projection_layer is not None:
            output = self.projection_layer(output)
        return output


def _conv_layers_to_module_list(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # As many conv_layer_N as the archive has n-gram sizes: rename each, whatever N goes up to.
    renamed = {}
    for key, tensor in state.items():
        head, _, rest = key.partition(".")
        index = head.removeprefix("conv_layer_")
        if head.startswith("conv_layer_") and index.isdigit():
            key = f"convolutions.{index}.{rest}"
        renamed[key] = tensor
    return renamed


register_migration(
    Seq2VecEncoder,
    "cnn",
    Migration(
        from_version=1,
        description="conv_layer_N.* weights moved into the ModuleList convolutions.N.*",
        convert_state=_conv_layers_to_module_list,
    ),
)

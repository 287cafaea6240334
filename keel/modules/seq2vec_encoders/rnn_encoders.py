"""``lstm`` and ``gru``: the final hidden state of a recurrent net that never sees the padding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar

import torch

from keel.common.constraints import Positive, Probability
from keel.modules.recurrence import run_recurrent
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder


class _RecurrentSeq2VecEncoder(Seq2VecEncoder):
    """The last layer's final hidden state, forward and backward directions concatenated.

    Sequences run for their mask lengths only (``keel.modules.recurrence``), so a padded
    sequence encodes exactly as it would alone; an all-padding sequence encodes as zeros.
    """

    # LSTM, GRU or RNN: their constructors take the keys below (RNNBase's also takes a mode).
    _rnn_class: ClassVar[Callable[..., torch.nn.RNNBase]]

    def __init__(
        self,
        input_size: Annotated[int, Positive],
        hidden_size: Annotated[int, Positive],
        num_layers: Annotated[int, Positive] = 1,
        bias: bool = True,
        dropout: Annotated[float, Probability] = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self._module = self._rnn_class(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            dropout=dropout,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self._input_size = input_size
        self._directions = 2 if bidirectional else 1
        self._output_dim = hidden_size * self._directions

    def get_input_dim(self) -> int:
        return self._input_size

    def get_output_dim(self) -> int:
        return self._output_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch_size, length, _ = inputs.shape
        if length == 0:
            return inputs.new_zeros(batch_size, self._output_dim)
        if mask is None:
            lengths = torch.full((batch_size,), length, dtype=torch.long)
        else:
            lengths = mask.long().sum(dim=1)
        # Rows of length 0 run on one padding step and are zeroed below.
        _, final = run_recurrent(self._module, inputs, lengths.clamp(min=1))
        if mask is not None:
            final = final * (lengths > 0).to(final.dtype).unsqueeze(1).to(final.device)
        return final


@Seq2VecEncoder.register("lstm")
class LstmSeq2VecEncoder(_RecurrentSeq2VecEncoder):
    """An LSTM's final hidden state (both directions concatenated when bidirectional)."""

    _rnn_class = torch.nn.LSTM


@Seq2VecEncoder.register("gru")
class GruSeq2VecEncoder(_RecurrentSeq2VecEncoder):
    """A GRU's final hidden state (both directions concatenated when bidirectional)."""

    _rnn_class = torch.nn.GRU

"""``lstm`` and ``gru``: torch's recurrent layers over the real steps of padded sequences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar

import torch

from keel.common import errors
from keel.common.constraints import Positive, Probability
from keel.common.errors import ModelError
from keel.modules.recurrence import run_recurrent
from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder


class PytorchSeq2SeqWrapper(Seq2SeqEncoder):
    """Runs a batch-first torch RNN so that padding never enters the recurrence (a backward
    direction starts at each sequence's last real token, not at the padding); see
    ``keel.modules.recurrence``."""

    def __init__(self, module: torch.nn.RNNBase) -> None:
        super().__init__()
        if not module.batch_first:
            raise ModelError("the wrapped RNN must be batch_first", code=errors.SHAPE_MISMATCH)
        self._module = module

    def get_input_dim(self) -> int:
        return self._module.input_size

    def get_output_dim(self) -> int:
        return self._module.hidden_size * (2 if self._module.bidirectional else 1)

    def is_bidirectional(self) -> bool:
        return self._module.bidirectional

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if inputs.dim() != 3 or inputs.shape[-1] != self.get_input_dim():
            raise ModelError(
                f"{type(self).__name__} expects inputs (batch, time, {self.get_input_dim()}); "
                f"got shape {tuple(inputs.shape)}",
                code=errors.SHAPE_MISMATCH,
            )
        batch, length, _ = inputs.shape
        if mask is None:
            output, _ = self._module(inputs)
            return output
        lengths = mask.sum(dim=1)
        # Every row runs at least one step; all-padding rows are zeroed after the RNN.
        output, _ = run_recurrent(self._module, inputs, lengths.clamp(min=1))
        empty = lengths == 0
        if bool(empty.any()):
            output = output.masked_fill(empty.view(batch, 1, 1), 0.0)
        return output


class _RnnSeq2SeqEncoder(PytorchSeq2SeqWrapper):
    """A batch-first torch RNN built from AllenNLP's keys; subclasses name the RNN class."""

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
        module = self._rnn_class(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        super().__init__(module)


@Seq2SeqEncoder.register("lstm")
class LstmSeq2SeqEncoder(_RnnSeq2SeqEncoder):
    """A (bi)LSTM; ``dropout`` applies between stacked layers."""

    _rnn_class = torch.nn.LSTM


@Seq2SeqEncoder.register("gru")
class GruSeq2SeqEncoder(_RnnSeq2SeqEncoder):
    """A (bi)GRU; ``dropout`` applies between stacked layers."""

    _rnn_class = torch.nn.GRU

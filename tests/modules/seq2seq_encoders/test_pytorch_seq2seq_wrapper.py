"""lstm / gru encoders: padding never leaks into the recurrence."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ModelError
from keel.modules.seq2seq_encoders import GruSeq2SeqEncoder, LstmSeq2SeqEncoder, Seq2SeqEncoder

TOL = 1e-6


@pytest.mark.parametrize("cls", [LstmSeq2SeqEncoder, GruSeq2SeqEncoder])
def test_pytorch_seq2seq_wrapper_padded_batch_matches_unpadded_runs(cls):
    torch.manual_seed(0)
    encoder = cls(input_size=4, hidden_size=3, num_layers=2, bidirectional=True).eval()
    inputs = torch.randn(3, 5, 4)
    lengths = [5, 2, 3]
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    inputs_with_noise = inputs.masked_fill(~mask.unsqueeze(-1), 7.0)
    output = encoder(inputs_with_noise, mask)
    assert output.shape == (3, 5, 6)
    for b, length in enumerate(lengths):
        alone = encoder(inputs[b : b + 1, :length], torch.ones(1, length, dtype=torch.bool))
        torch.testing.assert_close(output[b, :length], alone[0], atol=TOL, rtol=0)
        assert torch.all(output[b, length:] == 0)


def test_pytorch_seq2seq_wrapper_all_padding_row_is_zero():
    encoder = LstmSeq2SeqEncoder(input_size=2, hidden_size=2)
    mask = torch.tensor([[True, True], [False, False]])
    output = encoder(torch.randn(2, 2, 2), mask)
    assert torch.all(output[1] == 0) and output[0].abs().sum() > 0


def test_pytorch_seq2seq_wrapper_dims_and_registration():
    assert Seq2SeqEncoder.by_name("lstm") is LstmSeq2SeqEncoder
    assert Seq2SeqEncoder.by_name("gru") is GruSeq2SeqEncoder
    encoder = GruSeq2SeqEncoder(input_size=7, hidden_size=5, bidirectional=True)
    assert (encoder.get_input_dim(), encoder.get_output_dim()) == (7, 10)
    assert encoder.is_bidirectional()
    assert LstmSeq2SeqEncoder(input_size=7, hidden_size=5).get_output_dim() == 5


def test_pytorch_seq2seq_wrapper_rejects_wrong_input_size():
    encoder = LstmSeq2SeqEncoder(input_size=3, hidden_size=2)
    with pytest.raises(ModelError, match=r"\(batch, time, 3\)"):
        encoder(torch.randn(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))

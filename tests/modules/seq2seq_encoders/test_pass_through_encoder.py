"""pass_through: identity with padding zeroed."""

from __future__ import annotations

import torch

from keel.modules.seq2seq_encoders import PassThroughEncoder, Seq2SeqEncoder


def test_pass_through_encoder_zeroes_padding_only():
    encoder = Seq2SeqEncoder.by_name("pass_through")(input_dim=3)
    assert isinstance(encoder, PassThroughEncoder)
    assert encoder.get_input_dim() == encoder.get_output_dim() == 3
    inputs = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    output = encoder(inputs, mask)
    assert torch.equal(output[0], inputs[0])
    assert torch.equal(output[1, 0], inputs[1, 0]) and torch.all(output[1, 1:] == 0)
    assert torch.equal(encoder(inputs), inputs)

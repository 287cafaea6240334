"""lstm / gru seq2vec: the final state of each sequence, as if run alone."""

from __future__ import annotations

import pytest
import torch

from keel.modules.seq2vec_encoders import GruSeq2VecEncoder, LstmSeq2VecEncoder, Seq2VecEncoder

TOL = 1e-6


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_encoders_masked_rows_equal_unpadded_runs(name, bidirectional):
    torch.manual_seed(0)
    encoder = Seq2VecEncoder.by_name(name)(
        input_size=3, hidden_size=4, num_layers=2, bidirectional=bidirectional
    )
    encoder.eval()
    assert encoder.get_output_dim() == (8 if bidirectional else 4)
    lengths = [5, 2, 4]
    inputs = torch.randn(3, 5, 3)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    noisy = inputs.masked_fill(~mask.unsqueeze(-1), 5.0)
    batched = encoder(noisy, mask)
    assert batched.shape == (3, encoder.get_output_dim())
    for row, length in enumerate(lengths):
        alone = encoder(inputs[row : row + 1, :length])
        assert torch.allclose(batched[row], alone[0], atol=TOL), f"row {row}"


def test_rnn_encoders_final_state_matches_torch_directly():
    torch.manual_seed(0)
    encoder = LstmSeq2VecEncoder(input_size=3, hidden_size=2, bidirectional=True)
    inputs = torch.randn(1, 4, 3)
    outputs, _ = encoder._module(inputs)
    expected = torch.cat([outputs[0, -1, :2], outputs[0, 0, 2:]])  # forward last, backward first
    assert torch.allclose(encoder(inputs)[0], expected, atol=TOL)


@pytest.mark.parametrize("cls", [LstmSeq2VecEncoder, GruSeq2VecEncoder])
def test_rnn_encoders_all_padding_rows_and_empty_batches(cls):
    encoder = cls(input_size=3, hidden_size=2)
    mask = torch.tensor([[True, True], [False, False]])
    output = encoder(torch.randn(2, 2, 3), mask)
    assert torch.equal(output[1], torch.zeros(2)) and torch.any(output[0] != 0)
    assert torch.equal(encoder(torch.randn(2, 0, 3), mask[:, :0]), torch.zeros(2, 2))
    output.sum().backward()  # gradients flow through the packed run


def test_rnn_encoders_build_from_config():
    from keel.common.from_params import build

    encoder = build(
        Seq2VecEncoder, {"type": "gru", "input_size": 3, "hidden_size": 2, "num_layers": 2}
    )
    assert isinstance(encoder, GruSeq2VecEncoder) and encoder.get_output_dim() == 2

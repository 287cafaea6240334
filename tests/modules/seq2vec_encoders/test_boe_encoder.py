"""boe: masked sum and mean, hand-computed."""

from __future__ import annotations

import torch

from keel.modules.seq2vec_encoders import BagOfEmbeddingsEncoder, Seq2VecEncoder

INPUTS = torch.tensor(
    [
        [[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
        [[5.0, -1.0], [50.0, 50.0], [50.0, 50.0]],
        [[7.0, 7.0], [7.0, 7.0], [7.0, 7.0]],
    ]
)
MASK = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])


def test_boe_encoder_sums_unmasked_tokens():
    encoder = Seq2VecEncoder.by_name("boe")(embedding_dim=2)
    assert isinstance(encoder, BagOfEmbeddingsEncoder)
    assert encoder.get_input_dim() == encoder.get_output_dim() == 2
    expected = torch.tensor([[4.0, 6.0], [5.0, -1.0], [0.0, 0.0]])
    assert torch.equal(encoder(INPUTS, MASK), expected)


def test_boe_encoder_averages_unmasked_tokens_and_empty_rows_are_zero():
    encoder = BagOfEmbeddingsEncoder(embedding_dim=2, averaged=True)
    expected = torch.tensor([[2.0, 3.0], [5.0, -1.0], [0.0, 0.0]])
    assert torch.equal(encoder(INPUTS, MASK), expected)


def test_boe_encoder_without_mask_uses_every_position():
    assert torch.equal(BagOfEmbeddingsEncoder(2)(INPUTS[:1]), torch.tensor([[104.0, 106.0]]))
    assert torch.allclose(
        BagOfEmbeddingsEncoder(2, averaged=True)(INPUTS[:1]), torch.tensor([[104 / 3, 106 / 3]])
    )


def test_boe_encoder_builds_from_config():
    from keel.common.from_params import build

    encoder = build(Seq2VecEncoder, {"type": "boe", "embedding_dim": 2, "averaged": True})
    assert torch.equal(encoder(INPUTS, MASK)[0], torch.tensor([2.0, 3.0]))

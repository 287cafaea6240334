"""cnn: shapes, masked max-pooling, short and empty sequences."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.modules.seq2vec_encoders import CnnEncoder, Seq2VecEncoder

TOL = 1e-6


def test_cnn_encoder_output_dims():
    encoder = Seq2VecEncoder.by_name("cnn")(embedding_dim=4, num_filters=3)
    assert isinstance(encoder, CnnEncoder)
    assert encoder.get_output_dim() == 12  # 3 filters x 4 widths
    assert encoder(torch.randn(2, 7, 4), torch.ones(2, 7, dtype=torch.bool)).shape == (2, 12)
    projected = CnnEncoder(4, 3, ngram_filter_sizes=(2,), output_dim=5)
    assert projected.get_output_dim() == 5
    assert projected(torch.randn(2, 3, 4)).shape == (2, 5)


def test_cnn_encoder_max_pool_ignores_padding():
    # One width-1 filter that copies the single input feature: the output is the max real value.
    encoder = CnnEncoder(1, 1, ngram_filter_sizes=(1,), conv_layer_activation="linear")
    with torch.no_grad():
        encoder.convolutions[0].weight.fill_(1.0)
        encoder.convolutions[0].bias.zero_()
    inputs = torch.tensor([[[-3.0], [-2.0], [50.0]], [[-1.0], [-5.0], [-7.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.equal(encoder(inputs, mask), torch.tensor([[-2.0], [-1.0]]))


def test_cnn_encoder_padded_batch_matches_each_sequence_alone():
    torch.manual_seed(0)
    encoder = CnnEncoder(3, 2, ngram_filter_sizes=(2, 3), conv_layer_activation="tanh")
    lengths = [6, 3, 1, 0]
    inputs = torch.randn(4, 6, 3)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    noisy = inputs.masked_fill(~mask.unsqueeze(-1), 9.0)  # padding content must not matter
    batched = encoder(noisy, mask)
    for row, length in enumerate(lengths):
        alone = encoder(inputs[row : row + 1, :length], mask[row : row + 1, :length])
        assert torch.allclose(batched[row], alone[0], atol=TOL), f"row {row}"
    assert torch.isfinite(batched).all()


def test_cnn_encoder_sequence_shorter_than_widest_filter():
    encoder = CnnEncoder(2, 2)  # widths up to 5
    output = encoder(torch.randn(2, 1, 2), torch.tensor([[True], [False]]))
    assert output.shape == (2, 8) and torch.isfinite(output).all()


def test_cnn_encoder_unknown_activation():
    with pytest.raises(ConfigurationError, match="conv_layer_activation"):
        CnnEncoder(2, 2, conv_layer_activation="rel")


def test_cnn_encoder_builds_from_config_with_defaults_explicit():
    from keel.common.from_params import build, resolve

    config = {"type": "cnn", "embedding_dim": 4, "num_filters": 2, "ngram_filter_sizes": [1, 3]}
    encoder = build(Seq2VecEncoder, dict(config))
    assert encoder.get_output_dim() == 4
    assert encoder(torch.randn(2, 5, 4)).shape == (2, 4)
    resolved = resolve(Seq2VecEncoder, {"type": "cnn", "embedding_dim": 4, "num_filters": 2})
    assert resolved["ngram_filter_sizes"] == [2, 3, 4, 5]
    assert resolved["conv_layer_activation"] == "relu" and resolved["output_dim"] is None

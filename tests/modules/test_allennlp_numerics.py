"""Each module an AllenNLP import uses computes what AllenNLP's module of the same name computed.

The references below are written in plain torch from AllenNLP's documented behaviour (its
docstrings and the algorithm of its 2.10 source, summarised beside each one; AllenNLP itself
cannot be a test dependency: it pins torch < 1.13). Inputs are padded batches with rows of
different lengths, rows shorter than a filter and all-padding rows: where the two could differ.
"""

from __future__ import annotations

import pytest
import torch

from keel.common.from_params import build
from keel.data.vocabulary import Vocabulary
from keel.modules.conditional_random_field import ConditionalRandomField, allowed_transitions
from keel.modules.feedforward import FeedForward
from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder
from keel.modules.token_embedders.token_embedder import TokenEmbedder

TOL = 1e-6
LENGTHS = [7, 4, 2, 1, 0]


def _batch(dim: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(LENGTHS), max(LENGTHS), dim, generator=generator)
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    return inputs, mask


def _allennlp_min_value(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).min


def allennlp_cnn_1_2_1(encoder, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """AllenNLP >= 1.2.1 CnnEncoder.forward: zero the padding; per width k, activation of the
    convolution; add min_value to every window at index >= (number of real tokens) - k + 1;
    max over windows; then every pooled value equal to min_value becomes 0."""
    tokens = (tokens * mask.unsqueeze(-1)).transpose(1, 2)
    last_unmasked = mask.sum(dim=1).unsqueeze(-1)
    outputs = []
    for convolution in encoder.convolutions:
        width = convolution.kernel_size[0]
        activations = encoder._activation(convolution(tokens))
        pool_length = tokens.shape[2] - width + 1
        indices = torch.arange(pool_length).unsqueeze(0).expand(tokens.shape[0], pool_length)
        masked = indices.ge(last_unmasked - width + 1).unsqueeze(1).expand_as(activations)
        activations = activations + masked * _allennlp_min_value(activations.dtype)
        outputs.append(activations.max(dim=2)[0])
    pooled = torch.cat(outputs, dim=1)
    pooled[pooled == _allennlp_min_value(pooled.dtype)] = 0.0
    return pooled


def allennlp_cnn_before_1_2_1(encoder, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """AllenNLP <= 1.2.0 CnnEncoder.forward: zero the padding, then the max of the activations
    over every window of the padded batch."""
    tokens = (tokens * mask.unsqueeze(-1)).transpose(1, 2)
    return torch.cat(
        [
            encoder._activation(convolution(tokens)).max(dim=2)[0]
            for convolution in encoder.convolutions
        ],
        dim=1,
    )


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(
    ("pooling", "reference"),
    [("allennlp", allennlp_cnn_1_2_1), ("allennlp_legacy", allennlp_cnn_before_1_2_1)],
)
def test_cnn_encoder_pools_windows_as_the_allennlp_release_did(pooling, reference, activation):
    torch.manual_seed(1)
    encoder = build(
        Seq2VecEncoder,
        {
            "type": "cnn",
            "embedding_dim": 5,
            "num_filters": 3,
            "ngram_filter_sizes": [2, 3],
            "conv_layer_activation": activation,
            "window_pooling": pooling,
        },
    )
    inputs, mask = _batch()
    expected = reference(encoder, inputs, mask)
    got = encoder(inputs, mask)
    assert torch.allclose(got, expected, atol=TOL)
    if pooling == "allennlp":
        # a row shorter than a width: that width's filters give exactly 0
        assert torch.equal(got[2, 3:], torch.zeros(3))  # 2 tokens, width 3
        assert not torch.equal(got[2, :3], torch.zeros(3))  # 2 tokens, width 2
        assert torch.equal(got[3], torch.zeros(6)) and torch.equal(got[4], torch.zeros(6))
    else:
        # the padded batch's windows count: the same row padded less pools differently
        alone = encoder(inputs[2:3, :2], mask[2:3, :2])
        assert not torch.allclose(alone, got[2:3], atol=TOL)


def test_cnn_encoder_keel_pooling_is_the_default_and_differs_only_on_short_rows():
    torch.manual_seed(1)
    keel = build(Seq2VecEncoder, {"type": "cnn", "embedding_dim": 5, "num_filters": 3})
    allennlp = build(
        Seq2VecEncoder,
        {"type": "cnn", "embedding_dim": 5, "num_filters": 3, "window_pooling": "allennlp"},
    )
    allennlp.load_state_dict(keel.state_dict())
    assert keel.window_pooling == "keel"
    inputs, mask = _batch()
    same = torch.tensor(LENGTHS) >= 5  # rows at least as long as the widest filter
    assert torch.allclose(keel(inputs, mask)[same], allennlp(inputs, mask)[same], atol=TOL)
    assert not torch.allclose(keel(inputs, mask)[~same], allennlp(inputs, mask)[~same])


def test_character_encoding_with_allennlp_cnn_zeroes_words_shorter_than_the_filter():
    # AllenNLP's TokenCharactersEncoder: TimeDistributed(Embedding), TimeDistributed(CnnEncoder)
    # with the character mask; under 1.2.1+ pooling a 1-letter word has no width-3 window.
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(list("abcdef"), "token_characters")
    embedder = build(
        TokenEmbedder,
        {
            "type": "character_encoding",
            "embedding": {"embedding_dim": 4, "padding_index": None},
            "encoder": {
                "type": "cnn",
                "embedding_dim": 4,
                "num_filters": 2,
                "ngram_filter_sizes": [3],
                "window_pooling": "allennlp",
            },
        },
        extras={"vocab": vocab},
    )
    characters = torch.tensor([[[2, 0, 0, 0], [2, 3, 4, 5], [3, 4, 0, 0], [0, 0, 0, 0]]])
    words = embedder(characters)[0]
    table = embedder._embedding.weight
    reference = allennlp_cnn_1_2_1(embedder._encoder, table[characters[0]], characters[0] != 0)
    assert torch.allclose(words, reference, atol=TOL)
    assert torch.equal(words[0], torch.zeros(2)) and torch.equal(words[2], torch.zeros(2))


@pytest.mark.parametrize("averaged", [False, True])
def test_bag_of_embeddings_as_allennlp(averaged):
    # AllenNLP BagOfEmbeddingsEncoder: sum of the masked tokens; averaged divides by
    # max(length, 1), so an all-padding row is 0 either way.
    encoder = build(
        Seq2VecEncoder, {"type": "bag_of_embeddings", "embedding_dim": 5, "averaged": averaged}
    )
    inputs, mask = _batch()
    summed = (inputs * mask.unsqueeze(-1)).sum(dim=1)
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1)
    expected = summed / lengths if averaged else summed
    assert torch.allclose(encoder(inputs, mask), expected, atol=TOL)
    assert torch.equal(encoder(inputs, mask)[4], torch.zeros(5))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_seq2vec_is_the_last_layers_final_state_as_allennlp(kind, bidirectional):
    # AllenNLP PytorchSeq2VecWrapper: the final hidden state of the last layer, both
    # directions concatenated (forward, backward); rows without tokens give zeros.
    torch.manual_seed(2)
    encoder = build(
        Seq2VecEncoder,
        {
            "type": kind,
            "input_size": 5,
            "hidden_size": 3,
            "num_layers": 2,
            "bidirectional": bidirectional,
        },
    )
    rnn = encoder._module
    inputs, mask = _batch()
    got = encoder(inputs, mask)
    for row, length in enumerate(LENGTHS):
        if length == 0:
            assert torch.equal(got[row], torch.zeros(encoder.get_output_dim()))
            continue
        _, state = rnn(inputs[row : row + 1, :length])
        hidden = state[0] if kind == "lstm" else state
        last = hidden[-2:] if bidirectional else hidden[-1:]
        assert torch.allclose(got[row], torch.cat(list(last), dim=-1)[0], atol=TOL)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_rnn_seq2seq_outputs_each_row_unpadded_and_zeros_at_padding_as_allennlp(kind):
    # AllenNLP PytorchSeq2SeqWrapper: packed sequences; padded positions are 0.
    torch.manual_seed(3)
    encoder = build(
        Seq2SeqEncoder,
        {"type": kind, "input_size": 5, "hidden_size": 3, "bidirectional": True},
    )
    inputs, mask = _batch()
    got = encoder(inputs, mask)
    for row, length in enumerate(LENGTHS):
        if length:
            alone, _ = encoder._module(inputs[row : row + 1, :length])
            assert torch.allclose(got[row, :length], alone[0], atol=TOL)
        assert torch.equal(got[row, length:], torch.zeros_like(got[row, length:]))


def test_embedding_without_padding_index_trains_row_zero_as_allennlp():
    # AllenNLP Embedding: xavier-uniform weights, padding_index None by default, so row 0 is
    # an ordinary row: looked up as stored, and it receives gradient.
    embedding = build(
        TokenEmbedder,
        {
            "type": "embedding",
            "embedding_dim": 4,
            "num_embeddings": 6,
            "padding_index": None,
            "projection_dim": 3,
        },
    )
    assert embedding.weight[0].abs().sum() > 0  # not zeroed at initialisation
    ids = torch.tensor([[0, 3, 5]])
    expected = embedding._projection(torch.nn.functional.embedding(ids, embedding.weight))
    out = embedding(ids)
    assert torch.allclose(out, expected, atol=TOL)
    out.sum().backward()
    assert embedding.weight.grad[0].abs().sum() > 0
    keel_default = build(
        TokenEmbedder, {"type": "embedding", "embedding_dim": 4, "num_embeddings": 6}
    )
    assert torch.equal(keel_default.weight[0], torch.zeros(4))


def test_feedforward_is_linear_activation_dropout_per_layer_as_allennlp():
    torch.manual_seed(4)
    feedforward = FeedForward(5, 2, [4, 3], ["relu", "tanh"], dropout=0.5).eval()
    inputs, _ = _batch()
    linear = [layer for layer in feedforward._layers if isinstance(layer, torch.nn.Linear)]
    expected = torch.tanh(linear[1](torch.relu(linear[0](inputs))))
    assert torch.allclose(feedforward(inputs), expected, atol=TOL)


def test_crf_viterbi_is_the_best_allowed_path_as_allennlp():
    # AllenNLP ConditionalRandomField.viterbi_tags: the highest-scoring tag sequence whose
    # transitions (START and END included) are allowed by the BIOUL constraints.
    labels = {0: "O", 1: "B-X", 2: "I-X", 3: "L-X", 4: "U-X"}
    constraints = allowed_transitions("BIOUL", labels)
    torch.manual_seed(5)
    crf = ConditionalRandomField(5, constraints, include_start_end_transitions=True)
    with torch.no_grad():
        crf.start_transitions.normal_()
        crf.end_transitions.normal_()
    logits = torch.randn(1, 4, 5)
    allowed = set(constraints)
    weights = {name: value.detach() for name, value in crf.named_parameters()}
    start, end = 5, 6
    best, best_score = None, float("-inf")
    for path in torch.cartesian_prod(*[torch.arange(5)] * 4).tolist():
        steps = [(start, path[0])] + list(zip(path, path[1:], strict=False)) + [(path[-1], end)]
        if not all(step in allowed for step in steps):
            continue
        score = weights["start_transitions"][path[0]] + weights["end_transitions"][path[-1]]
        score = score + sum(logits[0, i, tag] for i, tag in enumerate(path))
        transitions = weights["transitions"]
        score = score + sum(transitions[a, b] for a, b in zip(path, path[1:], strict=False))
        if score > best_score:
            best, best_score = path, float(score)
    [(tags, score)] = crf.viterbi_tags(logits)
    assert tags == best and score == pytest.approx(best_score, abs=1e-5)

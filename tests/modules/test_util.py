"""Masking and loss helpers: hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from keel.common.errors import ModelError
from keel.modules.util import (
    get_lengths_from_mask,
    get_text_field_mask,
    masked_max,
    masked_mean,
    masked_softmax,
    move_to_device,
    sequence_cross_entropy_with_logits,
)

TOL = 1e-6


def test_util_get_text_field_mask_uses_indexer_mask():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    ids = torch.tensor([[5, 6, 0], [7, 0, 0]])
    assert torch.equal(get_text_field_mask({"tokens": {"tokens": ids, "mask": mask}}), mask)


def test_util_get_text_field_mask_falls_back_to_nonzero_ids_and_characters():
    ids = torch.tensor([[5, 6, 0], [7, 0, 0]])
    expected = torch.tensor([[True, True, False], [True, False, False]])
    assert torch.equal(get_text_field_mask({"tokens": {"tokens": ids}}), expected)
    characters = torch.zeros(2, 3, 4, dtype=torch.long)
    characters[0, :2, 0] = 3
    characters[1, 0, 1] = 9
    assert torch.equal(get_text_field_mask({"chars": {"token_characters": characters}}), expected)


def test_util_get_text_field_mask_rejects_empty_field():
    with pytest.raises(ModelError):
        get_text_field_mask({})


def test_util_masked_mean_and_max_ignore_padding_and_empty_rows():
    vector = torch.tensor([[[1.0, -4.0], [3.0, 2.0], [100.0, 100.0]], [[9.0, 9.0]] * 3])
    mask = torch.tensor([[True, True, False], [False, False, False]]).unsqueeze(-1)
    assert torch.allclose(masked_mean(vector, mask, dim=1), torch.tensor([[2.0, -1.0], [0, 0]]))
    assert torch.allclose(masked_max(vector, mask, dim=1), torch.tensor([[3.0, 2.0], [0, 0]]))
    assert torch.equal(get_lengths_from_mask(mask.squeeze(-1)), torch.tensor([2, 0]))


def test_util_masked_softmax_gives_padding_zero_probability():
    scores = torch.tensor([[1.0, 1.0, 50.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    probs = masked_softmax(scores, mask)
    assert torch.allclose(probs, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]), atol=TOL)


def test_util_sequence_cross_entropy_averages_over_real_tokens():
    # Logits (0, 0) give loss ln 2 per token; (ln 3, 0) with target 0 gives ln(4/3).
    logits = torch.tensor(
        [[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]], [[0.0, 0.0], [9.0, 9.0], [1.0, 2.0]]]
    )
    targets = torch.tensor([[1, 0, 7], [0, 1, 1]])  # 7: garbage in a padded slot
    mask = torch.tensor([[True, True, False], [True, False, False]])
    per_token = [math.log(2.0), math.log(4.0 / 3.0), math.log(2.0)]
    token_average = sequence_cross_entropy_with_logits(logits, targets, mask)
    assert token_average.item() == pytest.approx(sum(per_token) / 3, abs=TOL)
    batch_average = sequence_cross_entropy_with_logits(logits, targets, mask, average="batch")
    expected_batch = ((per_token[0] + per_token[1]) / 2 + per_token[2]) / 2
    assert batch_average.item() == pytest.approx(expected_batch, abs=TOL)
    per_sequence = sequence_cross_entropy_with_logits(logits, targets, mask, average=None)
    assert per_sequence.shape == (2,)


def test_util_sequence_cross_entropy_all_padding_is_zero_and_shapes_checked():
    logits = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    loss = sequence_cross_entropy_with_logits(logits, torch.zeros(2, 3, dtype=torch.long), mask)
    assert loss.item() == 0.0
    loss.backward()
    with pytest.raises(ModelError, match="logits"):
        sequence_cross_entropy_with_logits(logits, torch.zeros(2, 4), mask)


def test_util_move_to_device_walks_nested_structures():
    batch = {"tokens": {"tokens": torch.ones(2)}, "meta": [{"a": 1}], "pair": (torch.zeros(1), 3)}
    moved = move_to_device(batch, "cpu")
    assert torch.equal(moved["tokens"]["tokens"], torch.ones(2))
    assert moved["meta"] == [{"a": 1}] and moved["pair"][1] == 3

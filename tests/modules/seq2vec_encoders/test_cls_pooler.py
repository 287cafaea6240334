"""Tests for keel/modules/seq2vec_encoders/cls_pooler.py."""

from __future__ import annotations

import torch

from keel.modules.seq2vec_encoders.cls_pooler import ClsPooler
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

# (B=2, T=3, D=2); the second sequence has two real tokens.
INPUTS = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[7.0, 8.0], [9.0, 10.0], [0.0, 0.0]]])
MASK = torch.tensor([[True, True, True], [True, True, False]])


def test_cls_pooler_is_registered() -> None:
    assert Seq2VecEncoder.by_name("cls_pooler") is ClsPooler


def test_cls_pooler_takes_the_first_token() -> None:
    pooler = ClsPooler(embedding_dim=2)
    assert pooler.get_input_dim() == pooler.get_output_dim() == 2
    assert pooler(INPUTS, MASK).tolist() == [[1.0, 2.0], [7.0, 8.0]]
    assert list(pooler.parameters()) == []


def test_cls_pooler_last_token_respects_the_mask() -> None:
    pooler = ClsPooler(embedding_dim=2, cls_is_last_token=True)
    assert pooler(INPUTS, MASK).tolist() == [[5.0, 6.0], [9.0, 10.0]]
    assert pooler(INPUTS).tolist() == [[5.0, 6.0], [0.0, 0.0]]


def test_cls_pooler_keeps_the_autocast_dtype() -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inputs = torch.nn.functional.linear(INPUTS, torch.eye(2))
        pooled = ClsPooler(embedding_dim=2)(inputs, MASK)
    assert pooled.dtype == torch.bfloat16
    assert pooled.float().tolist() == [[1.0, 2.0], [7.0, 8.0]]

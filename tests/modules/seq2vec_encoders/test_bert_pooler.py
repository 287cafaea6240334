"""Tests for keel/modules/seq2vec_encoders/bert_pooler.py, against transformers' own pooler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from keel.common import errors
from keel.common.errors import ConfigurationError
from keel.modules.seq2vec_encoders.bert_pooler import BertPooler
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

HIDDEN = 16


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory):
    """A tiny BERT saved by transformers (model.safetensors holds pooler.dense.*)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    model = transformers.BertModel(config).eval()
    directory = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(str(directory))
    return model, directory


def test_bert_pooler_is_registered() -> None:
    assert Seq2VecEncoder.by_name("bert_pooler") is BertPooler


def test_bert_pooler_matches_the_pretrained_pooler(tiny_bert) -> None:
    model, directory = tiny_bert
    pooler = BertPooler(str(directory)).eval()
    assert pooler.get_input_dim() == pooler.get_output_dim() == HIDDEN
    hidden = torch.randn(3, 5, HIDDEN, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 5, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(pooler(hidden, mask), model.pooler(hidden), atol=1e-6, rtol=0)


def test_bert_pooler_requires_grad_and_dropout(tiny_bert) -> None:
    _, directory = tiny_bert
    frozen = BertPooler(str(directory), requires_grad=False, dropout=0.5)
    assert not any(parameter.requires_grad for parameter in frozen.parameters())
    hidden = torch.randn(64, 2, HIDDEN, generator=torch.Generator().manual_seed(2))
    undropped = torch.tanh(frozen.pooler(hidden[:, 0]))
    torch.testing.assert_close(frozen.eval()(hidden), undropped, atol=0, rtol=0)
    dropped = frozen.train()(hidden)
    kept = dropped != 0
    assert 0.3 < kept.float().mean().item() < 0.7  # about half the units survive dropout 0.5
    torch.testing.assert_close(dropped[kept], 2 * undropped[kept], atol=1e-6, rtol=0)


def test_bert_pooler_without_weights_takes_them_from_the_state_dict(tiny_bert, tmp_path) -> None:
    """The archive case: only config.json is there; the archive's state dict fills the pooler."""
    _, directory = tiny_bert
    shutil.copy(directory / "config.json", tmp_path / "config.json")
    pretrained = BertPooler(str(directory))
    rebuilt = BertPooler(str(tmp_path))
    assert not torch.equal(rebuilt.pooler.weight, pretrained.pooler.weight)
    rebuilt.load_state_dict(pretrained.state_dict(), strict=True)
    hidden = torch.randn(2, 3, HIDDEN)
    torch.testing.assert_close(rebuilt(hidden), pretrained(hidden), atol=0, rtol=0)


def test_bert_pooler_refuses_weights_without_a_pooler(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": HIDDEN}), encoding="utf-8")
    save_file(
        {"embeddings.word_embeddings.weight": torch.zeros(4, HIDDEN)}, tmp_path / "m.safetensors"
    )
    with pytest.raises(ConfigurationError, match="no BERT pooler") as caught:
        BertPooler(str(tmp_path))
    assert caught.value.code == errors.BAD_VALUE


def test_bert_pooler_refuses_hub_names() -> None:
    with pytest.raises(ConfigurationError, match="never downloads"):
        BertPooler("bert-base-uncased")


def test_bert_pooler_under_bfloat16_autocast(tiny_bert) -> None:
    _, directory = tiny_bert
    pooler = BertPooler(str(directory)).eval()
    hidden = torch.randn(2, 3, HIDDEN)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = pooler(hidden)
    assert pooled.dtype == torch.bfloat16
    torch.testing.assert_close(pooled.float(), pooler(hidden), atol=0.02, rtol=0.02)

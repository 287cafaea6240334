"""``bert_pooler``: BERT's own pooler (dense + tanh over [CLS]), with its pretrained weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from keel.common import errors
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.data.tokenizers.pretrained_transformer_tokenizer import local_model_dir
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

_WEIGHT_SUFFIX = "pooler.dense.weight"
_BIAS_SUFFIX = "pooler.dense.bias"


@Seq2VecEncoder.register("bert_pooler")
class BertPooler(Seq2VecEncoder):
    """``dropout(tanh(W · first token + b))``, with W and b read from ``model_name``'s
    safetensors weights (the pooler BERT was pretrained with, for next-sentence prediction).

    Reads only ``config.json`` and the two pooler tensors, so it needs neither ``transformers``
    nor a second copy of the backbone. A directory without weights (as stored in a model
    archive) gives a freshly initialised pooler; the archive's state dict then fills it.
    """

    def __init__(self, model_name: str, requires_grad: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        model_dir = local_model_dir(model_name)
        hidden_size = _hidden_size(model_dir)
        self.pooler = torch.nn.Linear(hidden_size, hidden_size)
        weights = sorted(model_dir.glob("*.safetensors"))
        if weights:
            weight, bias = _pooler_tensors(weights, model_dir)
            with torch.no_grad():
                self.pooler.weight.copy_(weight)
                self.pooler.bias.copy_(bias)
        for parameter in self.pooler.parameters():
            parameter.requires_grad = requires_grad
        self._dropout = torch.nn.Dropout(dropout)
        self._embedding_dim = hidden_size

    def get_input_dim(self) -> int:
        return self._embedding_dim

    def get_output_dim(self) -> int:
        return self._embedding_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._dropout(torch.tanh(self.pooler(inputs[:, 0])))


def _hidden_size(model_dir: Path) -> int:
    path = model_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        return int(config["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _issue(f"cannot read hidden_size from {path} ({error})") from error


def _pooler_tensors(files: list[Path], model_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    found: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                for suffix in (_WEIGHT_SUFFIX, _BIAS_SUFFIX):
                    if key == suffix or key.endswith("." + suffix):
                        found[suffix] = handle.get_tensor(key)
    if len(found) != 2:
        raise _issue(
            f"the weights in {str(model_dir)!r} have no BERT pooler ({_WEIGHT_SUFFIX}); use "
            "cls_pooler (or boe with averaged: true) with this model instead"
        )
    return found[_WEIGHT_SUFFIX].float(), found[_BIAS_SUFFIX].float()


def _issue(message: str) -> ConfigurationError:
    return ConfigurationError(
        [
            ConfigIssue(
                errors.BAD_VALUE, "model_name", message, expected="a BERT-style model directory"
            )
        ]
    )

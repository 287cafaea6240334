"""``pretrained_transformer`` and ``pretrained_transformer_mismatched``: a Hugging Face
transformer as a token embedder, loaded from a local directory only.

With weights in the directory (``*.safetensors``) the model loads them; without (the directory
copied into a model archive, which never holds backbone weights twice) the architecture is built
from ``config.json`` and the archive's state dict supplies every weight.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from keel.common import errors
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.common.migrations import LibraryMigration, register_migration
from keel.common.optional_dependencies import require_transformers
from keel.data.tokenizers.pretrained_transformer_tokenizer import local_model_dir
from keel.modules.token_embedders.token_embedder import TokenEmbedder

# Models whose position ids start after the padding index, so two positions are unusable.
_OFFSET_POSITION_MODELS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer"})
_PICKLED_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
_SUB_TOKEN_MODES = ("first", "last", "mean")


def _has_safetensors(model_dir: Path) -> bool:
    return any(model_dir.glob("*.safetensors"))


def load_transformer(model_name: str, parameter: str = "model_name") -> torch.nn.Module:
    """A transformers ``AutoModel`` from a local directory; never downloads, never unpickles."""
    model_dir = local_model_dir(model_name, parameter)
    transformers = require_transformers(needed_by="the pretrained_transformer embedder")
    if not (model_dir / "config.json").is_file():
        raise _bad_model_dir(parameter, f"{str(model_dir)!r} has no config.json")
    options: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    try:
        if _has_safetensors(model_dir):
            return transformers.AutoModel.from_pretrained(
                str(model_dir), use_safetensors=True, **options
            )
        pickled = [name for name in _PICKLED_WEIGHTS if (model_dir / name).exists()]
        if pickled:
            raise _bad_model_dir(
                parameter,
                f"{str(model_dir)!r} holds weights only as {pickled[0]}, which keel does not "
                "unpickle; convert them to safetensors (model.save_pretrained(DIR) in "
                "transformers writes model.safetensors)",
            )
        config = transformers.AutoConfig.from_pretrained(str(model_dir), **options)
        return transformers.AutoModel.from_config(config, trust_remote_code=False)
    except ConfigurationError:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise _bad_model_dir(parameter, f"cannot load {str(model_dir)!r}: {error}") from error


def _bad_model_dir(parameter: str, message: str) -> ConfigurationError:
    return ConfigurationError(
        [
            ConfigIssue(
                errors.BAD_VALUE,
                parameter,
                message,
                expected="a local transformers model directory",
            )
        ]
    )


@TokenEmbedder.register("pretrained_transformer")
class PretrainedTransformerEmbedder(TokenEmbedder):
    """The last hidden layer of a transformer, one (B, T, D) vector per word piece.

    ``max_length``: the longest input the model takes (default: its position embeddings);
    longer inputs are folded into segments of that length, each encoded separately.
    ``train_parameters=False`` freezes the whole backbone (kept in eval mode, so no dropout);
    ``freeze_embeddings`` freezes only its embedding layer.

    The state dict holds the backbone's parameters only, not its buffers (constant position
    and type ids that transformers versions add or drop), so archives load across versions.
    """

    transformer_model: Any  # a transformers PreTrainedModel (the extra may be absent)

    def __init__(
        self,
        model_name: str,
        max_length: int | None = None,
        train_parameters: bool = True,
        freeze_embeddings: bool = False,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.transformer_model = load_transformer(model_name)
        config = self.transformer_model.config
        if max_length is None:
            max_length = int(config.max_position_embeddings)
            if getattr(config, "model_type", None) in _OFFSET_POSITION_MODELS:
                max_length -= 2
        if max_length < 1:
            raise ConfigurationError(
                [ConfigIssue(errors.BAD_VALUE, "max_length", "must be positive", found=max_length)]
            )
        self.max_length = max_length
        self.train_parameters = train_parameters
        self.output_dim = int(config.hidden_size)
        for parameter in self.transformer_model.parameters():
            parameter.requires_grad = train_parameters
        if freeze_embeddings:
            embeddings = getattr(self.transformer_model, "embeddings", None)
            if not isinstance(embeddings, torch.nn.Module):
                embeddings = self.transformer_model.get_input_embeddings()
            for parameter in embeddings.parameters():
                parameter.requires_grad = False
        if gradient_checkpointing:
            self.transformer_model.gradient_checkpointing_enable()
        forward_parameters = inspect.signature(self.transformer_model.forward).parameters
        self._takes_type_ids = "token_type_ids" in forward_parameters
        self._buffer_keys = {
            f"transformer_model.{name}" for name, _ in self.transformer_model.named_buffers()
        }
        self.register_state_dict_post_hook(_drop_buffers)
        self.register_load_state_dict_post_hook(_ignore_missing_buffers)
        self.transformer_model.train(self.training and train_parameters)

    def get_output_dim(self) -> int:
        return self.output_dim

    def train(self, mode: bool = True) -> PretrainedTransformerEmbedder:
        super().train(mode)
        if not self.train_parameters:
            self.transformer_model.eval()
        return self

    def forward(
        self,
        token_ids: torch.Tensor,
        wordpiece_mask: torch.Tensor,
        type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Word-piece ids (B, T) and their mask -> (B, T, D) vectors (zeros where masked)."""
        if self.train_parameters:
            return self._encode(token_ids, wordpiece_mask, type_ids)
        with torch.no_grad():
            return self._encode(token_ids, wordpiece_mask, type_ids)

    def _encode(
        self, token_ids: torch.Tensor, mask: torch.Tensor, type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        batch_size, length = token_ids.shape
        if length <= self.max_length:
            return self._run(token_ids, mask, type_ids)
        # Fold (B, T) into segments (B * k, L) and encode only segments with a real token: a
        # fully masked segment wastes time and can produce NaNs in fused attention kernels.
        segments = -(-length // self.max_length)
        pad = segments * self.max_length - length

        def fold(tensor: torch.Tensor) -> torch.Tensor:
            padded = torch.nn.functional.pad(tensor, (0, pad))
            return padded.reshape(batch_size * segments, self.max_length)

        ids, seg_mask = fold(token_ids), fold(mask.to(torch.bool))
        seg_types = fold(type_ids) if type_ids is not None else None
        used = seg_mask.any(dim=1)
        encoded = self._run(
            ids[used], seg_mask[used], seg_types[used] if seg_types is not None else None
        )
        output = encoded.new_zeros(batch_size * segments, self.max_length, encoded.size(-1))
        output[used] = encoded
        return output.reshape(batch_size, segments * self.max_length, -1)[:, :length]

    def _run(
        self, token_ids: torch.Tensor, mask: torch.Tensor, type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        arguments: dict[str, torch.Tensor] = {
            "input_ids": token_ids,
            "attention_mask": mask.to(torch.long),
        }
        if type_ids is not None and self._takes_type_ids:
            arguments["token_type_ids"] = type_ids
        hidden = self.transformer_model(**arguments)[0]
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)


def _drop_buffers(
    module: PretrainedTransformerEmbedder,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: dict[str, Any],
) -> None:
    for key in module._buffer_keys:
        state_dict.pop(prefix + key, None)


def _ignore_missing_buffers(module: PretrainedTransformerEmbedder, incompatible: Any) -> None:
    # Versions that keep such buffers persistent would report them missing; they are constants.
    missing = incompatible.missing_keys
    missing[:] = [
        key
        for key in missing
        if not any(key == name or key.endswith("." + name) for name in module._buffer_keys)
    ]


@TokenEmbedder.register("pretrained_transformer_mismatched")
class PretrainedTransformerMismatchedEmbedder(TokenEmbedder):
    """Word vectors (B, W, D) from a transformer run on word pieces, for word-level models.

    Pairs with the ``pretrained_transformer_mismatched`` indexer. ``sub_token_mode`` pools each
    word's pieces: ``first``, ``last`` or ``mean`` (``avg`` is accepted as AllenNLP's name for
    ``mean``). Words without pieces embed as zeros. The other options are those of
    ``pretrained_transformer``, whose module this wraps as ``_matched_embedder``.
    """

    def __init__(
        self,
        model_name: str,
        max_length: int | None = None,
        train_parameters: bool = True,
        freeze_embeddings: bool = False,
        gradient_checkpointing: bool = False,
        sub_token_mode: str = "mean",
    ) -> None:
        super().__init__()
        mode = "mean" if sub_token_mode == "avg" else sub_token_mode
        if mode not in _SUB_TOKEN_MODES:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.BAD_VALUE,
                        "sub_token_mode",
                        "unknown way to pool a word's pieces",
                        expected=" or ".join(_SUB_TOKEN_MODES),
                        found=sub_token_mode,
                    )
                ]
            )
        self.sub_token_mode = mode
        self._matched_embedder = PretrainedTransformerEmbedder(
            model_name,
            max_length=max_length,
            train_parameters=train_parameters,
            freeze_embeddings=freeze_embeddings,
            gradient_checkpointing=gradient_checkpointing,
        )

    def get_output_dim(self) -> int:
        return self._matched_embedder.get_output_dim()

    def forward(
        self,
        token_ids: torch.Tensor,
        wordpiece_mask: torch.Tensor,
        offsets: torch.Tensor,
        type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Word pieces (B, T) and per-word inclusive piece spans (B, W, 2) -> (B, W, D)."""
        pieces = self._matched_embedder(token_ids, wordpiece_mask, type_ids)
        return pool_word_pieces(pieces, offsets, self.sub_token_mode)


def pool_word_pieces(pieces: torch.Tensor, offsets: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool (B, T, D) piece vectors into (B, W, D) word vectors over inclusive ``offsets``
    (B, W, 2); spans starting below 0 give zeros. One batched matrix product for every mode."""
    positions = torch.arange(pieces.size(1), device=pieces.device)
    starts = offsets[..., 0:1]
    ends = offsets[..., 1:2]
    if mode == "first":
        selected = positions == starts
    elif mode == "last":
        selected = positions == ends
    else:
        selected = (positions >= starts) & (positions <= ends)
    selected = selected & (starts >= 0)
    weights = selected.to(pieces.dtype)
    if mode == "mean":
        weights = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1.0)
    return torch.bmm(weights, pieces)


def _is_position_range(_key: str, tensor: torch.Tensor) -> bool:
    return bool(
        torch.equal(tensor.flatten().long(), torch.arange(tensor.numel(), device=tensor.device))
    )


# transformers 4.31 made BERT-style ``embeddings.position_ids`` a non-persistent buffer, so state
# dicts saved before it (AllenNLP archives among them: allenai/allennlp#4876) carry a key today's
# models never expect. Dropped only from such archives, and only when it holds 0..N-1, the values
# the model recomputes; anything else in it is refused.
for _name, _prefix in (
    ("pretrained_transformer", ""),
    ("pretrained_transformer_mismatched", "_matched_embedder."),
):
    register_migration(
        TokenEmbedder,
        _name,
        LibraryMigration(
            distribution="transformers",
            before="4.31",
            description="embeddings.position_ids is a non-persistent buffer since 4.31",
            drop_weights=(f"{_prefix}transformer_model.embeddings.position_ids",),
            check=_is_position_range,
        ),
    )

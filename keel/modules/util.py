"""Masking and loss helpers shared by modules and models; all bulk tensor ops, no per-item loops."""

from __future__ import annotations

from typing import Any

import torch

from keel.common import errors
from keel.common.errors import ModelError
from keel.data.fields.text_field import TextFieldTensors


def get_text_field_mask(text_field_tensors: TextFieldTensors) -> torch.Tensor:
    """The (B, T) bool mask of a batched text field: True where there is a real token.

    Uses the ``"mask"`` every indexer emits; without one, falls back to non-zero ids (0 is padding),
    where a (B, T, C) character tensor counts a token as present if any character is.
    """
    if not text_field_tensors:
        raise ModelError("get_text_field_mask got an empty text field", code=errors.SHAPE_MISMATCH)
    for name in sorted(text_field_tensors):
        mask = text_field_tensors[name].get("mask")
        if mask is not None:
            return mask.bool()
    smallest: torch.Tensor | None = None
    for name in sorted(text_field_tensors):
        for tensor in text_field_tensors[name].values():
            if smallest is None or tensor.dim() < smallest.dim():
                smallest = tensor
    assert smallest is not None
    mask = smallest != 0
    while mask.dim() > 2:
        mask = mask.any(dim=-1)
    return mask


def get_lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Per-row lengths (B,) of a (B, T) mask."""
    return mask.long().sum(dim=-1)


def min_value_of_dtype(dtype: torch.dtype) -> float:
    """The most negative finite value of a float dtype: a safe stand-in for -inf before a max."""
    return torch.finfo(dtype).min


def masked_max(
    vector: torch.Tensor, mask: torch.Tensor, dim: int, keepdim: bool = False
) -> torch.Tensor:
    """Max over ``dim`` ignoring masked-out positions; a fully masked slice gives 0, not -inf.

    ``mask`` must broadcast to ``vector`` (e.g. (B, T, 1) for a (B, T, D) vector).
    """
    mask = mask.bool()
    filled = vector.masked_fill(~mask, min_value_of_dtype(vector.dtype))
    result = filled.max(dim=dim, keepdim=keepdim).values
    any_valid = mask.any(dim=dim, keepdim=keepdim)
    return result.masked_fill(~any_valid, 0.0)


def masked_sum(
    vector: torch.Tensor, mask: torch.Tensor, dim: int, keepdim: bool = False
) -> torch.Tensor:
    """Sum over ``dim`` of the unmasked positions."""
    return (vector * mask.to(vector.dtype)).sum(dim=dim, keepdim=keepdim)


def masked_mean(
    vector: torch.Tensor, mask: torch.Tensor, dim: int, keepdim: bool = False
) -> torch.Tensor:
    """Mean over ``dim`` of the unmasked positions; a fully masked slice gives 0, not NaN."""
    mask = mask.to(vector.dtype)
    total = (vector * mask).sum(dim=dim, keepdim=keepdim)
    count = torch.broadcast_to(mask, vector.shape).sum(dim=dim, keepdim=keepdim)
    return total / count.clamp(min=1.0)


def masked_softmax(vector: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` giving masked-out positions probability 0 (a fully masked row: 0s)."""
    if mask is None:
        return torch.softmax(vector, dim=dim)
    mask = mask.bool()
    filled = vector.masked_fill(~mask, min_value_of_dtype(vector.dtype))
    return torch.softmax(filled, dim=dim) * mask.to(vector.dtype)


def sequence_cross_entropy_with_logits(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    average: str | None = "token",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross entropy of (B, T, C) logits against (B, T) targets, counting only unmasked tokens.

    ``average``: ``"token"`` (default) divides the summed loss by the number of real tokens,
    ``"batch"`` averages per sequence then over sequences with any token (AllenNLP's default),
    ``None`` returns the per-sequence losses (B,). Padded targets may hold any index.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2] or mask.shape != targets.shape:
        raise ModelError(
            "sequence_cross_entropy_with_logits expects logits (B, T, C), targets (B, T) and "
            f"mask (B, T); got {tuple(logits.shape)}, {tuple(targets.shape)}, {tuple(mask.shape)}",
            code=errors.SHAPE_MISMATCH,
        )
    weights = mask.to(logits.dtype)
    # Padding positions may carry out-of-range ids; point them at class 0 so the gather is safe.
    safe_targets = targets.long().masked_fill(~mask.bool(), 0)
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        safe_targets.reshape(-1),
        reduction="none",
        label_smoothing=label_smoothing,
    ).view_as(weights)
    per_token = per_token * weights
    if average == "token":
        return per_token.sum() / weights.sum().clamp(min=1.0)
    per_sequence = per_token.sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    if average == "batch":
        non_empty = (weights.sum(dim=1) > 0).to(logits.dtype)
        return (per_sequence * non_empty).sum() / non_empty.sum().clamp(min=1.0)
    if average is None:
        return per_sequence
    raise ModelError(
        f"average must be 'token', 'batch' or None, got {average!r}", code=errors.SHAPE_MISMATCH
    )


def move_to_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor inside (nested dicts, lists, tuples) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {key: move_to_device(value, device) for key, value in obj.items()}
    if isinstance(obj, list):
        return [move_to_device(value, device) for value in obj]
    if isinstance(obj, tuple):
        return tuple(move_to_device(value, device) for value in obj)
    return obj

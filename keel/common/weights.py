"""Model weights on disk: safetensors only (never pickle), written atomically.

The one save and the one load of a state dict, used by checkpoints, the best weights of a run
and archives alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from keel.common import errors
from keel.common.errors import KeelError
from keel.common.file_utils import PathLike, atomic_path


def weights_for_saving(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict safetensors accepts: on CPU, contiguous, and with no two entries sharing
    memory (tied weights are stored under each name, so a strict load finds every key)."""
    result: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, tensor in state_dict.items():
        tensor = tensor.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()  # a fresh copy, shares nothing
        else:
            storage = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
            if storage in seen or not tensor.is_contiguous():
                tensor = tensor.clone(memory_format=torch.contiguous_format)
            seen.add((tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes()))
        result[name] = tensor.contiguous()
    return result


def save_weights(state_dict: Mapping[str, torch.Tensor], path: PathLike) -> None:
    """Write ``state_dict`` to a safetensors file that appears only when complete."""
    with atomic_path(path) as temp:
        save_file(weights_for_saving(state_dict), str(temp), metadata={"format": "pt"})


def read_weights(path: PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file's tensors on ``device``; an unreadable file is a KeelError (KA002)."""
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise KeelError(
            f"{Path(path).name}: unreadable weights ({error})", code=errors.ARCHIVE_CORRUPT
        ) from error

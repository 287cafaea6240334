"""Reading AllenNLP-style ``weights.th`` files without ever unpickling arbitrary objects.

``weights.th`` is a pickled state dict. keel reads it only with
``torch.load(weights_only=True)``, whose restricted unpickler accepts tensors, plain containers
and numbers and refuses everything else (including the ``__reduce__`` payloads that would run
code), so a hostile file is an error, never an execution.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from keel.common import errors
from keel.common.errors import ArchiveError


def read_allennlp_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in an AllenNLP ``weights.th``, loaded on CPU with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such weights file", code=errors.ARCHIVE_NOT_FOUND)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ArchiveError(
            f"{path}: refused: the file holds pickled objects other than tensors, which keel "
            f"never unpickles (torch.load weights_only=True said: {_first_line(error)})",
            code=errors.ARCHIVE_UNSAFE_MEMBER,
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise ArchiveError(
            f"{path}: not a readable torch weights file ({type(error).__name__}: "
            f"{_first_line(error)})",
            code=errors.ARCHIVE_CORRUPT,
        ) from error
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ArchiveError(
            f"{path}: expected a state dict (parameter name -> tensor), found "
            f"{type(state).__name__}",
            code=errors.ARCHIVE_CORRUPT,
        )
    return dict(state)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

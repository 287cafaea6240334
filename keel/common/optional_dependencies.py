"""Importing optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from keel.common import errors
from keel.common.errors import KeelError

# keel never downloads: components read local directories only. These make huggingface_hub and
# transformers refuse network access too, in case a code path forgets local_files_only=True. A
# value the user set explicitly is kept.
_OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class MissingDependencyError(KeelError):
    """A component needs a package that is not installed; the message names the pip extra."""

    code = errors.MISSING_DEPENDENCY


def require(module: str, extra: str, *, needed_by: str | None = None) -> ModuleType:
    """Import ``module``, or raise a MissingDependencyError naming ``pip install 'keel[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        who = f"{needed_by} needs" if needed_by else "this feature needs"
        raise MissingDependencyError(
            f"{who} the optional package {module!r}, which is not installed ({error}); "
            f"install it with: pip install 'keel[{extra}]'"
        ) from error


def require_transformers(needed_by: str | None = None) -> ModuleType:
    """``transformers``, imported with the Hugging Face hub switched to offline mode."""
    for name, value in _OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    return require("transformers", extra="transformers", needed_by=needed_by)

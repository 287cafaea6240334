"""Files a model needs at load time (a backbone's config and tokenizer) travel in the archive.

At archive time, each config value under a ``model_name`` key that names a local directory is
copied into ``resources/<n>/`` (weight files left out: the archive's state dict supplies every
weight) and replaced by ``archive://resources/<n>``. At load time ``archive://`` values point
into the extraction folder, so loading never reaches for a hub or the original path.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keel.common.filenames import RESOURCES_DIR

ARCHIVE_SCHEME = "archive://"
RESOURCE_KEYS = frozenset({"model_name"})
WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".h5",
    ".msgpack",
    ".onnx",
    ".ot",
    ".ckpt",
)


def _map_resources(config: Any, replace: Callable[[str], str]) -> Any:
    if isinstance(config, dict):
        return {
            key: replace(value)
            if key in RESOURCE_KEYS and isinstance(value, str)
            else _map_resources(value, replace)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_map_resources(item, replace) for item in config]
    return config


def pack_resources(config: dict[str, Any], staging: Path) -> dict[str, Any]:
    """Copy every local resource directory into ``staging`` and return the rewritten config."""
    copied: dict[str, str] = {}

    def replace(value: str) -> str:
        source = Path(value)
        if value.startswith(ARCHIVE_SCHEME) or not source.is_dir():
            return value
        key = str(source.resolve())
        if key not in copied:
            relative = f"{RESOURCES_DIR}/{len(copied)}"
            shutil.copytree(
                source,
                staging / relative,
                ignore=lambda _d, names: [n for n in names if n.endswith(WEIGHT_SUFFIXES)],
            )
            copied[key] = ARCHIVE_SCHEME + relative
        return copied[key]

    return _map_resources(config, replace)


def unpack_resources(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """The config with ``archive://`` values pointing into the extraction folder ``root``."""

    def replace(value: str) -> str:
        if value.startswith(ARCHIVE_SCHEME):
            return str(root / value.removeprefix(ARCHIVE_SCHEME))
        return value

    return _map_resources(config, replace)

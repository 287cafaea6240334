"""Loading configs: Jsonnet or JSON files, ``--overrides`` and explicit ``--ext-var`` only.

Unlike AllenNLP, the process environment is never handed to Jsonnet: one config must resolve to
the same thing on every machine, so external variables exist only when passed explicitly.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import _jsonnet

from keel.common import errors
from keel.common.errors import ConfigIssue, ConfigurationError


def parse_ext_vars(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` from the command line as a dict; a pair without ``=`` is an error."""
    ext_vars: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.BAD_EXT_VAR,
                        "--ext-var",
                        f"{pair!r} is not of the form name=value",
                    )
                ]
            )
        ext_vars[key] = value
    return ext_vars


def evaluate_jsonnet(text: str, *, filename: str, ext_vars: Mapping[str, str] | None = None) -> Any:
    if "\0" in text:
        # The Jsonnet C library reads NUL-terminated strings.
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.CONFIG_SYNTAX,
                    filename,
                    f"contains a NUL character at offset {text.index(chr(0))}; a config is text",
                )
            ]
        )
    try:
        rendered = _jsonnet.evaluate_snippet(filename, text, ext_vars=dict(ext_vars or {}))
    except RuntimeError as error:
        message = str(error).strip()
        hint = ""
        undefined = re.search(r"undefined external variable:\s*(\S+)", message, re.IGNORECASE)
        if undefined:
            name = undefined.group(1)
            hint = (
                f" Pass it explicitly with --ext-var {name}=VALUE (keel never reads "
                "environment variables into configs)."
            )
        raise ConfigurationError(
            [ConfigIssue(errors.CONFIG_SYNTAX, filename, f"could not evaluate: {message}{hint}")]
        ) from error
    return json.loads(rendered)


def load_config(
    path: str | Path,
    *,
    overrides: str | Mapping[str, Any] | None = None,
    ext_vars: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read a Jsonnet/JSON config file and merge ``overrides`` over it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(
            [ConfigIssue(errors.CONFIG_SYNTAX, str(path), "config file not found")]
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.CONFIG_SYNTAX,
                    str(path),
                    f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                    f"{error.start})",
                )
            ]
        ) from error
    config = evaluate_jsonnet(text, filename=str(path), ext_vars=ext_vars)
    if not isinstance(config, dict):
        raise ConfigurationError(
            [ConfigIssue(errors.WRONG_TYPE, str(path), "a config must be an object", found=config)]
        )
    if overrides:
        config = apply_overrides(config, parse_overrides(overrides, ext_vars=ext_vars))
    return config


def parse_overrides(
    overrides: str | Mapping[str, Any], *, ext_vars: Mapping[str, str] | None = None
) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return dict(overrides)
    try:
        parsed = evaluate_jsonnet(overrides, filename="--overrides", ext_vars=ext_vars)
    except ConfigurationError as error:
        raise ConfigurationError(
            [ConfigIssue(errors.BAD_OVERRIDE, "--overrides", error.issues[0].message)]
        ) from error
    if not isinstance(parsed, dict):
        raise ConfigurationError(
            [ConfigIssue(errors.BAD_OVERRIDE, "--overrides", "must be an object", found=parsed)]
        )
    return parsed


def apply_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``config``.

    Objects merge key by key; any other value replaces. An object that names another
    ``"type"`` together with settings of its own replaces the object whole: switching an
    ``lstm`` encoder to ``{"type": "cnn", "embedding_dim": 8, ...}`` must not keep the LSTM's
    keys. A bare ``{"type": "my_subclass"}`` still merges, keeping the other settings. Dotted
    keys (``"trainer.num_epochs"``) address nested objects, as in AllenNLP.
    """
    merged = copy.deepcopy(dict(config))
    for key, value in overrides.items():
        target = merged
        *parents, leaf = key.split(".")
        for parent in parents:
            child = target.get(parent)
            if not isinstance(child, dict):
                child = {}
                target[parent] = child
            target = child
        current = target.get(leaf)
        replaces = (
            isinstance(value, Mapping)
            and isinstance(current, dict)
            and value.get("type", current.get("type")) != current.get("type")
            and len(value) > 1
        )
        if isinstance(value, Mapping) and isinstance(current, dict) and not replaces:
            target[leaf] = apply_overrides(current, value)
        else:
            target[leaf] = copy.deepcopy(value)
    return merged


def dump_config(config: Mapping[str, Any]) -> str:
    """Canonical JSON text for a config: sorted keys, two-space indent, trailing newline."""
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

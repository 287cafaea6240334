"""Where each registered component of a model comes from, and whether it still does.

The manifest records, for every registered name a config uses, the module and class it resolved
to, the distribution (``name==version``) that provides the module or ``local source``, and for
code outside keel the sha256 of the module's source file.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import metadata
from typing import Any

from keel.common.errors import RegistryError
from keel.common.file_utils import sha256_file
from keel.common.from_params import ComponentUse
from keel.common.registry import Registrable

LOCAL_SOURCE = "local source"


@lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distribution_of(module_name: str) -> str:
    """``name==version`` of the distribution providing ``module_name``, or ``local source``."""
    top = module_name.split(".")[0]
    for name in _module_distributions().get(top, []):
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return LOCAL_SOURCE


def source_sha256(module_name: str) -> str | None:
    """sha256 of a module's source file, or None when it has none."""
    try:
        module = importlib.import_module(module_name)
        path = inspect.getsourcefile(module)
    except (ImportError, TypeError):
        return None
    if not path:
        return None
    return sha256_file(path)


def describe_components(uses: Sequence[ComponentUse]) -> list[dict[str, Any]]:
    """The manifest's ``components`` section: one entry per (base, name), in config order."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for use in uses:
        key = (use.base, use.name)
        if key in entries:
            entries[key]["paths"].append(use.path)
            continue
        entry: dict[str, Any] = {
            "base": use.base,
            "name": use.name,
            "module": use.module,
            "class": use.qualname,
            "distribution": distribution_of(use.module),
            "paths": [use.path],
        }
        if not use.module.startswith("keel."):
            entry["source_sha256"] = source_sha256(use.module)
        entries[key] = entry
    return list(entries.values())


def _fix_for(entry: dict[str, Any]) -> str:
    distribution = entry.get("distribution") or LOCAL_SOURCE
    top = entry["module"].split(".")[0]
    if distribution != LOCAL_SOURCE:
        return f"pip install '{distribution}'"
    return f"--include-package {top} (with its source on the Python path)"


def check_components(
    recorded: Iterable[dict[str, Any]], include_packages: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """(problems, risks): names that no longer resolve or resolve elsewhere; changed sources."""
    problems: list[str] = []
    risks: list[str] = []
    for entry in recorded:
        name, module = entry["name"], entry["module"]
        base_module, _, base_name = entry["base"].rpartition(".")
        where = ", ".join(entry.get("paths") or []) or "<root>"
        try:
            base = getattr(importlib.import_module(base_module), base_name)
            assert isinstance(base, type) and issubclass(base, Registrable)
            resolved = base.resolve(name).cls
        except (ImportError, AttributeError, AssertionError, RegistryError):
            problems.append(
                f"{where}: registered name {name!r} ({base_name}) is not available; it came from "
                f"{module}.{entry['class']} ({entry.get('distribution')}); fix: {_fix_for(entry)}"
            )
            continue
        if resolved.__module__ != module or resolved.__qualname__ != entry["class"]:
            problems.append(
                f"{where}: {name!r} now builds {resolved.__module__}.{resolved.__qualname__}, "
                f"but the archive was made with {module}.{entry['class']}"
            )
            continue
        expected_sha = entry.get("source_sha256")
        if expected_sha and source_sha256(module) != expected_sha:
            risks.append(
                f"{where}: the source of {module} differs from the one the archive was made with"
            )
    return problems, risks

"""Where each registered component of a model comes from, and whether it still does.

The manifest records, for every registered name a config uses, the module and class it resolved
to, the distribution (``name==version``) that provides the module or ``local source``, and for
code outside keel the sha256 of the module's source file.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache
from importlib import metadata

from keel.archive.manifest import LOCAL_SOURCE, ComponentRecord
from keel.common.errors import RegistryError
from keel.common.from_params import ComponentUse
from keel.common.hashing import sha256_file
from keel.common.registry import Registrable, registered_base


@lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


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
    """sha256 of an imported module's source file, or None when it has none. A module that is
    not imported has none here: nothing is imported on the word of a manifest."""
    module = sys.modules.get(module_name)
    try:
        path = inspect.getsourcefile(module) if module is not None else None
    except TypeError:
        return None
    return sha256_file(path) if path else None


def describe_components(uses: Sequence[ComponentUse]) -> list[ComponentRecord]:
    """The manifest's ``components`` section: one entry per (base, name), in config order."""
    entries: dict[tuple[str, str], ComponentRecord] = {}
    for use in uses:
        key = (use.base, use.name)
        if key in entries:
            entries[key] = replace(entries[key], paths=(*entries[key].paths, use.path))
            continue
        importlib.import_module(use.module)  # a class the config just built: imported already
        entries[key] = ComponentRecord(
            base=use.base,
            name=use.name,
            module=use.module,
            class_name=use.qualname,
            distribution=distribution_of(use.module),
            paths=(use.path,),
            source_sha256=None if use.module.startswith("keel.") else source_sha256(use.module),
            version=use.version,
        )
    return list(entries.values())


def _fix_for(component: ComponentRecord) -> str:
    distribution = component.distribution or LOCAL_SOURCE
    top = component.module.split(".")[0]
    if distribution != LOCAL_SOURCE:
        return f"pip install '{distribution}'"
    return f"--include-package {top} (with its source on the Python path)"


def check_components(
    recorded: Iterable[ComponentRecord],
) -> tuple[list[str], list[str]]:
    """(problems, risks): names that no longer resolve or resolve elsewhere; changed sources.

    Base classes and names are looked up in the registry as it stands (keel's components,
    plugins and ``--include-package`` modules, imported beforehand); nothing is imported here.
    """
    problems: list[str] = []
    risks: list[str] = []
    for component in recorded:
        where = ", ".join(component.paths) or "<root>"
        base = registered_base(component.base)
        registration = None
        if base is not None and issubclass(base, Registrable):
            try:
                registration = base.resolve(component.name)
            except RegistryError:
                registration = None
        if registration is None:
            problems.append(
                f"{where}: registered name {component.name!r} ({component.base_name}) is not "
                f"available; it came from {component.module}.{component.class_name} "
                f"({component.distribution}); fix: {_fix_for(component)}"
            )
            continue
        resolved = registration.cls
        if resolved.__module__ != component.module or (
            resolved.__qualname__ != component.class_name
        ):
            problems.append(
                f"{where}: {component.name!r} now builds {resolved.__module__}."
                f"{resolved.__qualname__}, but the archive was made with {component.module}."
                f"{component.class_name}"
            )
            continue
        expected_sha = component.source_sha256
        if expected_sha and source_sha256(component.module) != expected_sha:
            risks.append(
                f"{where}: the source of {component.module} differs from the one the archive "
                "was made with"
            )
    return problems, risks

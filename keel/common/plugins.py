"""Making components available: keel's own, ``--include-package`` modules and plugins.

Plugins are found three ways: modules named with ``--include-package``, the ``keel.plugins``
entry-point group of installed distributions, and a ``.keel_plugins`` file (one module per line)
in the working directory.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from keel.common.registry import import_module_and_submodules

BUILTIN_PACKAGES = (
    "keel.data",
    "keel.modules",
    "keel.models",
    "keel.metrics",
    "keel.training",
    "keel.predict",
)
ENTRY_POINT_GROUP = "keel.plugins"
LOCAL_PLUGINS_FILE = ".keel_plugins"


def import_builtin_components() -> None:
    """Import keel's component packages so their registered names exist."""
    for name in BUILTIN_PACKAGES:
        importlib.import_module(name)


def discover_plugins(working_directory: str | Path | None = None) -> list[str]:
    """Module names of plugins from entry points and a ``.keel_plugins`` file."""
    found: list[str] = []
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.append(entry_point.value.split(":")[0])
    local = Path(working_directory or Path.cwd()) / LOCAL_PLUGINS_FILE
    if local.is_file():
        for line in local.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(line)
    return found


def import_plugins(include_packages: Iterable[str] = ()) -> list[str]:
    """Import keel, discovered plugins and ``include_packages``; return the plugin modules."""
    import_builtin_components()
    modules = list(dict.fromkeys([*discover_plugins(), *include_packages]))
    for module in modules:
        import_module_and_submodules(module)
    return modules

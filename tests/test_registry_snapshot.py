"""Registered names are a public contract: archives name them, so none may vanish silently.

The checked-in fixture lists every name keel registers (per base class) and the class it builds.
Removing or renaming a name, or moving its class, fails here; so does adding one until the
fixture is updated on purpose with:

    .venv/bin/python -m tests.test_registry_snapshot --update

A component whose version was bumped shows as ``module.Class@vN``: its version may only go
up, and each step needs a registered migration (checked below), so archives made with the
older version keep loading.

The snapshot is taken in a fresh interpreter that imports only keel's own component packages,
so names registered by other tests or installed plugins never leak into it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "registry_snapshot.json"
UPDATE_COMMAND = ".venv/bin/python -m tests.test_registry_snapshot --update"
_SNAPSHOT_SCRIPT = """
import json
from keel.common.plugins import import_builtin_components
from keel.common.registry import registry_snapshot

import_builtin_components()
print(json.dumps({
    base: {name: cls for name, cls in names.items() if cls.startswith("keel.")}
    for base, names in registry_snapshot().items()
    if base.startswith("keel.")
}, sort_keys=True))
"""


def current_snapshot() -> dict[str, dict[str, str]]:
    """keel's registered names and classes, from a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    snapshot = json.loads(result.stdout)
    return {base: names for base, names in snapshot.items() if names}


def test_registry_snapshot_matches_the_checked_in_names() -> None:
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    current = current_snapshot()
    removed, moved, added = [], [], []
    for base in sorted(recorded.keys() | current.keys()):
        old, new = recorded.get(base, {}), current.get(base, {})
        removed += [f"{base}: {name!r} ({old[name]})" for name in sorted(old.keys() - new.keys())]
        added += [f"{base}: {name!r} ({new[name]})" for name in sorted(new.keys() - old.keys())]
        for name in sorted(old.keys() & new.keys()):
            (old_class, old_version), (new_class, new_version) = (
                _split(old[name]),
                _split(new[name]),
            )
            if old_class != new_class or new_version < old_version:
                moved.append(f"{base}: {name!r} was {old[name]}, now {new[name]}")
            elif new_version != old_version:
                added.append(f"{base}: {name!r} is now version {new_version}")
    problems = []
    if removed or moved:
        problems.append(
            "registered names that archives may depend on were removed, renamed or moved; "
            "archives made with them would no longer load. Restore them (keep the old name "
            "registered, pointing at the same module and class), or, for a deliberate breaking "
            f"change, update the fixture with `{UPDATE_COMMAND}`:\n  "
            + "\n  ".join(removed + moved)
        )
    if added:
        problems.append(
            f"new registered names are not in {FIXTURE.name}; adding a name is a public API "
            f"change: record it with `{UPDATE_COMMAND}` and commit the fixture:\n  "
            + "\n  ".join(added)
        )
    assert not problems, "\n\n".join(problems)


def _split(entry: str) -> tuple[str, int]:
    class_path, _, version = entry.partition("@v")
    return class_path, int(version or 1)


_MIGRATION_SCRIPT = """
import json
from keel.common.migrations import missing_link
from keel.common.plugins import import_builtin_components
from keel.common.registry import Registrable

import_builtin_components()
print(json.dumps(sorted(
    f"{base.__qualname__} {name!r} is version {registration.version} but has no migration "
    f"from version {gap}"
    for base, names in Registrable._registry.items()
    for name, registration in names.items()
    if registration.cls.__module__.startswith("keel.")
    for gap in [missing_link(base, name, 1, registration.version)]
    if gap is not None
)))
"""


def test_registry_every_version_bump_has_its_migrations() -> None:
    # An archive made with any earlier version of a keel component must keep loading: every
    # step from version 1 up to the installed version has a registered migration.
    result = subprocess.run(
        [sys.executable, "-c", _MIGRATION_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    gaps = json.loads(result.stdout)
    assert not gaps, "register the missing migrations (keel.common.migrations):\n  " + "\n  ".join(
        gaps
    )


_REACHABILITY_SCRIPT = """
import json
from keel.common.plugins import BUILTIN_PACKAGES, import_builtin_components
from keel.common.registry import import_module_and_submodules, registry_snapshot

import_builtin_components()
reachable = registry_snapshot()
for package in BUILTIN_PACKAGES:
    import_module_and_submodules(package)
print(json.dumps(sorted(
    f"{base}: {name!r} ({cls})"
    for base, names in registry_snapshot().items()
    for name, cls in names.items()
    if name not in reachable.get(base, {})
)))
"""


def test_registry_every_keel_component_is_registered_by_importing_keel() -> None:
    # load_archive and every command import keel's component packages, not each module: a
    # component whose module no package __init__ imports is invisible to them.
    result = subprocess.run(
        [sys.executable, "-c", _REACHABILITY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    unreachable = json.loads(result.stdout)
    assert not unreachable, (
        "these components register only when their module is imported directly; import the "
        "module in its package's __init__.py so configs and archives can use them:\n  "
        + "\n  ".join(unreachable)
    )


def main() -> None:
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE_COMMAND}")
    snapshot = current_snapshot()
    FIXTURE.write_text(json.dumps(snapshot, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    count = sum(len(names) for names in snapshot.values())
    print(f"wrote {count} names over {len(snapshot)} base classes to {FIXTURE}")


if __name__ == "__main__":
    main()

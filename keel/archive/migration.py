"""Applying component migrations to an archive's config and weights, in memory.

The manifest records each component's registered version. Loading compares it with the version
installed: equal, nothing to do; older, the registered chain of :class:`Migration` s is planned
and applied (config sections, then weights under each component's module, outermost first);
newer, the archive is refused with both versions and the install that reads it. A gap in the
chain is refused too, naming the missing step. See ``keel.common.migrations`` for how a
component declares its migrations.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from packaging.version import InvalidVersion, Version

from keel.archive.components import distribution_of
from keel.archive.manifest import LOCAL_SOURCE, ComponentRecord, Manifest
from keel.common import errors
from keel.common.errors import ArchiveError, RegistryError
from keel.common.migrations import (
    LibraryMigration,
    Migration,
    MigrationError,
    library_migrations_of,
    migration_chain,
    missing_link,
)
from keel.common.registry import Registrable, registered_base

UPGRADE_GUIDE = 'README, "Upgrading keel and your components"'


@dataclass(frozen=True)
class PlannedMigration:
    """The migrations one use of a component (one config path) goes through on load."""

    path: str
    base_name: str
    name: str
    from_version: int
    to_version: int
    steps: tuple[Migration, ...] = ()
    library_steps: tuple[LibraryMigration, ...] = ()

    @property
    def changes_weights(self) -> bool:
        return bool(self.library_steps) or any(step.changes_weights for step in self.steps)

    def describe(self) -> str:
        parts = [
            f"{step.from_version}->{step.to_version}: {step.description}" for step in self.steps
        ]
        parts += [
            f"{step.distribution}<{step.before}: {step.description}" for step in self.library_steps
        ]
        versions = (
            f"v{self.from_version} -> v{self.to_version}"
            if self.from_version != self.to_version
            else f"v{self.to_version}"
        )
        return f"{self.path}: {self.base_name} {self.name!r} {versions} ({'; '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "component": self.base_name,
            "name": self.name,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "steps": [
                {"from_version": step.from_version, "description": step.description}
                for step in self.steps
            ]
            + [
                {"library": f"{step.distribution}<{step.before}", "description": step.description}
                for step in self.library_steps
            ],
        }


def plan_migrations(manifest: Manifest, where: str) -> list[PlannedMigration]:
    """What loading ``manifest``'s archive here needs, outermost component first.

    Raises ArchiveError ``KA010`` for a component newer in the archive than installed and
    ``KA011`` for a chain with a missing step. A component that is not registered here at all
    is not planned: the components check reports it.
    """
    plan: list[PlannedMigration] = []
    problems: list[tuple[str, str]] = []
    recorded_environment = manifest.environment or {}
    for component in manifest.components or []:
        base = registered_base(component.base)
        if base is None or not issubclass(base, Registrable):
            continue
        try:
            registration = base.resolve(component.name)
        except RegistryError:
            continue
        installed = registration.version
        label = f"{component.base_name} {component.name!r}"
        uses = ", ".join(component.paths) or "<root>"
        if component.version > installed:
            problems.append(
                (
                    errors.COMPONENT_TOO_NEW,
                    f"{uses}: {label} is version {component.version} in the archive, but the "
                    f"installed {_installed_by(registration.cls)} has version {installed}; "
                    f"fix: {_install_hint(component)}",
                )
            )
            continue
        steps: tuple[Migration, ...] = ()
        if component.version < installed:
            gap = missing_link(base, component.name, component.version, installed)
            if gap is not None:
                problems.append(
                    (
                        errors.MIGRATION_MISSING,
                        f"{uses}: {label} is version {component.version} in the archive and "
                        f"version {installed} here, but no migration from version {gap} to "
                        f"{gap + 1} is registered; fix: load it with the release that wrote it "
                        f"({_install_hint(component)}), or have the component's author register "
                        f"the migration ({UPGRADE_GUIDE}), or retrain",
                    )
                )
                continue
            steps = tuple(migration_chain(base, component.name, component.version, installed))
        library = tuple(
            step
            for step in library_migrations_of(base, component.name)
            if _older(recorded_environment, step.distribution, step.before)
        )
        if not steps and not library:
            continue
        for path in component.paths:
            plan.append(
                PlannedMigration(
                    path,
                    component.base_name,
                    component.name,
                    component.version,
                    installed,
                    steps,
                    library,
                )
            )
    if problems:
        code = problems[0][0]
        raise ArchiveError(
            f"{where}: {len(problems)} component(s) cannot be loaded by this keel:\n  "
            + "\n  ".join(message for _, message in problems),
            code=code,
        )
    return sorted(plan, key=lambda planned: (_depth(planned.path), planned.path))


def migrate_config(config: Mapping[str, Any], plan: Iterable[PlannedMigration]) -> dict[str, Any]:
    """A copy of ``config`` with every planned migration's config changes applied."""
    migrated = copy.deepcopy(dict(config))
    for planned in plan:
        if not planned.steps:
            continue
        parent, key = _locate(migrated, planned.path)
        section = parent[key]
        if not isinstance(section, dict):
            raise MigrationError(f"{planned.path}: is not a component section in the config")
        for step in planned.steps:
            section = step.migrate_section(section, planned.path)
        parent[key] = section
    return migrated


def migrate_weights(
    state: Mapping[str, torch.Tensor],
    model: torch.nn.Module,
    built: Mapping[str, Any],
    plan: Iterable[PlannedMigration],
) -> dict[str, torch.Tensor]:
    """``state`` with every planned migration's weight changes applied under the module each
    config path built (``built``: config path -> object, from ``build(..., built=...)``)."""
    migrated = dict(state)
    module_names = {id(module): name for name, module in model.named_modules()}
    for planned in plan:
        if not planned.changes_weights:
            continue
        component = built.get(planned.path)
        if component is None or id(component) not in module_names:
            raise MigrationError(
                f"{planned.path}: {planned.name!r} migrates weights, but no module of the model "
                "was built from that config path"
            )
        name = module_names[id(component)]
        prefix = f"{name}." if name else ""
        inside = {
            key[len(prefix) :]: value for key, value in migrated.items() if key.startswith(prefix)
        }
        outside = {key: value for key, value in migrated.items() if not key.startswith(prefix)}
        for step in planned.steps:
            inside = step.migrate_weights(inside, planned.path)
        for library_step in planned.library_steps:
            inside = library_step.migrate_weights(inside, planned.path)
        migrated = {**outside, **{prefix + key: value for key, value in inside.items()}}
    return migrated


def migrated_components(
    components: Iterable[ComponentRecord], plan: Iterable[PlannedMigration], distribution: str
) -> list[ComponentRecord]:
    """The manifest's components after ``plan``: migrated ones at their new version, provided
    by ``distribution`` as installed."""
    versions = {(planned.base_name, planned.name): planned.to_version for planned in plan}
    updated = []
    for component in components:
        new_version = versions.get((component.base_name, component.name))
        if new_version is None:
            updated.append(component)
            continue
        updated.append(replace(component, version=new_version, distribution=distribution))
    return updated


def _locate(config: dict[str, Any], path: str) -> tuple[Any, Any]:
    parts: list[str | int] = []
    for match in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(match.group(2)) if match.group(2) is not None else match.group(1))
    if not parts:
        raise MigrationError(f"{path!r} is not a config path")
    node: Any = config
    for part in parts[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError) as error:
            raise MigrationError(f"{path}: not in the archived config") from error
    last = parts[-1]
    try:
        node[last]
    except (KeyError, IndexError, TypeError) as error:
        raise MigrationError(f"{path}: not in the archived config") from error
    return node, last


def _depth(path: str) -> int:
    return path.count(".") + path.count("[")


def _older(environment: Mapping[str, Any], distribution: str, before: str) -> bool:
    """Whether the recorded environment had ``distribution`` older than ``before``; unknown
    (no environment recorded, e.g. an import) counts as older."""
    recorded = (environment.get("distributions") or {}).get(distribution)
    if not isinstance(recorded, str):
        return True
    try:
        return Version(recorded) < Version(before)
    except InvalidVersion:
        return True


def _installed_by(cls: type) -> str:
    return distribution_of(cls.__module__)


def _install_hint(component: ComponentRecord) -> str:
    if component.distribution and component.distribution != LOCAL_SOURCE:
        return f"pip install '{component.distribution}'"
    return f"the source of {component.module} as it was when the archive was written"

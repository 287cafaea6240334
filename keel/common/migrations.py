"""Component migrations: how an archive made with an older version of a component loads today.

A registered component has a version (``Base.register("name", version=N)``, 1 by default). When
a change would break archives made with the previous version (a constructor argument renamed,
added or removed; a state-dict key renamed, reshaped or dropped), its author bumps the version
and registers one :class:`Migration` from the old version to the new one, next to the class::

    @Seq2VecEncoder.register("cnn", version=2)
    class CnnEncoder(Seq2VecEncoder): ...

    register_migration(Seq2VecEncoder, "cnn", Migration(
        from_version=1,
        description="convolutions live in a ModuleList",
        rename_weights={"conv_layer_0.": "convolutions.0.", ...},
    ))

Loading an archive applies the chain ``k -> k+1 -> ... -> installed`` in memory (config section
first, then the weights under the component's module) and records what it applied; ``keel
archive migrate`` writes the result as a new archive. A migration is declared, not clever: each
field below is one kind of change, and ``convert_config`` / ``convert_weights`` take a small
function for anything else.

Library drift (a dependency that adds or drops a state-dict key in a module keel wraps) is a
:class:`LibraryMigration`: it applies when the archive was written with a version of that
distribution older than ``before``, and never by relaxing strict loading.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from keel.common import errors
from keel.common.errors import ArchiveError, RegistryError

State = dict[str, torch.Tensor]
_MISSING = object()


class MigrationError(ArchiveError):
    """A migration does not apply to what an archive holds (``KA012``)."""

    code = errors.MIGRATION_FAILED


@dataclass(frozen=True)
class Migration:
    """What changed between ``from_version`` and ``from_version + 1`` of one component.

    Config changes apply to the component's own section of the config (its constructor
    arguments); weight changes to the keys under the component's module, relative to it.

    - ``rename_arguments``: old argument name -> new name.
    - ``add_arguments``: a new argument -> the value that reproduces the old behaviour (written
      into old configs that do not have it).
    - ``remove_arguments``: an argument the new version no longer has -> the only value the new
      version reproduces; an archive with another value is refused, naming it.
    - ``rename_weights``: old key -> new key, relative to the component; a key ending in ``.``
      renames every key under that prefix.
    - ``drop_weights``: keys (relative, ``fnmatch``-free: exact or ``prefix.``) the new version
      no longer has.
    - ``convert_weights``: key (new name) -> a function reshaping or converting the tensor.
    - ``convert_config`` / ``convert_state``: a function for any other change, applied last.
    """

    from_version: int
    description: str
    rename_arguments: Mapping[str, str] = field(default_factory=dict)
    add_arguments: Mapping[str, Any] = field(default_factory=dict)
    remove_arguments: Mapping[str, Any] = field(default_factory=dict)
    rename_weights: Mapping[str, str] = field(default_factory=dict)
    drop_weights: tuple[str, ...] = ()
    convert_weights: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] = field(
        default_factory=dict
    )
    convert_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    convert_state: Callable[[State], State] | None = None

    @property
    def to_version(self) -> int:
        return self.from_version + 1

    @property
    def changes_weights(self) -> bool:
        return bool(
            self.rename_weights or self.drop_weights or self.convert_weights or self.convert_state
        )

    def migrate_section(self, section: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The component's config section as the new version expects it."""
        migrated = copy.deepcopy(dict(section))
        for old, new in self.rename_arguments.items():
            if old in migrated:
                if new in migrated:
                    raise MigrationError(
                        f"{where}: has both {old!r} and its new name {new!r}; {self.description}"
                    )
                migrated[new] = migrated.pop(old)
        for name, value in self.remove_arguments.items():
            found = migrated.pop(name, _MISSING)
            if found is not _MISSING and found != value:
                raise MigrationError(
                    f"{where}.{name}: is {found!r}, but version {self.to_version} only "
                    f"reproduces {value!r} ({self.description}); this archive cannot be "
                    "migrated: serve it with the version that wrote it or retrain"
                )
        for name, value in self.add_arguments.items():
            migrated.setdefault(name, copy.deepcopy(value))
        if self.convert_config is not None:
            migrated = self.convert_config(migrated)
        return migrated

    def migrate_weights(self, state: Mapping[str, torch.Tensor], where: str) -> State:
        """The component's weights (keys relative to it) as the new version names them."""
        migrated: State = {}
        for key, tensor in state.items():
            if any(_covers(dropped, key) for dropped in self.drop_weights):
                continue
            migrated[_renamed(key, self.rename_weights)] = tensor
        for key, convert in self.convert_weights.items():
            if key not in migrated:
                raise MigrationError(
                    f"{where}: the weight {key!r} this migration converts is not in the archive "
                    f"({self.description})"
                )
            migrated[key] = convert(migrated[key])
        if self.convert_state is not None:
            migrated = self.convert_state(migrated)
        return migrated


@dataclass(frozen=True)
class LibraryMigration:
    """A state-dict change caused by a dependency of a component, not by the component.

    Applies to archives written with ``distribution`` older than ``before`` (its version as the
    manifest's environment recorded it; an archive that recorded none, e.g. an import, is
    treated as older when the keys are present). ``drop_weights`` are relative keys (exact, or
    ``*`` for one dotted segment) each checked by ``check`` before it is dropped, so only a
    value the new library recomputes itself is ever discarded.
    """

    distribution: str
    before: str
    description: str
    drop_weights: tuple[str, ...] = ()
    check: Callable[[str, torch.Tensor], bool] | None = None

    def matches(self, key: str) -> bool:
        return any(_pattern(dropped).fullmatch(key) for dropped in self.drop_weights)

    def migrate_weights(self, state: Mapping[str, torch.Tensor], where: str) -> State:
        migrated: State = {}
        for key, tensor in state.items():
            if self.matches(key):
                if self.check is not None and not self.check(key, tensor):
                    raise MigrationError(
                        f"{where}.{key}: holds values {self.distribution}>={self.before} would "
                        f"not recompute ({self.description}); refusing to drop it"
                    )
                continue
            migrated[key] = tensor
        return migrated


_MIGRATIONS: dict[tuple[type, str], dict[int, Migration]] = {}
_LIBRARY_MIGRATIONS: dict[tuple[type, str], list[LibraryMigration]] = {}


def register_migration(base: type, name: str, migration: Migration | LibraryMigration) -> None:
    """Declare ``migration`` for the component registered as ``name`` on ``base``."""
    if isinstance(migration, LibraryMigration):
        _LIBRARY_MIGRATIONS.setdefault((base, name), []).append(migration)
        return
    chain = _MIGRATIONS.setdefault((base, name), {})
    existing = chain.get(migration.from_version)
    if existing is not None and existing != migration:
        raise RegistryError(
            f"{base.__name__} {name!r} already has a migration from version "
            f"{migration.from_version} ({existing.description})",
            code=errors.BAD_REGISTRATION,
        )
    chain[migration.from_version] = migration


def migrations_of(base: type, name: str) -> dict[int, Migration]:
    """The registered migrations of a component, by the version they start from."""
    return dict(_MIGRATIONS.get((base, name), {}))


def library_migrations_of(base: type, name: str) -> list[LibraryMigration]:
    return list(_LIBRARY_MIGRATIONS.get((base, name), []))


def missing_link(base: type, name: str, from_version: int, to_version: int) -> int | None:
    """The first version in ``from_version .. to_version - 1`` with no migration, if any."""
    chain = _MIGRATIONS.get((base, name), {})
    for version in range(from_version, to_version):
        if version not in chain:
            return version
    return None


def migration_chain(base: type, name: str, from_version: int, to_version: int) -> list[Migration]:
    """The migrations taking version ``from_version`` to ``to_version``, in order."""
    chain = _MIGRATIONS.get((base, name), {})
    return [chain[version] for version in range(from_version, to_version)]


def _covers(pattern: str, key: str) -> bool:
    return key == pattern or (pattern.endswith(".") and key.startswith(pattern))


def _renamed(key: str, renames: Mapping[str, str]) -> str:
    for old, new in renames.items():
        if key == old:
            return new
        if old.endswith(".") and key.startswith(old):
            return new + key[len(old) :]
    return key


def _pattern(dotted: str) -> re.Pattern[str]:
    parts = ("[^.]+" if part == "*" else re.escape(part) for part in dotted.split("."))
    return re.compile(r"\.".join(parts))

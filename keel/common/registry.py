"""The registry: short names for component classes, per base class.

``@Tokenizer.register("whitespace")`` above a class makes ``{"type": "whitespace"}`` build it
wherever a ``Tokenizer`` is expected. Names are looked up on the base class that registered them.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from keel.common import errors
from keel.common.errors import RegistryError, did_you_mean

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Registration:
    """A registered class, optionally the name of a classmethod to build it with, and its
    version: bumped whenever its config arguments or state-dict keys change, with a registered
    migration from the previous version (``keel.common.migrations``)."""

    cls: type
    constructor: str | None = None
    version: int = 1


class Registrable:
    """A base class whose subclasses are registered under short names.

    ``default_implementation`` names the subclass used when a config omits ``type``.
    """

    _registry: ClassVar[dict[type, dict[str, Registration]]] = defaultdict(dict)
    default_implementation: ClassVar[str | None] = None

    @classmethod
    def register(
        cls,
        name: str,
        constructor: str | None = None,
        exist_ok: bool = False,
        *,
        version: int = 1,
    ) -> Callable[[T], T]:
        """Register the decorated class under ``name`` on this base class.

        ``version`` starts at 1; an author bumps it when a change would break archives made with
        the previous version, and registers the migration beside the class.
        """
        registry = Registrable._registry[cls]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RegistryError(
                f"{cls.__name__} {name!r}: version must be an integer >= 1, not {version!r}",
                code=errors.BAD_REGISTRATION,
            )

        def decorate(subclass: T) -> T:
            existing = registry.get(name)
            if (
                existing is not None
                and not exist_ok
                and _qualname(existing.cls) != _qualname(subclass)
            ):
                raise RegistryError(
                    f"{cls.__name__} already has {name!r} registered to "
                    f"{_qualname(existing.cls)}; cannot register {_qualname(subclass)} too",
                    code=errors.DUPLICATE_NAME,
                )
            registry[name] = Registration(subclass, constructor, version)
            return subclass

        return decorate

    @classmethod
    def resolve(cls, name: str) -> Registration:
        """The registration behind ``name``, or a RegistryError that suggests close names."""
        registry = Registrable._registry.get(cls, {})
        if name in registry:
            return registry[name]
        if "." in name:
            # A fully qualified class path works too, as in AllenNLP, but only for a module that
            # is already imported (keel's own, plugins, --include-package): a name read from a
            # config or an archive never makes keel import, and so run, a module.
            module_name, _, class_name = name.rpartition(".")
            found = getattr(sys.modules.get(module_name), class_name, None)
            if isinstance(found, type) and issubclass(found, cls):
                return Registration(found)
        raise RegistryError(unknown_name_message(cls, name), code=errors.UNKNOWN_COMPONENT)

    @classmethod
    def by_name(cls, name: str) -> type:
        return cls.resolve(name).cls

    @classmethod
    def list_available(cls) -> list[str]:
        """Registered names, the default implementation first."""
        names = sorted(Registrable._registry.get(cls, {}))
        default = cls.default_implementation
        if default in names:
            names.remove(default)
            names.insert(0, default)
        return names

    @classmethod
    def is_registered(cls, name: str) -> bool:
        return name in Registrable._registry.get(cls, {})

    @classmethod
    def name_of(cls, subclass: type) -> str | None:
        """The name ``subclass`` is registered under on this base, if any."""
        for name, registration in Registrable._registry.get(cls, {}).items():
            if registration.cls is subclass:
                return name
        return None


def unknown_name_message(base: type, name: str) -> str:
    available = Registrable._registry.get(base, {})
    message = f"{name!r} is not a registered {base.__name__}"
    suggestion = did_you_mean(name, available)
    if suggestion:
        message += f"; did you mean {suggestion!r}?"
    if available:
        message += f" Registered: {', '.join(sorted(available))}."
    message += (
        " If it comes from your own code or a plugin, pass --include-package with the module "
        "that defines it" + (f" ({name.rpartition('.')[0]})" if "." in name else "") + "."
    )
    return message


def registered_bases() -> list[type]:
    return sorted(Registrable._registry, key=_qualname)


def registered_base(qualified_name: str) -> type | None:
    """The Registrable base class whose ``module.QualName`` is ``qualified_name``, if one has
    registrations; looked up, never imported."""
    for base in Registrable._registry:
        if _qualname(base) == qualified_name:
            return base
    return None


def registry_snapshot() -> dict[str, dict[str, str]]:
    """Every registered name per base class and the class it builds, with ``@vN`` after it when
    its version is above 1: checked in as a fixture."""
    return {
        _qualname(base): {
            name: _qualname(registration.cls)
            + (f"@v{registration.version}" if registration.version > 1 else "")
            for name, registration in sorted(Registrable._registry[base].items())
        }
        for base in registered_bases()
    }


def import_module_and_submodules(package_name: str) -> None:
    """Import a module and, if it is a package, every submodule, so their classes register."""
    importlib.invalidate_caches()
    # A console script does not put the working directory on sys.path, but a user naming
    # --include-package my_project means the my_project folder right here.
    working_directory = os.getcwd()
    if working_directory not in sys.path and "" not in sys.path:
        sys.path.append(working_directory)
    try:
        module = importlib.import_module(package_name)
    except ImportError as error:
        raise RegistryError(
            f"could not import {package_name!r} given to --include-package: {error}",
            code=errors.INCLUDE_PACKAGE_FAILED,
        ) from error
    path = getattr(module, "__path__", None)
    if not path:
        return
    for info in pkgutil.walk_packages(path, prefix=f"{package_name}."):
        importlib.import_module(info.name)


def _qualname(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"

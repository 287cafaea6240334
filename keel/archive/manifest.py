"""The archive manifest (``manifest.json``): one typed, versioned object, read and written here.

Every command that looks inside an archive (load, verify, env, doctor, data, serve) reads the
manifest through ``Manifest.from_dict``; nothing else reads its keys.

Format history (``format_version``, the archive's format):

1. keel 0.1.0: the sections below; golden predictions format 1 (``logits`` and one decoded
   output, chosen by name).
2. Golden predictions format 2: each model declares its golden outputs
   (``Model.golden_outputs``), stored by name. The manifest's own sections are unchanged.

A newer format than this keel knows is refused (``KA007``) with the version numbers; every older
one is read by the explicit code path of its version.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy
import torch

import keel
from keel.common import errors
from keel.common.errors import ArchiveError

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
LOCAL_SOURCE = "local source"


@dataclass(frozen=True)
class FileEntry:
    """sha256 and size of one archive member."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ComponentRecord:
    """A registered component the model was built from: where its name resolved at training."""

    base: str  # dotted path of the Registrable base class, e.g. keel.models.model.Model
    name: str  # the registered name, e.g. basic_classifier
    module: str  # the module defining the class
    class_name: str  # its qualified name in that module
    distribution: str | None  # name==version, or "local source"
    paths: tuple[str, ...] = ()  # the config paths that use it
    source_sha256: str | None = None  # for components outside keel: their module's source
    #: the component's registered version when the archive was written (1 for archives written
    #: before components had versions)
    version: int = 1

    @property
    def base_name(self) -> str:
        return self.base.rpartition(".")[2]

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "base": self.base,
            "name": self.name,
            "module": self.module,
            "class": self.class_name,
            "distribution": self.distribution,
            "paths": list(self.paths),
            "version": self.version,
        }
        if self.source_sha256 is not None:
            entry["source_sha256"] = self.source_sha256
        return entry

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> ComponentRecord:
        return cls(
            base=_text(entry, "base"),
            name=_text(entry, "name"),
            module=_text(entry, "module"),
            class_name=_text(entry, "class"),
            distribution=entry.get("distribution"),
            paths=tuple(str(path) for path in entry.get("paths") or ()),
            source_sha256=entry.get("source_sha256"),
            version=_version(entry.get("version", 1)),
        )


@dataclass(frozen=True)
class DataFileRecord:
    """A file the training run read: where it was, its sha256 and size."""

    path: str
    sha256: str
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass
class Manifest:
    """Everything ``manifest.json`` says. Sections another module owns the schema of (the
    environment capture, fingerprints, bundled code) stay plain JSON here; their owners parse
    them. Sections this keel does not know are kept in ``extra`` and written back unchanged."""

    format_version: int = FORMAT_VERSION
    keel_version: str = keel.__version__
    created_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    state_dict_schema: dict[str, Any] = field(default_factory=dict)
    validation_metrics: dict[str, Any] = field(default_factory=dict)
    include_packages: list[str] = field(default_factory=list)
    custom_code: dict[str, Any] = field(default_factory=dict)
    components: list[ComponentRecord] | None = None
    environment: dict[str, Any] | None = None
    data_files: dict[str, DataFileRecord] = field(default_factory=dict)
    preprocessing_fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)
    vocabulary_sha256: str | None = None
    tokenizer_fingerprint: dict[str, Any] | None = None
    reproducibility: dict[str, Any] = field(default_factory=dict)
    imported_from: dict[str, Any] | None = None
    #: the code the run was made from: ``{"git_commit": ..., "git_dirty": ...}``, when the
    #: working directory was a git checkout
    source: dict[str, Any] | None = None
    #: the config's optional ``model_name`` / ``model_version`` (registries, trackers)
    model_name: str | None = None
    model_version: str | None = None
    #: every migration applied to this archive's components, oldest first (``keel archive
    #: migrate``): component, config path, versions, what changed, when and by which keel
    migrations: list[dict[str, Any]] = field(default_factory=list)
    #: a distributed run: world size, backend, every distinct node environment with its ranks
    #: and hosts, and the risky differences the cluster gate let through
    distributed: dict[str, Any] | None = None
    #: ``keel rebuild``: the original archive's sha256 and path, and the comparison with it
    rebuilt_from: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls) -> Manifest:
        """A manifest for an archive written now, by this keel, with this stack's versions."""
        return cls(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            versions={
                "python": ".".join(str(part) for part in sys.version_info[:3]),
                "torch": torch.__version__,
                "numpy": numpy.__version__,
            },
        )

    # -- reading -----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, document: Any, where: str = "manifest.json") -> Manifest:
        """The manifest of ``document`` (parsed JSON); ArchiveError (KA002/KA007) naming what is
        wrong when it is not one this keel can read."""
        if not isinstance(document, dict):
            raise _corrupt(where, f"holds a {type(document).__name__}, not an object")
        version = document.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise _corrupt(where, f"format_version is {version!r}, not an integer")
        if version not in READABLE_FORMATS:
            raise ArchiveError(
                f"{where}: archive format version {version} is not supported by keel "
                f"{keel.__version__} (it reads versions {', '.join(map(str, READABLE_FORMATS))})"
                + ("; upgrade keel to read it" if version > FORMAT_VERSION else ""),
                code=errors.ARCHIVE_FORMAT_VERSION,
            )
        try:
            return cls._read(document)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise _corrupt(
                where, f"has a malformed section ({type(error).__name__}: {error})"
            ) from error

    @classmethod
    def _read(cls, document: dict[str, Any]) -> Manifest:
        # Formats 1 and 2 share every manifest section (2 changed the golden file only).
        known = {item.name for item in fields(cls)} - {"extra", "files", "components"}
        values: dict[str, Any] = {}
        for name in known:
            if name in document:
                values[name] = document[name]
        files = document.get("files", {})
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
        values["files"] = {
            str(name): FileEntry(str(entry["sha256"]), int(entry["size"]))
            for name, entry in files.items()
        }
        components = document.get("components")
        if components is not None:
            if not isinstance(components, list):
                raise TypeError("components is not a list")
            values["components"] = [ComponentRecord.from_dict(entry) for entry in components]
        data_files = document.get("data_files") or {}
        values["data_files"] = {
            str(role): DataFileRecord(
                str(entry.get("path", "")), _text(entry, "sha256"), entry.get("size")
            )
            for role, entry in data_files.items()
        }
        for name, kind in (
            ("versions", dict),
            ("state_dict_schema", dict),
            ("validation_metrics", dict),
            ("include_packages", list),
            ("migrations", list),
            ("custom_code", dict),
            ("preprocessing_fingerprints", dict),
            ("reproducibility", dict),
        ):
            if name in values and not isinstance(values[name], kind):
                raise TypeError(f"{name} is not a{'n object' if kind is dict else ' list'}")
        for name in (
            "environment",
            "tokenizer_fingerprint",
            "imported_from",
            "source",
            "distributed",
            "rebuilt_from",
        ):
            if values.get(name) is not None and not isinstance(values[name], dict):
                raise TypeError(f"{name} is not an object")
        extra = {key: value for key, value in document.items() if key not in _KNOWN_KEYS}
        return cls(**values, extra=extra)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "manifest.json") -> Manifest:
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise _corrupt(where, f"is not valid JSON ({type(error).__name__}: {error})") from error
        return cls.from_dict(document, where)

    # -- writing -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = dict(self.extra)
        document.update(
            {
                "format_version": self.format_version,
                "keel_version": self.keel_version,
                "created_at": self.created_at,
                "versions": self.versions,
                "files": {
                    name: {"sha256": entry.sha256, "size": entry.size}
                    for name, entry in sorted(self.files.items())
                },
                "state_dict_schema": self.state_dict_schema,
                "validation_metrics": self.validation_metrics,
                "include_packages": self.include_packages,
                "custom_code": self.custom_code,
                "data_files": {role: entry.to_dict() for role, entry in self.data_files.items()},
                "preprocessing_fingerprints": self.preprocessing_fingerprints,
                "vocabulary_sha256": self.vocabulary_sha256,
                "tokenizer_fingerprint": self.tokenizer_fingerprint,
                "reproducibility": self.reproducibility,
            }
        )
        if self.components is not None:
            document["components"] = [component.to_dict() for component in self.components]
        if self.environment is not None:
            document["environment"] = self.environment
        if self.imported_from is not None:
            document["imported_from"] = self.imported_from
        if self.migrations:
            document["migrations"] = self.migrations
        for name in ("source", "model_name", "model_version", "distributed", "rebuilt_from"):
            if getattr(self, name) is not None:
                document[name] = getattr(self, name)
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    # -- what the sections mean ---------------------------------------------------------------

    def required_distributions(self) -> list[str]:
        """The distributions this archive's model depends on: those providing its components
        (keel itself included). The one answer every command uses to decide which installed
        packages matter (``verify``'s environment step, ``env diff ARCHIVE``, ``doctor``)."""
        if self.components is None:
            return []
        names = {
            component.distribution.split("==")[0]
            for component in self.components
            if component.distribution and component.distribution != LOCAL_SOURCE
        }
        return sorted(names)

    def recorded_role(self, sha256: str) -> str | None:
        """The role (train, validation, ...) of the data file with ``sha256`` in this run."""
        for role, entry in self.data_files.items():
            if entry.sha256 == sha256 and role in self.preprocessing_fingerprints:
                return role
        return None


_KNOWN_KEYS = {item.name for item in fields(Manifest)} - {"extra"}


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is {type(value).__name__}, not a string")
    return value


def _version(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"component version {value!r} is not an integer >= 1")
    return value


def _corrupt(where: str, what: str) -> ArchiveError:
    return ArchiveError(f"{where}: manifest.json {what}", code=errors.ARCHIVE_CORRUPT)

"""``keel archive inspect``: what is inside an archive, without building its model.

Everything comes from the manifest and the members themselves (hashed here), within the archive
reader's limits; no component is constructed and no code is imported.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

from keel.archive.archive import (
    ArchiveLimits,
    archive_snapshot,
    check_integrity,
    describe_files,
    opened_archive,
)
from keel.archive.manifest import ComponentRecord, Manifest
from keel.archive.signing import signature_path, verify_signature
from keel.common.errors import KeelError, RegistryError
from keel.common.filenames import GOLDEN_FILE
from keel.common.migrations import missing_link
from keel.common.registry import Registrable, registered_base


def inspect_archive(
    archive_path: str | os.PathLike[str],
    *,
    limits: ArchiveLimits | None = None,
    trusted_keys: Sequence[Any] = (),
) -> dict[str, Any]:
    """A JSON-ready description of the archive: format, provenance, components (recorded and
    installed versions), files, weights schema, environment, data, golden sample, signature."""
    with archive_snapshot(archive_path, limits) as snapshot:
        signature = _signature_status(snapshot, trusted_keys)
        with opened_archive(snapshot, limits=limits, check_hashes=False) as (root, manifest):
            integrity = check_integrity(root, manifest)
            actual = describe_files(root)
            golden = _golden_summary(root / GOLDEN_FILE)
        files = [
            {
                "name": name,
                "size": entry.size,
                "sha256": entry.sha256,
                "matches_manifest": manifest.files.get(name) == entry,
            }
            for name, entry in sorted(actual.items())
        ]
        return {
            "archive": {
                "path": str(snapshot.source),
                "sha256": snapshot.sha256,
                "size": snapshot.size,
                "format_version": manifest.format_version,
                "keel_version": manifest.keel_version,
                "created_at": manifest.created_at,
                "model_name": manifest.model_name,
                "model_version": manifest.model_version,
                "imported_from": manifest.imported_from,
                "source": manifest.source,
            },
            "integrity": {"ok": integrity.ok, "problems": integrity.describe() or None},
            "signature": signature,
            "components": [_component(record) for record in manifest.components or []],
            "migrations": manifest.migrations,
            "files": files,
            "state_dict": state_dict_summary(manifest.state_dict_schema),
            "environment": environment_summary(manifest.environment),
            "data_files": {role: entry.to_dict() for role, entry in manifest.data_files.items()},
            "validation_metrics": manifest.validation_metrics,
            "reproducibility": manifest.reproducibility,
            "tokenizer_fingerprint": _fingerprint_summary(manifest),
            "golden": golden,
            "custom_code": manifest.custom_code,
        }


def state_dict_summary(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Tensor and parameter counts, dtypes, and the same per top-level module."""
    groups: dict[str, dict[str, int]] = {}
    dtypes: Counter[str] = Counter()
    total = 0
    for key, entry in schema.items():
        count = prod(int(size) for size in entry.get("shape", []))
        total += count
        dtypes[str(entry.get("dtype"))] += 1
        group = groups.setdefault(key.split(".")[0], {"tensors": 0, "values": 0})
        group["tensors"] += 1
        group["values"] += count
    return {"tensors": len(schema), "values": total, "dtypes": dict(dtypes), "modules": groups}


def environment_summary(environment: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The few facts of a recorded environment people ask first."""
    if environment is None:
        return None
    torch_info = environment.get("torch") or {}
    platform = environment.get("platform") or {}
    gpu = environment.get("gpu") or {}
    return {
        "python": (environment.get("python") or {}).get("version"),
        "platform": platform.get("platform"),
        "torch": torch_info.get("version"),
        "cuda": torch_info.get("cuda"),
        "gpus": [device.get("name") for device in gpu.get("devices") or []],
        "key_packages": environment.get("key_packages") or {},
        "captured_at": environment.get("captured_at"),
    }


def _component(record: ComponentRecord) -> dict[str, Any]:
    installed, status = component_status(record)
    return {
        "component": record.base_name,
        "name": record.name,
        "version": record.version,
        "installed_version": installed,
        "status": status,
        "class": f"{record.module}.{record.class_name}",
        "distribution": record.distribution,
        "paths": list(record.paths),
    }


def component_status(record: ComponentRecord) -> tuple[int | None, str]:
    """(installed version, what loading it here needs): ``current``, ``migrates vA -> vB``,
    ``newer than installed``, ``no migration from vK`` or ``not installed``."""
    base = registered_base(record.base)
    if base is None or not issubclass(base, Registrable):
        return None, "not installed"
    try:
        registration = base.resolve(record.name)
    except RegistryError:
        return None, "not installed"
    installed = registration.version
    if record.version == installed:
        return installed, "current"
    if record.version > installed:
        return installed, "newer than installed"
    gap = missing_link(base, record.name, record.version, installed)
    if gap is not None:
        return installed, f"no migration from v{gap}"
    return installed, f"migrates v{record.version} -> v{installed}"


def _signature_status(snapshot: Any, trusted_keys: Sequence[Any]) -> dict[str, Any]:
    path = signature_path(snapshot.source)
    if not path.is_file():
        return {"status": "unsigned"}
    try:
        key_id = json.loads(path.read_text(encoding="utf-8")).get("key_id")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"status": "invalid", "reason": f"{path.name} is not a readable signature"}
    if not trusted_keys:
        return {
            "status": "not checked",
            "key_id": key_id,
            "reason": "signed, but no trusted key given (--signer / --trusted-keys)",
        }
    try:
        check = verify_signature(snapshot, trusted_keys)
    except KeelError as error:
        return {"status": "invalid", "key_id": key_id, "reason": error.message}
    return {"status": "valid", "key_id": check.key_id}


def _golden_summary(path: Any) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        scores = document.get("scores") or []
        decoded = document.get("decoded") or []
        outputs = sorted(
            {name for item in [*scores, *decoded] if isinstance(item, dict) for name in item}
        )
        return {
            "format": document.get("format"),
            "sample_size": len(document.get("records") or []),
            "seed": document.get("seed"),
            "device": document.get("device"),
            "outputs": outputs or (["logits", "decoded"] if document.get("format") == 1 else []),
        }
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as error:
        return {"error": f"unreadable: {error}"}


def _fingerprint_summary(manifest: Manifest) -> dict[str, Any] | None:
    fingerprint = manifest.tokenizer_fingerprint
    if not fingerprint:
        return None
    return {key: fingerprint.get(key) for key in ("format", "corpus_version", "digest", "tokens")}

"""Archiving a trained model and loading it back, strictly."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from keel.archive.archive import (
    ArchiveLimits,
    ArchiveSnapshot,
    archive_snapshot,
    opened_archive,
    write_archive,
)
from keel.archive.bundled_code import (
    bundled_packages,
    custom_packages,
    describe_custom_code,
    load_bundled_code,
    source_differences,
    stage_code,
)
from keel.archive.components import check_components
from keel.archive.manifest import Manifest
from keel.archive.migration import (
    PlannedMigration,
    migrate_config,
    migrate_weights,
    plan_migrations,
)
from keel.archive.resources import pack_resources, unpack_resources
from keel.archive.signing import verify_signature
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.common.filenames import (
    ARCHIVE_NAME,
    CONFIG_NAME,
    ENV_FILE,
    GOLDEN_FILE,
    VOCABULARY_DIR,
    WEIGHTS_NAME,
)
from keel.common.from_params import build
from keel.common.params import dump_config
from keel.common.plugins import import_plugins
from keel.common.weights import read_weights, save_weights
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model
from keel.modules.token_embedders.embedding import remove_pretrained_files

logger = logging.getLogger(__name__)


@dataclass
class Archive:
    """A loaded archive: the model in eval mode, its readers, config, vocabulary and manifest."""

    model: Model
    dataset_reader: DatasetReader
    validation_dataset_reader: DatasetReader
    config: dict[str, Any]
    vocab: Vocabulary
    manifest: Manifest
    extras: dict[str, Any] = field(default_factory=dict)
    #: the component migrations applied in memory while loading (older component versions)
    migrations: list[PlannedMigration] = field(default_factory=list)


def state_dict_schema(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """Every weight's shape and dtype, by key."""
    return {
        key: {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
        for key, tensor in sorted(state.items())
    }


def weight_mismatches(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Every missing, unexpected or reshaped weight, each as one line."""
    expected = model.state_dict()
    problems = [
        f"missing: {key} (expected shape {list(expected[key].shape)})"
        for key in sorted(expected.keys() - state.keys())
    ]
    problems += [
        f"unexpected: {key} (shape {list(state[key].shape)})"
        for key in sorted(state.keys() - expected.keys())
    ]
    for key in sorted(expected.keys() & state.keys()):
        want, got = expected[key], state[key]
        if want.shape != got.shape:
            problems.append(
                f"wrong shape: {key} expected {list(want.shape)}, found {list(got.shape)}"
            )
        elif want.dtype != got.dtype:
            problems.append(f"wrong dtype: {key} expected {want.dtype}, found {got.dtype}")
    return problems


def load_weights_strictly(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    problems = weight_mismatches(model, state)
    if problems:
        raise ArchiveError(
            f"the weights do not fit the model built from the config ({len(problems)} "
            "problem(s)):\n  " + "\n  ".join(problems),
            code=errors.WEIGHTS_MISMATCH,
        )
    model.load_state_dict(dict(state), strict=True)


def archive_model(
    serialization_dir: str | os.PathLike[str],
    *,
    model: Model,
    vocab: Vocabulary,
    config: Mapping[str, Any],
    manifest: Manifest | None = None,
    metrics: Mapping[str, Any] | None = None,
    include_packages: Iterable[str] = (),
    golden: Mapping[str, Any] | None = None,
    archive_path: str | os.PathLike[str] | None = None,
    bundle_code: bool = False,
) -> Path:
    """Write ``model.tar.gz`` (config, safetensors weights, vocabulary, manifest) atomically.

    ``manifest`` carries what the caller knows of how the model was made (components, data
    hashes, fingerprints, seeds); this fills in the rest (weights schema, metrics, environment,
    custom code, member hashes). ``golden`` is stored as the golden predictions file. The
    sources of custom (non-keel) packages are always hashed; ``bundle_code`` also stores them.
    """
    directory = Path(serialization_dir)
    destination = Path(archive_path) if archive_path else directory / ARCHIVE_NAME
    manifest = manifest if manifest is not None else Manifest.new()
    manifest.state_dict_schema = state_dict_schema(model.state_dict())
    manifest.validation_metrics = {
        key: value
        for key, value in (metrics or {}).items()
        if key.startswith(("best_", "validation_"))
    }
    manifest.include_packages = list(include_packages)
    packages = custom_packages(manifest.components or [], include_packages)
    manifest.custom_code = {
        "bundled": bool(bundle_code and packages),
        "packages": describe_custom_code(packages),
    }
    env_file = directory / ENV_FILE
    if env_file.is_file():
        manifest.environment = json.loads(env_file.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix=".archive-", dir=directory) as staging_name:
        staging = Path(staging_name)
        config = pack_resources(dict(config), staging)
        (staging / CONFIG_NAME).write_text(dump_config(config), encoding="utf-8")
        save_weights(model.state_dict(), staging / WEIGHTS_NAME)
        vocab.save_to_files(str(staging / VOCABULARY_DIR))
        if golden is not None:
            golden_path = staging / GOLDEN_FILE
            golden_path.parent.mkdir(parents=True)
            golden_path.write_text(json.dumps(golden), encoding="utf-8")
        if bundle_code:
            stage_code(packages, staging)
        write_archive(staging, destination, manifest)
    return destination


def load_archive(
    archive_path: str | os.PathLike[str] | ArchiveSnapshot,
    *,
    include_packages: Iterable[str] = (),
    limits: ArchiveLimits | None = None,
    trust_bundled_code: bool = False,
    require_signature: bool = False,
    trusted_keys: Sequence[Any] = (),
) -> Archive:
    """Load an archive's model (eval mode), readers and config; every check is strict.

    With ``require_signature`` (or any ``trusted_keys``), the archive must carry a valid
    detached signature by one of ``trusted_keys`` (public keys from
    keel.archive.signing.trusted_public_keys) before a byte of it is unpacked.
    Code bundled in the archive is imported only with ``trust_bundled_code``, after its hashes
    are checked. A custom component that cannot be found fails before the config is read, with
    the registered name, its module and the fix.
    """
    import_plugins(include_packages)
    with (
        archive_snapshot(archive_path, limits) as snapshot,
        opened_archive(_checked(snapshot, require_signature, trusted_keys), limits=limits) as (
            root,
            manifest,
        ),
    ):
        return load_opened_archive(
            root, manifest, snapshot.source, trust_bundled_code=trust_bundled_code
        )


def load_opened_archive(
    root: Path,
    manifest: Manifest,
    archive_path: str | os.PathLike[str],
    *,
    trust_bundled_code: bool = False,
) -> Archive:
    """Build the model of an archive already extracted at ``root`` (``opened_archive``),
    applying any component migrations in memory; ``archive_path`` is what messages name.
    ``load_archive`` is this plus the snapshot, signature and extraction."""
    if trust_bundled_code:
        load_bundled_code(root, manifest)
    risks = check_archive_components(archive_path, manifest, trust_bundled_code)
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise ArchiveError(f"{archive_path}: no {CONFIG_NAME}", code=errors.ARCHIVE_MISSING_MEMBER)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ArchiveError(
            f"{archive_path}: {CONFIG_NAME} is not valid JSON ({type(error).__name__}: {error})",
            code=errors.ARCHIVE_CORRUPT,
        ) from error
    missing = [
        section
        for section in ("model", "dataset_reader")
        if not isinstance(config, dict) or not isinstance(config.get(section), dict)
    ]
    if missing:
        raise ArchiveError(
            f"{archive_path}: {CONFIG_NAME} has no {' or '.join(missing)} section",
            code=errors.ARCHIVE_CORRUPT,
        )
    plan = plan_migrations(manifest, str(archive_path))
    for planned in plan:
        logger.info("%s: migrating %s", archive_path, planned.describe())
    config = migrate_config(config, plan)
    # Weights come from the archive, so the vectors an embedding started from are not needed.
    buildable = remove_pretrained_files(unpack_resources(config, root))
    vocab = Vocabulary.from_files(str(root / VOCABULARY_DIR))
    reader = build(DatasetReader, buildable["dataset_reader"], path="dataset_reader")
    validation_section = buildable.get("validation_dataset_reader")
    validation_reader = (
        build(DatasetReader, validation_section, path="validation_dataset_reader")
        if validation_section
        else reader
    )
    built: dict[str, Any] = {}
    model = build(Model, buildable["model"], path="model", extras={"vocab": vocab}, built=built)
    state = migrate_weights(read_weights(root / WEIGHTS_NAME), model, built, plan)
    load_weights_strictly(model, state)
    model.eval()
    return Archive(
        model,
        reader,
        validation_reader,
        config,
        vocab,
        manifest,
        {"component_risks": risks},
        plan,
    )


def _checked(
    snapshot: ArchiveSnapshot, require_signature: bool, trusted_keys: Sequence[Any]
) -> ArchiveSnapshot:
    """``snapshot``, after its signature checked out when one is asked for."""
    if require_signature or trusted_keys:
        verify_signature(snapshot, trusted_keys)
    return snapshot


def check_archive_components(
    archive_path: str | os.PathLike[str], manifest: Manifest, trusted_code: bool
) -> list[str]:
    """Raise if a recorded component is unavailable here; return the risks (changed sources)."""
    recorded = manifest.components
    if recorded is None:
        return []
    problems, risks = check_components(recorded)
    if problems:
        bundled = bundled_packages(manifest)
        hint = ""
        if bundled and not trusted_code:
            hint = (
                f"\n  the archive bundles the source of {', '.join(bundled)}: if you trust it, "
                "pass --trust-bundled-code (trust_bundled_code=True)"
            )
        raise ArchiveError(
            f"{archive_path}: {len(problems)} component(s) the model was built from are not "
            "available:\n  " + "\n  ".join(problems) + hint,
            code=errors.UNKNOWN_COMPONENT,
        )
    risks += source_differences(manifest)
    for risk in risks:
        logger.warning("%s: %s", archive_path, risk)
    return risks

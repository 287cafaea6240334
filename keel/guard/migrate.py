"""``keel archive migrate``: write an archive's component migrations into a new archive.

Loading an archive with older component versions migrates it in memory every time; migrating
it once writes the result: the migrated config and weights, the components at their installed
versions, the history of every migration applied (``manifest.migrations``), and golden
predictions recorded afresh. Before anything is written, the migrated model must reproduce the
original archive's golden predictions (a migration that changes predictions is wrong, and the
archive is refused), unless the user explicitly accepts an archive with nothing to check.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keel
from keel.archive.archive import ArchiveLimits, archive_snapshot, opened_archive
from keel.archive.migration import PlannedMigration, migrated_components
from keel.archive.model_archive import archive_model, load_opened_archive
from keel.archive.resources import unpack_resources
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.common.filenames import GOLDEN_FILE
from keel.common.plugins import import_plugins
from keel.guard.golden import Golden, agreement, golden_document, replay

#: the largest |score difference| a migration may introduce on the golden inputs (CPU)
MIGRATION_TOLERANCE = 1e-5


@dataclass
class MigrationResult:
    """What ``migrate_archive`` did: the migrations applied, where it wrote, what it checked."""

    source: str
    destination: Path | None
    applied: list[PlannedMigration]
    golden_check: str

    @property
    def migrated(self) -> bool:
        return self.destination is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": str(self.destination) if self.destination else None,
            "migrations": [planned.to_dict() for planned in self.applied],
            "golden_check": self.golden_check,
        }


def migrate_archive(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    include_packages: Iterable[str] = (),
    trust_bundled_code: bool = False,
    limits: ArchiveLimits | None = None,
    tolerance: float = MIGRATION_TOLERANCE,
    allow_unverified: bool = False,
) -> MigrationResult:
    """Migrate ``source``'s components to the installed versions and write ``destination``.

    Nothing is written when nothing needs migrating. Raises ArchiveError (``KA012``) when the
    migrated model does not reproduce the golden predictions within ``tolerance``, or when the
    archive has none to check and ``allow_unverified`` is not set.
    """
    import_plugins(include_packages)
    target = Path(destination)
    with (
        archive_snapshot(source, limits) as snapshot,
        opened_archive(snapshot, limits=limits) as (root, manifest),
    ):
        where = str(snapshot.source)
        archive = load_opened_archive(root, manifest, where, trust_bundled_code=trust_bundled_code)
        if not archive.migrations:
            return MigrationResult(where, None, [], "not needed: nothing to migrate")
        golden_path = root / GOLDEN_FILE
        if golden_path.is_file():
            try:
                golden = Golden.from_dict(json.loads(golden_path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
                raise ArchiveError(
                    f"{where}: {GOLDEN_FILE} is unreadable ({error})", code=errors.ARCHIVE_CORRUPT
                ) from error
            now = replay(
                archive.model,
                archive.validation_dataset_reader,
                archive.vocab,
                golden.records,
                golden.batch_size,
                golden_format=golden.format,
            )
            result = agreement(golden.scores, golden.decoded, now)
            if not result.within(tolerance):
                applied = "; ".join(planned.describe() for planned in archive.migrations)
                raise ArchiveError(
                    f"{where}: the migrated model does not reproduce the archive's golden "
                    f"predictions ({result.describe(tolerance)}); a migration applied is wrong "
                    f"or incomplete: {applied}",
                    code=errors.MIGRATION_FAILED,
                )
            golden_check = result.describe(tolerance)
            records, seed = golden.records, golden.seed
        elif allow_unverified:
            golden_check = "not checked: the archive has no golden predictions (--allow-unverified)"
            records, seed = [], None
        else:
            raise ArchiveError(
                f"{where}: has no golden predictions, so nothing can show that the migrated "
                "model predicts as the original did; pass --allow-unverified to migrate it "
                "anyway (recorded in the manifest)",
                code=errors.MIGRATION_FAILED,
            )
        new_manifest = copy.deepcopy(manifest)
        new_manifest.keel_version = keel.__version__
        new_manifest.components = migrated_components(
            manifest.components or [], archive.migrations, f"keel=={keel.__version__}"
        )
        applied_at = datetime.now(UTC).isoformat(timespec="seconds")
        source_sha256 = snapshot.sha256
        new_manifest.migrations = [
            *manifest.migrations,
            *(
                {
                    **planned.to_dict(),
                    "applied_by": f"keel {keel.__version__}",
                    "applied_at": applied_at,
                    "source_sha256": source_sha256,
                    "golden_check": golden_check,
                }
                for planned in archive.migrations
            ),
        ]
        golden_new = (
            golden_document(
                archive.model,
                archive.validation_dataset_reader,
                archive.vocab,
                records,
                seed=seed,
            )
            if records
            else None
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".migrate-", dir=target.parent) as work:
            archive_model(
                work,
                model=archive.model,
                vocab=archive.vocab,
                config=unpack_resources(archive.config, root),
                manifest=new_manifest,
                metrics=manifest.validation_metrics,
                include_packages=manifest.include_packages,
                golden=golden_new,
                archive_path=target,
                bundle_code=bool(manifest.custom_code.get("bundled")),
            )
    return MigrationResult(where, target, archive.migrations, golden_check)

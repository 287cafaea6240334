"""Helpers for testing models built on keel (yours and keel's own)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.guard.results import Report
from keel.guard.verify import verify_archive
from keel.pipeline.train import TrainingResult, train_model


def ensure_model_can_train_save_and_load(
    config: Mapping[str, Any],
    serialization_dir: str | os.PathLike[str],
    *,
    include_packages: tuple[str, ...] = (),
) -> tuple[TrainingResult, Report]:
    """Train ``config``, archive it, and verify the archive exactly as ``keel verify`` does.

    Raises AssertionError naming every verify step that failed or could not check; returns the
    training result and the report for further checks.
    """
    result = train_model(
        config, Path(serialization_dir), quiet=True, include_packages=include_packages, force=True
    )
    report = verify_archive(result.archive_path, include_packages=include_packages)
    if not report.ok:
        failures = "\n".join(
            f"  {check.name} ({check.status}): {check.reason}"
            for check in report.checks
            if check.blocks
        )
        raise AssertionError(f"the archive does not reproduce the trained model:\n{failures}")
    return result, report

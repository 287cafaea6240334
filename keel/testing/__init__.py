"""Helpers for testing models built on keel (yours and keel's own)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.common import errors
from keel.common.errors import ConfigurationError
from keel.common.params import load_config
from keel.common.plugins import import_plugins
from keel.guard.results import Report
from keel.guard.verify import verify_archive
from keel.pipeline.train import TrainingResult, train_model


def ensure_model_can_train_save_and_load(
    config: Mapping[str, Any] | str | os.PathLike[str],
    serialization_dir: str | os.PathLike[str],
    *,
    include_packages: tuple[str, ...] = (),
    ext_vars: Mapping[str, str] | None = None,
    overrides: str | Mapping[str, Any] | None = None,
) -> tuple[TrainingResult, Report]:
    """Train ``config`` (a dict, or the path of a Jsonnet/JSON config read with ``ext_vars``
    and ``overrides``), archive it, and verify the archive exactly as ``keel verify`` does.
    ``include_packages`` are imported first, as ``--include-package`` does.

    Raises AssertionError naming every verify step that failed or could not check; returns the
    training result and the report for further checks.
    """
    import_plugins(include_packages)
    if isinstance(config, str | os.PathLike):
        config = load_config(Path(config), overrides=overrides, ext_vars=dict(ext_vars or {}))
    elif not isinstance(config, Mapping):
        raise ConfigurationError(
            f"ensure_model_can_train_save_and_load takes a config dict or the path of a config "
            f"file, not a {type(config).__name__}",
            code=errors.WRONG_TYPE,
        )
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

"""``keel rebuild``: retrain an archive in this environment and prove the new model equivalent.

The archive holds everything a rebuild needs: the resolved config (seeds included), the sha256
of every data file it read, golden inputs, the training environment. ``rebuild_archive`` finds
each data file by its recorded hash (at its recorded path or under the given folders; bytes
that differ are refused, or with ``allow_data_change`` recorded), trains with the archived
config here, and compares the two models:

- validation metrics: the delta of every recorded metric (per class included);
- decoded outputs on the golden inputs and on the whole validation file: agreement;
- raw scores on the same inputs: the distribution of |differences|;
- the environment of the two training runs (``keel env diff``'s rules), the tokenizer
  fingerprint, and whether the weights are bit-identical (expected on the same CPU stack).

Verdict ``equivalent`` when every metric moved at most ``metric_tolerance`` and the decoded
outputs agree at least ``min_agreement``, else ``drifted`` with the reasons and the likely
causes. The rebuilt archive records ``rebuilt_from`` (the original's sha256 and the comparison).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import torch

from keel.archive.archive import (
    ArchiveLimits,
    archive_snapshot,
    opened_archive,
    read_manifest,
    write_archive,
)
from keel.archive.manifest import Manifest
from keel.archive.model_archive import Archive, load_opened_archive
from keel.archive.resources import unpack_resources
from keel.common import errors
from keel.common.errors import DataError
from keel.common.filenames import GOLDEN_FILE, MANIFEST_NAME
from keel.common.hashing import sha256_file
from keel.common.plugins import import_plugins
from keel.guard.env_diff import BREAKING, RISKY, diff_environments
from keel.guard.golden import Golden, Replay, agreement, replay
from keel.pipeline.train import train_model

#: the largest move of any validation metric an equivalent rebuild may show
DEFAULT_METRIC_TOLERANCE = 0.01
#: the smallest share of identical decoded outputs an equivalent rebuild may show
DEFAULT_MIN_AGREEMENT = 0.99
_DATA_KEYS = {
    "train": "train_data_path",
    "validation": "validation_data_path",
    "test": "test_data_path",
}


@dataclass
class LocatedFile:
    role: str
    recorded_path: str
    recorded_sha256: str
    path: str
    sha256: str

    @property
    def changed(self) -> bool:
        return self.sha256 != self.recorded_sha256


@dataclass
class RebuildReport:
    """The comparison of a rebuilt model with the original, and the verdict."""

    original: str
    original_sha256: str
    rebuilt: str
    verdict: str = "equivalent"
    reasons: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    metric_deltas: dict[str, dict[str, float]] = field(default_factory=dict)
    golden: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    weights_bit_identical: bool = False
    environment: dict[str, Any] | None = None
    tokenizer_changed: bool | None = None
    tolerances: dict[str, float] = field(default_factory=dict)
    #: gold x predicted label counts on the validation file, for both models (classifiers)
    confusion: dict[str, Any] | None = None

    @property
    def equivalent(self) -> bool:
        return self.verdict == "equivalent"

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "original_sha256": self.original_sha256,
            "rebuilt": self.rebuilt,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "causes": self.causes,
            "data": self.data,
            "metric_deltas": self.metric_deltas,
            "golden": self.golden,
            "validation": self.validation,
            "weights_bit_identical": self.weights_bit_identical,
            "environment": self.environment,
            "tokenizer_changed": self.tokenizer_changed,
            "tolerances": self.tolerances,
            "confusion": self.confusion,
        }


def rebuild_archive(
    archive_path: str | os.PathLike[str],
    serialization_dir: str | os.PathLike[str],
    *,
    data_dirs: Iterable[str | os.PathLike[str]] = (),
    allow_data_change: bool = False,
    metric_tolerance: float = DEFAULT_METRIC_TOLERANCE,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    include_packages: Iterable[str] = (),
    trust_bundled_code: bool = False,
    force: bool = False,
    quiet: bool = True,
    limits: ArchiveLimits | None = None,
) -> RebuildReport:
    """Retrain ``archive_path``'s model into ``serialization_dir`` and compare; see the module
    docstring. Raises DataError (``KD004``) naming a data file that cannot be found, or whose
    bytes differ without ``allow_data_change``."""
    import_plugins(include_packages)
    with (
        archive_snapshot(archive_path, limits) as snapshot,
        opened_archive(snapshot, limits=limits) as (root, manifest),
    ):
        where = str(snapshot.source)
        original = load_opened_archive(root, manifest, where, trust_bundled_code=trust_bundled_code)
        located = locate_data(manifest, [Path(d) for d in data_dirs], where, allow_data_change)
        config = unpack_resources(original.config, root)
        for item in located:
            key = _DATA_KEYS.get(item.role)
            if key is not None and config.get(key):
                config[key] = item.path
            else:
                _replace_value(config, item.recorded_path, item.path)
        # Only the packages the user names: nothing is imported on the word of an archive.
        result = train_model(
            config,
            Path(serialization_dir),
            force=force,
            include_packages=tuple(include_packages),
            quiet=quiet,
            cache=None,
        )
        golden = _read_golden(root / GOLDEN_FILE)
        report = RebuildReport(
            original=where,
            original_sha256=snapshot.sha256,
            rebuilt=str(result.archive_path),
            tolerances={"metric": metric_tolerance, "agreement": min_agreement},
        )
        report.data = [
            {
                "role": item.role,
                "path": item.path,
                "sha256": item.sha256,
                "recorded_sha256": item.recorded_sha256,
                "changed": item.changed,
            }
            for item in located
        ]
        new_manifest = read_manifest(result.archive_path)
        rebuilt_state = result.model.state_dict()
        _compare(
            report, original, manifest, result.model, new_manifest, rebuilt_state, golden, located
        )
    _record(result.archive_path, report)
    return report


def locate_data(
    manifest: Manifest, data_dirs: list[Path], where: str, allow_change: bool
) -> list[LocatedFile]:
    """Each data file the original run read, found by its sha256: at the recorded path, else
    under ``data_dirs`` (same name first, then any file of the same size)."""
    located = []
    for role, record in sorted(manifest.data_files.items()):
        candidates = [Path(record.path)] + [
            Path(directory) / Path(record.path).name for directory in data_dirs
        ]
        found: LocatedFile | None = None
        changed: LocatedFile | None = None
        for candidate in candidates:
            if not candidate.is_file():
                continue
            digest = sha256_file(candidate)
            item = LocatedFile(role, record.path, record.sha256, str(candidate), digest)
            if digest == record.sha256:
                found = item
                break
            changed = changed or item
        if found is None and record.size is not None:
            found = _search_by_hash(data_dirs, record.sha256, record.size, role, record.path)
        if found is None and changed is not None:
            if not allow_change:
                raise DataError(
                    f"{where}: the {role} data is {changed.path}, but its bytes differ from the "
                    f"run's (sha256 {changed.sha256[:16]}..., recorded {record.sha256[:16]}...); "
                    "a rebuild on other data is not a rebuild: restore the file, or pass "
                    "--allow-data-change to retrain on it and record the difference",
                    code=errors.DATA_NOT_FOUND,
                )
            found = changed
        if found is None:
            raise DataError(
                f"{where}: cannot find the {role} data (sha256 {record.sha256[:16]}..., "
                f"recorded at {record.path}) at its recorded path or under "
                f"{', '.join(map(str, data_dirs)) or 'any --data-dir'}; pass --data-dir with "
                "the folder that holds it",
                code=errors.DATA_NOT_FOUND,
            )
        located.append(found)
    return located


def _search_by_hash(
    data_dirs: list[Path], sha256: str, size: int, role: str, recorded: str
) -> LocatedFile | None:
    for directory in data_dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256:
                return LocatedFile(role, recorded, sha256, str(path), sha256)
    return None


def _compare(
    report: RebuildReport,
    original: Archive,
    manifest: Manifest,
    rebuilt_model: Any,
    new_manifest: Manifest,
    rebuilt_state: Mapping[str, torch.Tensor],
    golden: Golden | None,
    located: list[LocatedFile],
) -> None:
    old_metrics = manifest.validation_metrics
    new_metrics = new_manifest.validation_metrics
    for key in sorted(old_metrics):
        if not key.startswith("best_validation_"):
            continue
        old, new = old_metrics.get(key), new_metrics.get(key)
        if isinstance(old, int | float) and isinstance(new, int | float):
            name = key.removeprefix("best_validation_")
            report.metric_deltas[name] = {"original": old, "rebuilt": new, "delta": new - old}
    old_state = original.model.state_dict()
    report.weights_bit_identical = old_state.keys() == rebuilt_state.keys() and all(
        old_state[key].shape == rebuilt_state[key].shape
        and torch.equal(old_state[key].cpu(), rebuilt_state[key].cpu())
        for key in old_state
    )
    if golden is not None:
        report.golden = _agreement(*_replays(original, rebuilt_model, golden.records))
    validation = next((item for item in located if item.role == "validation"), None)
    if validation is not None:
        records = list(original.validation_dataset_reader.read_records(validation.path))
        before, after = _replays(original, rebuilt_model, records)
        report.validation = _agreement(before, after)
        report.confusion = _confusions(records, before, after)
    if manifest.environment is not None and new_manifest.environment is not None:
        report.environment = diff_environments(
            manifest.environment,
            new_manifest.environment,
            required_distributions=manifest.required_distributions(),
            a_label="original",
            b_label="rebuild",
        ).to_dict()
    old_tokenizer = (manifest.tokenizer_fingerprint or {}).get("digest")
    new_tokenizer = (new_manifest.tokenizer_fingerprint or {}).get("digest")
    if old_tokenizer is not None or new_tokenizer is not None:
        report.tokenizer_changed = old_tokenizer != new_tokenizer
    report.causes += [
        f"component code changed: {risk}" for risk in original.extras.get("component_risks", [])
    ]
    _judge(report, located)


def _replays(
    original: Archive, rebuilt_model: Any, records: list[dict[str, Any]]
) -> tuple[Replay, Replay]:
    """Both models' outputs on ``records``, read and indexed by the original's reader."""
    reader, vocab = original.validation_dataset_reader, original.vocab
    return (
        replay(original.model, reader, vocab, records),
        replay(rebuilt_model, reader, vocab, records),
    )


def _agreement(before: Replay, after: Replay) -> dict[str, Any]:
    """Decoded agreement and the distribution of |score differences| of two replays."""
    compared = agreement(before.scores, before.decoded, after)
    if not compared.compared:
        return {"compared": 0}
    flat = compared.differences
    histogram, edges = (
        numpy.histogram(flat, bins=20) if flat.size else (numpy.zeros(0), numpy.zeros(0))
    )
    return {
        "compared": compared.compared,
        "agreement": (compared.compared - len(compared.changed)) / compared.compared,
        "changed": len(compared.changed),
        "score_difference": {
            "max": compared.max_difference,
            "mean": float(flat.mean()) if flat.size else 0.0,
            "p50": float(numpy.percentile(flat, 50)) if flat.size else 0.0,
            "p99": float(numpy.percentile(flat, 99)) if flat.size else 0.0,
            "histogram": {"counts": histogram.tolist(), "edges": edges.tolist()},
        },
    }


def _confusions(
    records: list[dict[str, Any]], before: Replay, after: Replay
) -> dict[str, Any] | None:
    """Gold x predicted counts of both models, for records with a ``label``."""
    gold = [record.get("label") for record in records]
    if not records or any(label is None for label in gold):
        return None
    predicted = {}
    for name, outputs in (("original", before), ("rebuilt", after)):
        if not all("label" in item for item in outputs.decoded):
            return None
        predicted[name] = [str(item["label"]) for item in outputs.decoded]
    labels = sorted(
        {str(label) for label in gold} | set(predicted["original"]) | set(predicted["rebuilt"])
    )
    index = {label: position for position, label in enumerate(labels)}
    result: dict[str, Any] = {"labels": labels}
    for name, values in predicted.items():
        matrix = [[0] * len(labels) for _ in labels]
        for truth, guess in zip(gold, values, strict=True):
            matrix[index[str(truth)]][index[guess]] += 1
        result[name] = matrix
    return result


def _judge(report: RebuildReport, located: list[LocatedFile]) -> None:
    tolerance, minimum = report.tolerances["metric"], report.tolerances["agreement"]
    for name, delta in report.metric_deltas.items():
        if abs(delta["delta"]) > tolerance:
            report.reasons.append(
                f"validation {name} moved {delta['delta']:+.4f} ({delta['original']:.4f} -> "
                f"{delta['rebuilt']:.4f}), more than {tolerance:g}"
            )
    for label, section in (("golden inputs", report.golden), ("validation set", report.validation)):
        agreement = section.get("agreement")
        if agreement is not None and agreement < minimum:
            report.reasons.append(
                f"decoded outputs agree on {agreement:.2%} of the {label} "
                f"({section['changed']} of {section['compared']} changed), below {minimum:.0%}"
            )
    for item in located:
        if item.changed:
            report.causes.append(
                f"the {item.role} data changed (--allow-data-change): {item.path} has sha256 "
                f"{item.sha256[:16]}..., the run read {item.recorded_sha256[:16]}..."
            )
    if report.tokenizer_changed:
        # The preprocessing is part of the model: whatever the metrics say, this is not the
        # same model any more.
        report.reasons.append(
            "the tokenizer fingerprint changed: the same text tokenizes differently in the "
            "rebuild (a tokenizer, its version or its settings changed)"
        )
    environment = report.environment or {}
    for difference in environment.get("differences", []):
        if difference["severity"] in (str(BREAKING), str(RISKY)):
            report.causes.append(
                f"{difference['severity']}: {difference['key']} {difference['old']} -> "
                f"{difference['new']}: {difference['reason']}"
            )
    if report.reasons:
        report.verdict = "drifted"


def _replace_value(config: Any, old: str, new: str) -> None:
    if isinstance(config, dict):
        for key, value in config.items():
            if value == old:
                config[key] = new
            else:
                _replace_value(value, old, new)
    elif isinstance(config, list):
        for index, value in enumerate(config):
            if value == old:
                config[index] = new
            else:
                _replace_value(value, old, new)


def _read_golden(path: Path) -> Golden | None:
    if not path.is_file():
        return None
    return Golden.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _record(archive_path: Path, report: RebuildReport) -> None:
    """Write ``rebuilt_from`` (the original's sha256 and the comparison) into the new archive's
    manifest; the archive is rewritten atomically."""
    with opened_archive(archive_path) as (root, manifest):
        manifest.rebuilt_from = {
            "sha256": report.original_sha256,
            "path": report.original,
            "comparison": report.to_dict(),
        }
        (root / MANIFEST_NAME).unlink()
        write_archive(root, archive_path, manifest)

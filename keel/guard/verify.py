"""``verify``: does an archive still behave, here, exactly as it did when it was trained?

With trusted signers given, a ``signature`` step runs first. Nine steps run in order, each
ending in one of the statuses of ``keel.guard.results``:

- a step that could not check (the archive records nothing to compare with, no reader can be
  fingerprinted, a model produced no outputs to compare) is ``not_checked``, which fails the
  verdict unless the user names it in ``allow_unchecked`` (``--allow-unchecked STEP``);
- a step whose inputs an earlier failure made unusable is ``skipped`` and says which;
- after a failed ``signature`` or ``integrity`` step nothing else runs: no config is read, no
  module resolved and no model built from bytes that are not the archived ones.

The report is rendered as a table, JSON or JUnit XML by the CLI; its ``ok`` decides the exit code.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from keel.archive.archive import (
    ArchiveLimits,
    ArchiveSnapshot,
    archive_snapshot,
    check_integrity,
    opened_archive,
)
from keel.archive.bundled_code import source_differences
from keel.archive.components import check_components
from keel.archive.manifest import Manifest
from keel.archive.migration import (
    PlannedMigration,
    migrate_config,
    migrate_weights,
    plan_migrations,
)
from keel.archive.model_archive import weight_mismatches
from keel.archive.resources import unpack_resources
from keel.archive.signing import trusted_public_keys, verify_signature
from keel.common.devices import resolve_device
from keel.common.errors import ArchiveError, KeelError
from keel.common.filenames import CONFIG_NAME, GOLDEN_FILE, VOCABULARY_DIR, WEIGHTS_NAME
from keel.common.from_params import build, validate
from keel.common.hashing import hash_file
from keel.common.plugins import import_plugins
from keel.common.weights import read_weights
from keel.data.batch import PackedInstances
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.guard.env_diff import diff_environments
from keel.guard.environment import capture_environment
from keel.guard.fingerprint import (
    DIFFERS,
    MATCH,
    UNRECORDED,
    TokenizerFingerprint,
    compare_with_recorded,
    diff_tokenizer_fingerprints,
    preprocessing_fingerprint,
    reader_tokenizer_fingerprint,
)
from keel.guard.golden import Golden, agreement, indexed_ids, replay
from keel.guard.results import FAIL, NOT_CHECKED, PASS, SKIPPED, CheckResult, Report
from keel.models.model import Model
from keel.modules.token_embedders.embedding import remove_pretrained_files
from keel.training.evaluation import evaluate
from keel.training.experiment import Experiment, evaluation_batch_size

# Same device, same batching: differences come only from the environment's kernels.
CPU_TOLERANCE = 1e-5
# Across device types (GPU archive verified on CPU, or back) kernels differ by design.
CROSS_DEVICE_TOLERANCE = 1e-3
DEFAULT_METRIC_TOLERANCE = 0.005

SIGNATURE_STEP = "signature"
STEP_NAMES = (
    "integrity",
    "environment",
    "components",
    "config",
    "weights",
    "tokenizer",
    "preprocessing",
    "predictions",
    "data",
)
#: steps after which nothing is built: the bytes are not the archived (or signed) ones
_TRUST_STEPS = (SIGNATURE_STEP, "integrity")


@dataclass
class VerifyOptions:
    data: str | None = None
    tolerance: float | None = None
    metric_tolerance: float = DEFAULT_METRIC_TOLERANCE
    allow_env_drift: bool = False
    #: where the model is rebuilt and replayed (``cpu``, ``cuda``, ``cuda:N``); replaying on
    #: another device type than the golden predictions' switches to the cross-device tolerance
    device: str = "cpu"
    #: steps whose ``not_checked`` the user accepts (``--allow-unchecked STEP``)
    allow_unchecked: tuple[str, ...] = ()
    include_packages: tuple[str, ...] = ()
    limits: ArchiveLimits | None = None
    signers: tuple[str, ...] = ()
    trusted_keys_dirs: tuple[str, ...] = ()


@dataclass
class _Context:
    """What earlier steps produced for later ones."""

    root: Path
    manifest: Manifest
    options: VerifyOptions
    config: dict[str, Any] | None = None
    vocab: Vocabulary | None = None
    reader: DatasetReader | None = None
    model: Model | None = None
    golden: Golden | None = None
    golden_error: str | None = None
    #: component migrations the archive needs here (older component versions)
    migrations: list[PlannedMigration] = field(default_factory=list)


def verify_archive(
    archive_path: str | os.PathLike[str] | ArchiveSnapshot, **options: Any
) -> Report:
    """Run every verify step on ``archive_path`` (or a snapshot of it taken by the caller, who
    then loads the same bytes); see the module docstring."""
    settings = VerifyOptions(**options)
    resolve_device(settings.device)  # a bad --device is an error before any work
    unknown = sorted(set(settings.allow_unchecked) - {SIGNATURE_STEP, *STEP_NAMES})
    if unknown:
        raise KeelError(
            f"--allow-unchecked names no verify step: {', '.join(unknown)} "
            f"(steps: {', '.join(STEP_NAMES)})"
        )
    subject = archive_path.source if isinstance(archive_path, ArchiveSnapshot) else archive_path
    import_plugins(settings.include_packages)
    report = Report("verify", str(subject))
    try:
        # One snapshot of the bytes for the signature and every step: no swap in between.
        with archive_snapshot(archive_path, settings.limits) as snapshot:
            _verify_snapshot(snapshot, settings, report)
    except KeelError as error:
        # The archive could not even be read or opened safely: an integrity failure.
        report.checks.append(CheckResult("integrity", FAIL, str(error), {"code": error.code}))
        _skip_rest(report, STEP_NAMES[1:], "the archive could not be opened")
    report.allow_unchecked(settings.allow_unchecked)
    if settings.allow_env_drift:
        report.allow(("environment",), "--allow-env-drift", (FAIL,))
    return report


def _verify_snapshot(snapshot: ArchiveSnapshot, settings: VerifyOptions, report: Report) -> None:
    if settings.signers or settings.trusted_keys_dirs:
        started = time.perf_counter()
        report.checks.append(_signature(snapshot, settings))
        report.checks[-1].seconds = time.perf_counter() - started
        if report.checks[-1].status == FAIL:
            _skip_rest(report, STEP_NAMES, "the signature check failed: nothing from it runs")
            return
    with opened_archive(snapshot, limits=settings.limits, check_hashes=False) as (root, manifest):
        context = _Context(root, manifest, settings)
        for index, (name, runner) in enumerate(_STEPS):
            report.checks.append(_run_step(name, runner, context))
            if name in _TRUST_STEPS and report.checks[-1].status == FAIL:
                _skip_rest(
                    report,
                    STEP_NAMES[index + 1 :],
                    f"the {name} check failed: nothing is built from untrusted bytes",
                )
                return


def _skip_rest(report: Report, names: Iterable[str], reason: str) -> None:
    report.checks.extend(CheckResult(name, SKIPPED, reason) for name in names)


def _run_step(
    name: str, runner: Callable[[_Context], CheckResult], context: _Context
) -> CheckResult:
    started = time.perf_counter()
    try:
        result = runner(context)
    except KeelError as error:
        result = CheckResult(name, FAIL, str(error), {"code": error.code})
    except Exception as error:  # a crash inside a step is a failed check, not a crash of verify
        result = CheckResult(name, FAIL, f"{type(error).__name__}: {error}")
    result.seconds = time.perf_counter() - started
    return result


# -- the steps -------------------------------------------------------------------------------------


def _signature(snapshot: ArchiveSnapshot, options: VerifyOptions) -> CheckResult:
    try:
        keys = trusted_public_keys(options.signers, options.trusted_keys_dirs)
        check = verify_signature(snapshot, keys)
    except KeelError as error:
        return CheckResult(SIGNATURE_STEP, FAIL, str(error), {"code": error.code})
    return CheckResult(
        SIGNATURE_STEP,
        PASS,
        f"signed by trusted key {check.key_id[:16]}...",
        {"key_id": check.key_id, "archive_sha256": check.archive_sha256},
    )


def _integrity(context: _Context) -> CheckResult:
    report = check_integrity(context.root, context.manifest)
    if not report.ok:
        return CheckResult(
            "integrity",
            FAIL,
            f"archive members do not match the manifest: {report.describe()}",
            {"changed": report.changed, "missing": report.missing, "unexpected": report.unexpected},
        )
    count = len(context.manifest.files)
    return CheckResult("integrity", PASS, f"all {count} members match their sha256")


def _environment(context: _Context) -> CheckResult:
    recorded = context.manifest.environment
    if recorded is None:
        return CheckResult(
            "environment", NOT_CHECKED, "the manifest records no environment to compare with"
        )
    diff = diff_environments(
        recorded,
        capture_environment(),
        required_distributions=context.manifest.required_distributions(),
    )
    summary = diff.to_dict()
    breaking = [d for d in summary["differences"] if d["severity"] == "breaking"]
    risky = [d for d in summary["differences"] if d["severity"] == "risky"]
    details = {"breaking": breaking, "risky": risky}
    if breaking:
        described = "; ".join(f"{d['key']}: {d['reason']}" for d in breaking[:5])
        return CheckResult("environment", FAIL, f"breaking environment drift: {described}", details)
    note = f" ({len(risky)} risky difference(s); later steps check their effect)" if risky else ""
    return CheckResult("environment", PASS, "no breaking difference" + note, details)


def _components(context: _Context) -> CheckResult:
    recorded = context.manifest.components
    if recorded is None:
        return CheckResult(
            "components", NOT_CHECKED, "the manifest records no components to resolve"
        )
    problems, risks = check_components(recorded)
    # Package-wide: a changed helper module matters as much as the one defining the class.
    risks += [risk for risk in source_differences(context.manifest) if risk not in risks]
    if problems:
        return CheckResult(
            "components", FAIL, "; ".join(problems), {"problems": problems, "risks": risks}
        )
    try:
        context.migrations = plan_migrations(context.manifest, "the archive")
    except ArchiveError as error:
        return CheckResult("components", FAIL, error.message, {"code": error.code, "risks": risks})
    reason = f"all {len(recorded)} registered names resolve to the recorded modules"
    migrated = [planned.describe() for planned in context.migrations]
    if migrated:
        # The predictions step decides whether the migrations are right: the migrated model
        # must reproduce the golden predictions.
        reason += f"; {len(migrated)} migrated on load: " + "; ".join(migrated)
    if risks:
        reason += "; risks: " + "; ".join(risks)
    return CheckResult(
        "components",
        PASS,
        reason,
        {"risks": risks, "migrations": [planned.to_dict() for planned in context.migrations]},
    )


def _config(context: _Context) -> CheckResult:
    try:
        config = json.loads((context.root / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return CheckResult("config", FAIL, f"{CONFIG_NAME} is unreadable: {error}")
    if not isinstance(config, dict):
        return CheckResult("config", FAIL, f"{CONFIG_NAME} holds a {type(config).__name__}")
    config = migrate_config(config, context.migrations)
    # The data files the config names are the training machine's: not checked here.
    validation = validate(
        Experiment,
        remove_pretrained_files(unpack_resources(config, context.root)),
        check_files=False,
    )
    if validation.issues:
        rendered = [issue.render() for issue in validation.issues]
        return CheckResult(
            "config",
            FAIL,
            f"the archived config no longer fits today's constructors: {'; '.join(rendered)}",
            {"issues": [issue.to_dict() for issue in validation.issues]},
        )
    context.config = validation.resolved
    return CheckResult("config", PASS, "the archived config validates against today's code")


def _weights(context: _Context) -> CheckResult:
    if context.config is None:
        return CheckResult("weights", SKIPPED, "the config step failed: no model to rebuild")
    vocab = Vocabulary.from_files(str(context.root / VOCABULARY_DIR))
    built: dict[str, Any] = {}
    model = build(
        Model, context.config["model"], path="model", extras={"vocab": vocab}, built=built
    )
    state = migrate_weights(
        read_weights(context.root / WEIGHTS_NAME), model, built, context.migrations
    )
    problems = weight_mismatches(model, state)
    if problems:
        return CheckResult(
            "weights",
            FAIL,
            f"{len(problems)} weight(s) do not fit the rebuilt model: {'; '.join(problems[:10])}",
            {"problems": problems},
        )
    model.load_state_dict(state, strict=True)
    model.to(resolve_device(context.options.device))
    model.eval()
    context.vocab, context.model = vocab, model
    section = context.config.get("validation_dataset_reader") or context.config["dataset_reader"]
    context.reader = build(DatasetReader, section, path="dataset_reader")
    return CheckResult("weights", PASS, f"all {len(state)} weights match the model's schema")


def _tokenizer(context: _Context) -> CheckResult:
    recorded = context.manifest.tokenizer_fingerprint
    if recorded is None:
        return CheckResult(
            "tokenizer", NOT_CHECKED, "the manifest records no tokenizer fingerprint"
        )
    if context.reader is None or context.vocab is None:
        return CheckResult("tokenizer", SKIPPED, "no reader could be rebuilt (see earlier steps)")
    old = TokenizerFingerprint.from_dict(recorded)
    new = reader_tokenizer_fingerprint(context.reader, context.vocab, old.corpus_version)
    if new is None:
        return CheckResult(
            "tokenizer",
            NOT_CHECKED,
            f"the rebuilt reader ({type(context.reader).__name__}) has no tokenizer or text "
            "indexers keel can fingerprint, so the probe corpus could not be run through it",
        )
    if new.digest == old.digest:
        return CheckResult(
            "tokenizer", PASS, f"probe corpus {old.corpus_version} tokenizes identically"
        )
    diffs = diff_tokenizer_fingerprints(old, new, limit=5)
    changed = sum(a != b for a, b in zip(old.line_digests, new.line_digests, strict=True))
    material_changes = sorted(
        name
        for name in set(old.materials) | set(new.materials)
        if old.materials.get(name) != new.materials.get(name)
    )
    if not changed:
        return CheckResult(
            "tokenizer",
            FAIL,
            "the probe corpus tokenizes the same, but the tokenizer's files or settings changed: "
            + ", ".join(material_changes),
            {"changed_materials": material_changes},
        )
    return CheckResult(
        "tokenizer",
        FAIL,
        f"tokenizer behaviour changed on {changed} of {len(old.line_digests)} probe lines; "
        "first differences:\n" + "\n".join(diff.render() for diff in diffs),
        {
            "changed_lines": changed,
            "changed_materials": material_changes,
            "first_differences": [diff.render() for diff in diffs],
        },
    )


def _load_golden(context: _Context) -> Golden | None:
    if context.golden is None and context.golden_error is None:
        path = context.root / GOLDEN_FILE
        if path.is_file():
            try:
                context.golden = Golden.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
                context.golden_error = f"{GOLDEN_FILE} is unreadable: {error}"
    return context.golden


def _no_golden(context: _Context, name: str) -> CheckResult:
    if context.golden_error is not None:
        return CheckResult(name, FAIL, context.golden_error)
    return CheckResult(
        name,
        NOT_CHECKED,
        "the archive holds no golden predictions (train with a validation set, or import "
        "with --golden-input)",
    )


def _preprocessing(context: _Context) -> CheckResult:
    golden = _load_golden(context)
    if golden is None:
        return _no_golden(context, "preprocessing")
    if context.reader is None or context.vocab is None:
        return CheckResult(
            "preprocessing", SKIPPED, "no reader could be rebuilt (see earlier steps)"
        )
    mismatched: list[dict[str, Any]] = []
    for number, (record, expected) in enumerate(zip(golden.records, golden.indexed, strict=True)):
        instance = context.reader.text_to_instance(**record)
        instance.index_fields(context.vocab)
        actual = indexed_ids(instance)
        if actual != expected:
            mismatched.append(
                {"input": number, "record": record, "expected": expected, "actual": actual}
            )
    if mismatched:
        first = mismatched[0]
        shown = json.dumps(first["record"], ensure_ascii=False)[:200]
        return CheckResult(
            "preprocessing",
            FAIL,
            f"{len(mismatched)} of {len(golden.records)} golden inputs now index differently; "
            f"first: input {first['input']} {shown}",
            {"mismatched": len(mismatched), "examples": mismatched[:3]},
        )
    return CheckResult(
        "preprocessing", PASS, f"all {len(golden.records)} golden inputs index to the same ids"
    )


def _predictions(context: _Context) -> CheckResult:
    golden = _load_golden(context)
    if golden is None:
        return _no_golden(context, "predictions")
    if context.model is None or context.reader is None or context.vocab is None:
        return CheckResult("predictions", SKIPPED, "no model could be rebuilt (see earlier steps)")
    if not any(golden.scores) and not any(golden.decoded):
        return CheckResult(
            "predictions",
            NOT_CHECKED,
            f"the golden file holds no outputs of {type(context.model).__name__} to compare "
            "(declare Model.golden_outputs)",
        )
    now = replay(
        context.model,
        context.reader,
        context.vocab,
        golden.records,
        golden.batch_size,
        golden_format=golden.format,
    )
    device = str(context.model.get_device().type)
    tolerance = context.options.tolerance
    cross_device = device != golden.device
    if tolerance is None:
        tolerance = CROSS_DEVICE_TOLERANCE if cross_device else CPU_TOLERANCE
    compared_now = agreement(golden.scores, golden.decoded, now)
    differences, changed = compared_now.differences, compared_now.changed
    stats = _distribution(differences)
    compared = sorted({name for item in golden.scores + golden.decoded for name in item})
    details = {
        "tolerance": tolerance,
        "outputs": compared,
        "recorded_on": golden.device,
        "replayed_on": device,
        "differences": stats,
        "changed_outputs": changed[:10],
        "changed_count": len(changed),
    }
    if changed or stats["max"] > tolerance:
        reasons = []
        if changed:
            reasons.append(f"{len(changed)} of {len(now.decoded)} decoded outputs changed")
        if stats["max"] > tolerance:
            reasons.append(f"max |score difference| {stats['max']:.3g} > tolerance {tolerance:g}")
        return CheckResult("predictions", FAIL, "; ".join(reasons), details)
    where = f" ({golden.device} archive replayed on {device})" if cross_device else ""
    return CheckResult(
        "predictions",
        PASS,
        f"{len(now.decoded)} golden outputs ({', '.join(compared)}) reproduced; max |score "
        f"difference| {stats['max']:.3g} (tolerance {tolerance:g}){where}",
        details,
    )


def _data(context: _Context) -> CheckResult:
    data = context.options.data
    if data is None:
        return CheckResult("data", SKIPPED, "no --data given")
    if context.model is None or context.reader is None or context.vocab is None:
        return CheckResult("data", SKIPPED, "no model could be rebuilt (see earlier steps)")
    file_hash = hash_file(data)
    reader = context.reader
    if context.manifest.recorded_role(file_hash.sha256) == "train" and context.config:
        reader = build(DatasetReader, context.config["dataset_reader"], path="dataset_reader")
    instances = list(reader.read(data))
    packed = PackedInstances.build(instances, context.vocab)  # fingerprinted and evaluated
    comparison = compare_with_recorded(
        context.manifest, file_hash, preprocessing_fingerprint(instances, context.vocab, packed)
    )
    recorded = context.manifest.validation_metrics
    metric_name = _validation_metric_name(context.config or {})
    expected = recorded.get(f"best_validation_{metric_name}")
    metrics = evaluate(
        context.model,
        instances,
        context.vocab,
        batch_size=evaluation_batch_size(context.config or {}),
        packed=packed,
    )
    actual = metrics.get(metric_name)
    details = {
        "metric": metric_name,
        "recorded": expected,
        "measured": actual,
        "metrics": metrics,
        "tolerance": context.options.metric_tolerance,
        "preprocessing": comparison.to_dict(),
    }
    name = Path(data).name
    if comparison.status == DIFFERS:
        return CheckResult("data", FAIL, f"{name}: {comparison.message}", details)
    if expected is None or actual is None:
        return CheckResult(
            "data",
            NOT_CHECKED,
            f"measured {metric_name}={actual}, but the archive records no "
            f"best_validation_{metric_name} to compare with",
            details,
        )
    if abs(actual - expected) > context.options.metric_tolerance:
        return CheckResult(
            "data",
            FAIL,
            f"{metric_name} on {name} is {actual:.4f}, recorded {expected:.4f} "
            f"(tolerance {context.options.metric_tolerance})",
            details,
        )
    within = (
        f"{metric_name} {actual:.4f} within {context.options.metric_tolerance} of "
        f"the recorded {expected:.4f}"
    )
    if comparison.status not in (MATCH, UNRECORDED):
        # Same bytes as a training file, but the recorded fingerprint cannot be compared.
        return CheckResult("data", NOT_CHECKED, f"{within}; but {comparison.message}", details)
    matched = f"; {comparison.message}" if comparison.status == MATCH else ""
    return CheckResult("data", PASS, within + matched, details)


def _validation_metric_name(config: Mapping[str, Any]) -> str:
    metric = (config.get("trainer") or {}).get("validation_metric", "-loss")
    if isinstance(metric, list):
        metric = metric[0]
    return str(metric).lstrip("+-")


def _distribution(differences: numpy.ndarray) -> dict[str, float]:
    if differences.size == 0:
        return {"count": 0, "max": 0.0, "mean": 0.0, "p50": 0.0, "p99": 0.0}
    finite = differences[numpy.isfinite(differences)]
    if finite.size != differences.size:
        return {
            "count": int(differences.size),
            "max": math.inf,
            "mean": math.inf,
            "p50": math.inf,
            "p99": math.inf,
        }
    return {
        "count": int(differences.size),
        "max": float(differences.max()),
        "mean": float(differences.mean()),
        "p50": float(numpy.percentile(differences, 50)),
        "p99": float(numpy.percentile(differences, 99)),
    }


_STEPS: tuple[tuple[str, Callable[[_Context], CheckResult]], ...] = (
    ("integrity", _integrity),
    ("environment", _environment),
    ("components", _components),
    ("config", _config),
    ("weights", _weights),
    ("tokenizer", _tokenizer),
    ("preprocessing", _preprocessing),
    ("predictions", _predictions),
    ("data", _data),
)

"""``verify``: does an archive still behave, here, exactly as it did when it was trained?

With trusted signers given, a ``signature`` step runs first. Nine steps run in order; each
passes, fails or is skipped with a reason. A step whose inputs a failed earlier step made
unusable is skipped and says which. The result object is rendered as a table, JSON or JUnit XML
by the CLI, and its ``ok`` decides the exit code.
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
from xml.etree import ElementTree

import numpy

from keel.archive.archive import ArchiveLimits, check_integrity, opened_archive
from keel.common.errors import KeelError
from keel.common.filenames import CONFIG_NAME, VOCABULARY_DIR, WEIGHTS_NAME

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
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


@dataclass
class StepResult:
    name: str
    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "details": self.details,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class VerifyReport:
    archive: str
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.status != FAIL for step in self.steps)

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)

    @property
    def failed(self) -> list[str]:
        return [step.name for step in self.steps if step.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "ok": self.ok,
            "failed": self.failed,
            "steps": [step.to_dict() for step in self.steps],
        }

    def to_junit_xml(self) -> str:
        suite = ElementTree.Element(
            "testsuite",
            name="keel.verify",
            tests=str(len(self.steps)),
            failures=str(len(self.failed)),
            skipped=str(sum(step.status == SKIPPED for step in self.steps)),
            time=f"{sum(step.seconds for step in self.steps):.4f}",
        )
        for step in self.steps:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=f"keel.verify.{Path(self.archive).name}",
                name=step.name,
                time=f"{step.seconds:.4f}",
            )
            if step.status == FAIL:
                failure = ElementTree.SubElement(case, "failure", message=step.reason)
                failure.text = json.dumps(step.details, indent=2, default=str)
            elif step.status == SKIPPED:
                ElementTree.SubElement(case, "skipped", message=step.reason)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


@dataclass
class VerifyOptions:
    data: str | None = None
    tolerance: float | None = None
    metric_tolerance: float = DEFAULT_METRIC_TOLERANCE
    allow_env_drift: bool = False
    include_packages: tuple[str, ...] = ()
    limits: ArchiveLimits | None = None
    signers: tuple[str, ...] = ()
    trusted_keys_dirs: tuple[str, ...] = ()


class _Context:
    """What earlier steps produced for later ones."""

    def __init__(self, root: Path, manifest: dict[str, Any], options: VerifyOptions) -> None:
        self.root = root
        self.manifest = manifest
        self.options = options
        self.config: dict[str, Any] | None = None
        self.vocab: Any = None
        self.reader: Any = None
        self.model: Any = None
        self.components_ok = False


def verify_archive(archive_path: str | os.PathLike[str], **options: Any) -> VerifyReport:
    """Run every verify step on ``archive_path``; see the module docstring."""
    from keel.common.plugins import import_plugins

    settings = VerifyOptions(**options)
    archive_path = str(archive_path)
    import_plugins(settings.include_packages)
    steps: list[StepResult] = []
    if settings.signers or settings.trusted_keys_dirs:
        started = time.perf_counter()
        steps.append(_signature(archive_path, settings))
        steps[-1].seconds = time.perf_counter() - started
    try:
        with opened_archive(archive_path, limits=settings.limits, check_hashes=False) as (
            root,
            manifest,
        ):
            context = _Context(root, manifest, settings)
            for name, runner in _STEPS:
                steps.append(_run_step(name, runner, context, steps))
    except KeelError as error:
        # The archive could not even be opened safely: that is an integrity failure.
        steps.append(StepResult("integrity", FAIL, str(error), {"code": error.code}))
        for name in STEP_NAMES[1:]:
            steps.append(StepResult(name, SKIPPED, "the archive could not be opened"))
    return VerifyReport(archive_path, steps)


def _run_step(
    name: str,
    runner: Callable[[_Context], StepResult],
    context: _Context,
    earlier: list[StepResult],
) -> StepResult:
    started = time.perf_counter()
    try:
        result = runner(context)
    except KeelError as error:
        result = StepResult(name, FAIL, str(error), {"code": error.code})
    except Exception as error:  # a crash inside a step is a failed check, not a crash of verify
        result = StepResult(name, FAIL, f"{type(error).__name__}: {error}")
    result.seconds = time.perf_counter() - started
    return result


# -- the steps -------------------------------------------------------------------------------------


def _signature(archive_path: str, options: VerifyOptions) -> StepResult:
    from keel.archive.signing import trusted_public_keys, verify_signature

    try:
        keys = trusted_public_keys(options.signers, options.trusted_keys_dirs)
        check = verify_signature(archive_path, keys)
    except KeelError as error:
        return StepResult(SIGNATURE_STEP, FAIL, str(error), {"code": error.code})
    return StepResult(
        SIGNATURE_STEP,
        PASS,
        f"signed by trusted key {check.key_id[:16]}...",
        {"key_id": check.key_id, "archive_sha256": check.archive_sha256},
    )


def _integrity(context: _Context) -> StepResult:
    report = check_integrity(context.root, context.manifest)
    if not report.ok:
        return StepResult(
            "integrity",
            FAIL,
            f"archive members do not match the manifest: {report.describe()}",
            {"changed": report.changed, "missing": report.missing, "unexpected": report.unexpected},
        )
    count = len(context.manifest.get("files", {}))
    return StepResult("integrity", PASS, f"all {count} members match their sha256")


def _environment(context: _Context) -> StepResult:
    from keel.guard.env_diff import diff_environments
    from keel.guard.environment import capture_environment

    recorded = context.manifest.get("environment")
    if not isinstance(recorded, dict):
        return StepResult("environment", SKIPPED, "the manifest records no environment")
    required = sorted(
        {
            entry["distribution"].split("==")[0]
            for entry in context.manifest.get("components", [])
            if entry.get("distribution")
        }
    )
    diff = diff_environments(recorded, capture_environment(), required_distributions=required)
    summary = diff.to_dict()
    breaking = [d for d in summary["differences"] if d["severity"] == "breaking"]
    risky = [d for d in summary["differences"] if d["severity"] == "risky"]
    details = {"breaking": breaking, "risky": risky}
    if breaking:
        described = "; ".join(f"{d['key']}: {d['reason']}" for d in breaking[:5])
        if context.options.allow_env_drift:
            return StepResult(
                "environment",
                PASS,
                f"breaking drift allowed by --allow-env-drift: {described}",
                details,
            )
        return StepResult("environment", FAIL, f"breaking environment drift: {described}", details)
    note = f" ({len(risky)} risky difference(s); later steps check their effect)" if risky else ""
    return StepResult("environment", PASS, "no breaking difference" + note, details)


def _components(context: _Context) -> StepResult:
    from keel.archive.components import check_components

    recorded = context.manifest.get("components")
    if recorded is None:
        return StepResult("components", SKIPPED, "the manifest records no components")
    from keel.archive.bundled_code import source_differences

    problems, risks = check_components(recorded, context.options.include_packages)
    # Package-wide: a changed helper module matters as much as the one defining the class.
    risks += [risk for risk in source_differences(context.manifest) if risk not in risks]
    if problems:
        return StepResult(
            "components", FAIL, "; ".join(problems), {"problems": problems, "risks": risks}
        )
    context.components_ok = True
    reason = f"all {len(recorded)} registered names resolve to the recorded modules"
    if risks:
        reason += "; risks: " + "; ".join(risks)
    return StepResult("components", PASS, reason, {"risks": risks})


def _config(context: _Context) -> StepResult:
    from keel.archive.resources import unpack_resources
    from keel.common.from_params import validate
    from keel.modules.token_embedders.embedding import remove_pretrained_files
    from keel.training.experiment import Experiment

    config = json.loads((context.root / CONFIG_NAME).read_text(encoding="utf-8"))
    validation = validate(
        Experiment, remove_pretrained_files(unpack_resources(config, context.root))
    )
    if validation.issues:
        rendered = [issue.render() for issue in validation.issues]
        return StepResult(
            "config",
            FAIL,
            f"the archived config no longer fits today's constructors: {'; '.join(rendered)}",
            {"issues": [issue.to_dict() for issue in validation.issues]},
        )
    context.config = validation.resolved
    return StepResult("config", PASS, "the archived config validates against today's code")


def _weights(context: _Context) -> StepResult:
    from keel.archive.model_archive import read_weights, weight_mismatches
    from keel.common.from_params import build
    from keel.data.dataset_readers.dataset_reader import DatasetReader
    from keel.data.vocabulary import Vocabulary
    from keel.models.model import Model

    if context.config is None:
        return StepResult("weights", SKIPPED, "the config step failed: no model to rebuild")
    context.vocab = Vocabulary.from_files(str(context.root / VOCABULARY_DIR))
    model = build(Model, context.config["model"], path="model", extras={"vocab": context.vocab})
    state = read_weights(context.root / WEIGHTS_NAME)
    problems = weight_mismatches(model, state)
    if problems:
        return StepResult(
            "weights",
            FAIL,
            f"{len(problems)} weight(s) do not fit the rebuilt model: {'; '.join(problems[:10])}",
            {"problems": problems},
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    context.model = model
    section = context.config.get("validation_dataset_reader") or context.config["dataset_reader"]
    context.reader = build(DatasetReader, section, path="dataset_reader")
    return StepResult("weights", PASS, f"all {len(state)} weights match the model's schema")


def _tokenizer(context: _Context) -> StepResult:
    from keel.guard.fingerprint import (
        TokenizerFingerprint,
        diff_tokenizer_fingerprints,
        reader_tokenizer_fingerprint,
    )

    recorded = context.manifest.get("tokenizer_fingerprint")
    if recorded is None:
        return StepResult("tokenizer", SKIPPED, "the manifest records no tokenizer fingerprint")
    if context.reader is None:
        return StepResult("tokenizer", SKIPPED, "no reader could be rebuilt (see earlier steps)")
    old = TokenizerFingerprint.from_dict(recorded)
    new = reader_tokenizer_fingerprint(context.reader, context.vocab, old.corpus_version)
    if new is None or new.digest == old.digest:
        return StepResult(
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
        return StepResult(
            "tokenizer",
            FAIL,
            "the probe corpus tokenizes the same, but the tokenizer's files or settings changed: "
            + ", ".join(material_changes),
            {"changed_materials": material_changes},
        )
    return StepResult(
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


def _golden(context: _Context) -> dict[str, Any] | None:
    from keel.common.filenames import GOLDEN_FILE

    path = context.root / GOLDEN_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _preprocessing(context: _Context) -> StepResult:
    from keel.guard.golden import indexed_ids

    golden = _golden(context)
    if golden is None:
        return StepResult("preprocessing", SKIPPED, "the archive holds no golden inputs")
    if context.reader is None:
        return StepResult(
            "preprocessing", SKIPPED, "no reader could be rebuilt (see earlier steps)"
        )
    mismatched: list[dict[str, Any]] = []
    for number, (record, expected) in enumerate(
        zip(golden["records"], golden["indexed"], strict=True)
    ):
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
        return StepResult(
            "preprocessing",
            FAIL,
            f"{len(mismatched)} of {len(golden['records'])} golden inputs now index differently; "
            f"first: input {first['input']} {shown}",
            {"mismatched": len(mismatched), "examples": mismatched[:3]},
        )
    return StepResult(
        "preprocessing", PASS, f"all {len(golden['records'])} golden inputs index to the same ids"
    )


def _predictions(context: _Context) -> StepResult:
    from keel.guard.golden import replay, score_differences

    golden = _golden(context)
    if golden is None:
        return StepResult("predictions", SKIPPED, "the archive holds no golden predictions")
    if context.model is None:
        return StepResult("predictions", SKIPPED, "no model could be rebuilt (see earlier steps)")
    now = replay(
        context.model, context.reader, context.vocab, golden["records"], golden["batch_size"]
    )
    device = str(context.model.get_device().type)
    tolerance = context.options.tolerance
    if tolerance is None:
        tolerance = (
            CPU_TOLERANCE if device == golden.get("device", "cpu") else (CROSS_DEVICE_TOLERANCE)
        )
    differences = score_differences(golden["scores"], now.scores)
    label_changes = [
        {"input": index, "expected": old, "actual": new}
        for index, (old, new) in enumerate(zip(golden["decoded"], now.decoded, strict=True))
        if old != new
    ]
    stats = _distribution(differences)
    details = {
        "tolerance": tolerance,
        "differences": stats,
        "changed_outputs": label_changes[:10],
        "changed_count": len(label_changes),
    }
    if label_changes or stats["max"] > tolerance:
        reasons = []
        if label_changes:
            reasons.append(f"{len(label_changes)} of {len(now.decoded)} decoded outputs changed")
        if stats["max"] > tolerance:
            reasons.append(f"max |logit difference| {stats['max']:.3g} > tolerance {tolerance:g}")
        return StepResult("predictions", FAIL, "; ".join(reasons), details)
    return StepResult(
        "predictions",
        PASS,
        f"{len(now.decoded)} golden outputs reproduced; max |logit difference| {stats['max']:.3g} "
        f"(tolerance {tolerance:g})",
        details,
    )


def _data(context: _Context) -> StepResult:
    from keel.training.evaluation import evaluate
    from keel.training.experiment import evaluation_batch_size

    data = context.options.data
    if data is None:
        return StepResult("data", SKIPPED, "no --data given")
    if context.model is None:
        return StepResult("data", SKIPPED, "no model could be rebuilt (see earlier steps)")
    from keel.common.from_params import build
    from keel.data.batch import PackedInstances
    from keel.data.dataset_readers.dataset_reader import DatasetReader
    from keel.guard.fingerprint import (
        DIFFERS,
        MATCH,
        compare_with_recorded,
        preprocessing_fingerprint,
        recorded_role,
    )
    from keel.guard.hashing import hash_file

    file_hash = hash_file(data)
    reader = context.reader
    if recorded_role(context.manifest, file_hash.sha256) == "train" and context.config:
        reader = build(DatasetReader, context.config["dataset_reader"], path="dataset_reader")
    instances = list(reader.read(data))
    packed = PackedInstances.build(instances, context.vocab)  # fingerprinted and evaluated
    comparison = compare_with_recorded(
        context.manifest, file_hash, preprocessing_fingerprint(instances, context.vocab, packed)
    )
    recorded = context.manifest.get("validation_metrics", {})
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
    if comparison.status == DIFFERS:
        return StepResult("data", FAIL, f"{Path(data).name}: {comparison.message}", details)
    matched = f"; {comparison.message}" if comparison.status == MATCH else ""
    if expected is None or actual is None:
        return StepResult(
            "data",
            PASS,
            f"measured {metric_name}={actual} (nothing recorded to compare with){matched}",
            details,
        )
    if abs(actual - expected) > context.options.metric_tolerance:
        return StepResult(
            "data",
            FAIL,
            f"{metric_name} on {Path(data).name} is {actual:.4f}, recorded {expected:.4f} "
            f"(tolerance {context.options.metric_tolerance})",
            details,
        )
    return StepResult(
        "data",
        PASS,
        f"{metric_name} {actual:.4f} within {context.options.metric_tolerance} of "
        f"the recorded {expected:.4f}{matched}",
        details,
    )


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


_STEPS: tuple[tuple[str, Callable[[_Context], StepResult]], ...] = (
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


def steps_summary(report: VerifyReport) -> Iterable[tuple[str, str, str]]:
    for step in report.steps:
        yield step.name, step.status, step.reason

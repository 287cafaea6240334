"""``keel doctor``: the GPU/CPU stack check, verify, and a reproducibility checklist in one."""

from __future__ import annotations

from keel.archive.archive import read_manifest
from keel.archive.manifest import Manifest
from keel.common.errors import KeelError
from keel.common.filenames import CONFIG_NAME
from keel.guard.cluster import check_distributed
from keel.guard.gpu_check import check_gpu_stack
from keel.guard.results import FAIL, NOT_CHECKED, PASS, CheckResult, Report
from keel.guard.verify import SIGNATURE_STEP, STEP_NAMES, verify_archive


def reproducibility_checklist(manifest: Manifest) -> list[CheckResult]:
    """What an archive records that makes its training reproducible and its behaviour checkable.
    A missing record is ``not_checked``: nothing can be reproduced or compared without it."""
    reproducibility = manifest.reproducibility
    seeds = [reproducibility.get(k) for k in ("random_seed", "numpy_seed", "pytorch_seed")]
    environment = manifest.environment or {}
    deterministic = bool(reproducibility.get("deterministic"))
    items = [
        ("seeds set", all(seed is not None for seed in seeds), f"seeds {seeds}"),
        (
            "deterministic mode",
            deterministic,
            "torch.use_deterministic_algorithms was on"
            if deterministic
            else "training ran without deterministic algorithms",
        ),
        (
            "config pinned",
            CONFIG_NAME in manifest.files,
            "the resolved config is in the archive with its hash",
        ),
        (
            "data hashed",
            bool(manifest.data_files),
            f"{len(manifest.data_files)} data file(s) hashed",
        ),
        (
            "tokenizer fingerprinted",
            manifest.tokenizer_fingerprint is not None,
            "probe-corpus fingerprint recorded",
        ),
        (
            "environment exportable",
            bool(environment.get("distributions") or environment.get("packages")),
            "the training environment's distributions are recorded (keel env export)",
        ),
    ]
    return [
        CheckResult(name, PASS if ok else NOT_CHECKED, reason if ok else f"not recorded: {reason}")
        for name, ok, reason in items
    ]


def run_doctor(
    archive: str | None,
    include_packages: tuple[str, ...] = (),
    allow_unchecked: tuple[str, ...] = (),
    distributed: bool = False,
) -> Report:
    """env check, then (with an archive) verify and the reproducibility checklist, as one
    report; ``allow_unchecked`` names checks (or verify steps) whose ``not_checked`` is
    accepted."""
    report = Report("doctor", archive or "<environment>")
    stack = check_gpu_stack()
    report.checks.append(stack.summary())
    if distributed:
        report.checks.append(check_distributed())
    if archive is None:
        report.allow_unchecked(allow_unchecked)
        return report
    steps = set(allow_unchecked)
    verified = verify_archive(
        archive, include_packages=include_packages, allow_unchecked=tuple(steps & _VERIFY_STEPS)
    )
    blocked = verified.failed
    report.checks.append(
        CheckResult(
            "verify",
            PASS if verified.ok else FAIL,
            "every step passed" + _escapes(verified)
            if verified.ok
            else f"failed or not checked: {', '.join(blocked)}",
            {"verify": verified.to_dict()},
        )
    )
    try:
        manifest = read_manifest(archive)
    except KeelError as error:
        report.checks.append(CheckResult("reproducibility", FAIL, str(error)))
        return report
    report.checks.extend(reproducibility_checklist(manifest))
    report.allow_unchecked(steps - _VERIFY_STEPS)
    return report


def _escapes(report: Report) -> str:
    if not report.escapes:
        return ""
    return " (allowed: " + ", ".join(str(item["allowed_by"]) for item in report.escapes) + ")"


_VERIFY_STEPS = {SIGNATURE_STEP, *STEP_NAMES}

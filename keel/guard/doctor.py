"""``keel doctor``: the GPU/CPU stack check, verify, and a reproducibility checklist in one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.archive.archive import read_manifest
from keel.common.errors import KeelError

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


@dataclass
class Check:
    name: str
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    verify: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [check.to_dict() for check in self.checks],
            "verify": self.verify,
        }


def reproducibility_checklist(manifest: dict[str, Any]) -> list[Check]:
    """What an archive records that makes its training reproducible and its behaviour checkable."""
    reproducibility = manifest.get("reproducibility") or {}
    seeds = [reproducibility.get(k) for k in ("random_seed", "numpy_seed", "pytorch_seed")]
    environment = manifest.get("environment") or {}
    items = [
        ("seeds set", all(seed is not None for seed in seeds), f"seeds {seeds}"),
        (
            "deterministic mode",
            bool(reproducibility.get("deterministic")),
            "torch.use_deterministic_algorithms was on"
            if reproducibility.get("deterministic")
            else "training ran without deterministic algorithms",
        ),
        (
            "config pinned",
            "config.json" in (manifest.get("files") or {}),
            "the resolved config is in the archive with its hash",
        ),
        (
            "data hashed",
            bool(manifest.get("data_files")),
            f"{len(manifest.get('data_files') or {})} data file(s) hashed",
        ),
        (
            "tokenizer fingerprinted",
            bool(manifest.get("tokenizer_fingerprint")),
            "probe-corpus fingerprint recorded",
        ),
        (
            "environment exportable",
            bool(environment.get("distributions") or environment.get("packages")),
            "the training environment's distributions are recorded (keel env export)",
        ),
    ]
    return [Check(name, PASS if ok else FAIL, reason) for name, ok, reason in items]


def run_doctor(archive: str | None, include_packages: tuple[str, ...] = ()) -> DoctorReport:
    from keel.guard.gpu_check import check_gpu_stack
    from keel.guard.verify import verify_archive

    report = DoctorReport()
    stack = check_gpu_stack()
    if stack.ok:
        where = "GPU stack" if stack.gpu_present else "no GPU; CPU path"
        reason = f"{where}: {len(stack.items)} checks passed"
    else:
        reason = "; ".join(f"{item.name}: {item.message}" for item in stack.failures)
    report.checks.append(Check("env check", PASS if stack.ok else FAIL, reason))
    if archive is None:
        return report
    verified = verify_archive(archive, include_packages=include_packages)
    report.verify = verified.to_dict()
    report.checks.append(
        Check(
            "verify",
            PASS if verified.ok else FAIL,
            "every step passed" if verified.ok else f"failed: {', '.join(verified.failed)}",
        )
    )
    try:
        manifest = read_manifest(archive)
    except KeelError as error:
        report.checks.append(Check("reproducibility", FAIL, str(error)))
        return report
    report.checks.extend(reproducibility_checklist(manifest))
    return report

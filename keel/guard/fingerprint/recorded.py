"""A data file's preprocessing fingerprint against the one a training run recorded for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from keel.archive.manifest import Manifest
from keel.common.hashing import FileHash
from keel.guard.fingerprint.preprocessing import PREPROCESSING_FORMAT, PreprocessingFingerprint
from keel.guard.results import FAIL, NOT_CHECKED, PASS, SKIPPED, CheckResult

MATCH, DIFFERS, INCOMPARABLE, UNRECORDED = "match", "differs", "incomparable", "unrecorded"


@dataclass(frozen=True)
class RecordedComparison:
    """A data file's preprocessing fingerprint against the one an archive recorded for it.

    ``role`` is the training run's split (train, validation, test) whose recorded file has the
    same sha256, None when none does. ``status``: ``match``, ``differs``, ``incomparable`` (the
    record has another fingerprint format) or ``unrecorded``.
    """

    status: str
    role: str | None
    message: str
    differences: dict[str, Any] = dataclass_field(default_factory=dict)

    def to_check(self, name: str = "recorded preprocessing") -> CheckResult:
        """This comparison in the guard's result vocabulary: a match passes, a difference
        fails, a record of another fingerprint format could not be checked, and a file the run
        never read has nothing to be checked against."""
        status = {MATCH: PASS, DIFFERS: FAIL, INCOMPARABLE: NOT_CHECKED}.get(self.status, SKIPPED)
        return CheckResult(name, status, self.message, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "role": self.role,
            "message": self.message,
            "differences": self.differences,
        }


def compare_with_recorded(
    manifest: Manifest, file_hash: FileHash, fingerprint: PreprocessingFingerprint
) -> RecordedComparison:
    """Compare ``fingerprint`` (of the file ``file_hash``) with what the archive recorded."""
    role = manifest.recorded_role(file_hash.sha256)
    if role is None:
        return RecordedComparison(
            UNRECORDED,
            None,
            "not one of the training run's data files (by sha256): nothing recorded to compare",
        )
    recorded = manifest.preprocessing_fingerprints[role]
    recorded_format = recorded.get("format")
    if recorded_format != PREPROCESSING_FORMAT:
        return RecordedComparison(
            INCOMPARABLE,
            role,
            f"the {role} fingerprint was recorded as {recorded_format!r}; this keel computes "
            f"{PREPROCESSING_FORMAT!r}, so digests cannot be compared",
        )
    if recorded.get("digest") == fingerprint.digest:
        return RecordedComparison(
            MATCH, role, f"same preprocessing as the training run's {role} data"
        )
    now = fingerprint.to_dict()
    differences = {
        section: {"recorded": recorded.get(section), "now": now[section]}
        for section in ("instances", "lengths", "oov", "labels")
        if recorded.get(section) != now[section]
    }
    if differences:
        detail = "; ".join(_describe_difference(name, diff) for name, diff in differences.items())
    else:
        detail = (
            "counts, lengths, OOV rates and labels agree; token strings, ids or the indexers' "
            "settings differ (the tokenizer fingerprint shows which tokens)"
        )
    return RecordedComparison(
        DIFFERS,
        role,
        f"same bytes as the training run's {role} file, but preprocessed differently: {detail}",
        differences,
    )


def _describe_difference(section: str, difference: Mapping[str, Any]) -> str:
    recorded, now = difference["recorded"], difference["now"]
    if section == "instances":
        return f"{recorded} instances then, {now} now"
    if section == "lengths":
        parts = []
        for name in sorted(set(recorded or {}) | set(now)):
            old, new = (recorded or {}).get(name) or {}, now.get(name) or {}
            if old != new:
                parts.append(f"{name} mean length {old.get('mean')} -> {new.get('mean')}")
        return ", ".join(parts) or "length histograms differ"
    if section == "oov":
        parts = []
        for name in sorted(set(recorded or {}) | set(now)):
            old, new = (recorded or {}).get(name) or {}, now.get(name) or {}
            if old != new:
                parts.append(f"{name} OOV rate {old.get('rate')} -> {new.get('rate')}")
        return ", ".join(parts)
    return "label counts differ"

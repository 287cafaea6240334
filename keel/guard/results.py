"""The one result vocabulary of every guard check: verify, doctor, env check and the data commands.

Each check ends in one of four statuses:

- ``pass``: it ran and found nothing wrong;
- ``fail``: it ran and found a problem;
- ``not_checked``: it should have run but could not (the archive records nothing to compare
  with, no reader can be fingerprinted, ...). A check that could not check is not a pass: the
  verdict fails unless the user names the check in an explicit escape
  (``--allow-unchecked NAME``);
- ``skipped``: it did not apply (no ``--data`` given, no GPU present) or an earlier failure made
  its inputs unusable; the reason says which.

An escape never changes a status: it is recorded on the check (``allowed_by``) and every output
format shows it, so a report read later still says what was let through and by which flag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.etree import ElementTree


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_CHECKED = "not_checked"
    SKIPPED = "skipped"


PASS, FAIL, NOT_CHECKED, SKIPPED = Status.PASS, Status.FAIL, Status.NOT_CHECKED, Status.SKIPPED


@dataclass
class CheckResult:
    """One check: its name, status, a reason for people and details for machines."""

    name: str
    status: Status
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: what to do about a failure, when there is a known fix
    fix: str | None = None
    #: the explicit escape (e.g. ``--allow-unchecked tokenizer``) that keeps this check's
    #: ``fail`` or ``not_checked`` from failing the verdict; None when nothing was allowed
    allowed_by: str | None = None

    @property
    def blocks(self) -> bool:
        """Whether this check fails the verdict."""
        return self.status in (FAIL, NOT_CHECKED) and self.allowed_by is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "reason": self.reason,
            "details": self.details,
            "seconds": round(self.seconds, 4),
            "fix": self.fix,
            "allowed_by": self.allowed_by,
        }


@dataclass
class Report:
    """The checks of one guard command on one subject, and the verdict they make."""

    command: str
    subject: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check fails the verdict (see ``CheckResult.blocks``)."""
        return not any(check.blocks for check in self.checks)

    @property
    def failed(self) -> list[str]:
        """Names of the checks that fail the verdict: failed or not checked, and not allowed."""
        return [check.name for check in self.checks if check.blocks]

    @property
    def escapes(self) -> list[dict[str, str]]:
        """Every check let through by an explicit escape, with the flag and its status."""
        return [
            {"check": check.name, "status": str(check.status), "allowed_by": check.allowed_by}
            for check in self.checks
            if check.allowed_by is not None
        ]

    def check(self, name: str) -> CheckResult:
        """The check called ``name`` (KeyError when there is none)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def statuses(self) -> dict[str, str]:
        return {check.name: str(check.status) for check in self.checks}

    def allow(self, names: Iterable[str], flag: str, statuses: Iterable[Status]) -> None:
        """Mark the checks in ``names`` whose status is one of ``statuses`` as allowed by the
        escape ``flag`` (e.g. ``--allow-env-drift``), shown as given."""
        wanted = set(names)
        allowed = set(statuses)
        for check in self.checks:
            if check.name in wanted and check.status in allowed and check.allowed_by is None:
                check.allowed_by = flag

    def allow_unchecked(self, names: Iterable[str]) -> None:
        """Let the checks in ``names`` that could not check pass, each shown as allowed by
        ``--allow-unchecked <its name>`` (the flag is given once per check)."""
        for name in set(names):
            self.allow((name,), f"--allow-unchecked {name}", (Status.NOT_CHECKED,))

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "subject": self.subject,
            "ok": self.ok,
            "verdict": self.verdict,
            "failed": self.failed,
            "escapes": self.escapes,
            "checks": [check.to_dict() for check in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def to_junit_xml(self) -> str:
        """JUnit XML: a blocking check is a failure, a skipped or allowed one is skipped with
        its reason (an allowed one also names its escape), so CI dashboards show both."""
        suite = ElementTree.Element(
            "testsuite",
            name=f"keel.{self.command.replace(' ', '_')}",
            tests=str(len(self.checks)),
            failures=str(len(self.failed)),
            skipped=str(sum(not check.blocks and check.status != PASS for check in self.checks)),
            time=f"{sum(check.seconds for check in self.checks):.4f}",
        )
        if self.escapes:
            properties = ElementTree.SubElement(suite, "properties")
            for escape in self.escapes:
                ElementTree.SubElement(
                    properties,
                    "property",
                    name=f"escape.{escape['check']}",
                    value=f"{escape['status']} allowed by {escape['allowed_by']}",
                )
        for check in self.checks:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=f"keel.{self.command.replace(' ', '_')}.{Path(self.subject).name}",
                name=check.name,
                time=f"{check.seconds:.4f}",
            )
            if check.blocks:
                kind = "not checked" if check.status == NOT_CHECKED else "failed"
                failure = ElementTree.SubElement(
                    case, "failure", message=f"{kind}: {check.reason}", type=str(check.status)
                )
                failure.text = json.dumps(check.details, indent=2, default=str)
            elif check.allowed_by is not None:
                ElementTree.SubElement(
                    case,
                    "skipped",
                    message=f"{check.status} allowed by {check.allowed_by}: {check.reason}",
                )
            elif check.status == SKIPPED:
                ElementTree.SubElement(case, "skipped", message=check.reason)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

"""Every error keel raises, with stable codes.

Reports and exit codes refer to the codes (``KC001``), never to the wording, so the wording may
improve without breaking a pipeline that greps for a code. Add new codes at the end of their
block; never reuse or renumber one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# -- config and registry (KC) ------------------------------------------------------------------
UNKNOWN_KEY = "KC001"
MISSING_KEY = "KC002"
WRONG_TYPE = "KC003"
UNKNOWN_COMPONENT = "KC004"
MISSING_TYPE = "KC005"
CONFIG_SYNTAX = "KC006"
BAD_OVERRIDE = "KC007"
BAD_EXT_VAR = "KC008"
BAD_VALUE = "KC009"
CONSTRUCTION_FAILED = "KC010"
INCLUDE_PACKAGE_FAILED = "KC011"
DUPLICATE_NAME = "KC012"
MISSING_DEPENDENCY = "KC013"
BAD_REGISTRATION = "KC014"  # a component or migration registered inconsistently

# -- data (KD) ---------------------------------------------------------------------------------
BAD_DATA_LINE = "KD001"
MISSING_COLUMN = "KD002"
EMPTY_DATA = "KD003"
DATA_NOT_FOUND = "KD004"
BAD_VOCABULARY = "KD005"
UNSEEN_LABEL = "KD006"

# -- model and training (KM / KT) --------------------------------------------------------------
SHAPE_MISMATCH = "KM001"
MISSING_EXTRA = "KM002"
TRAINING_FAILED = "KT001"
SERIALIZATION_DIR_EXISTS = "KT002"
NOTHING_TO_RECOVER = "KT003"
RECOVER_CONFIG_MISMATCH = "KT004"
NAN_LOSS = "KT005"
RUN_IN_PROGRESS = "KT006"
CLUSTER_MISMATCH = "KT007"  # the ranks of a distributed run differ (cluster gate)
RANK_FAILED = "KT008"  # a rank of a distributed run failed or was killed

# -- archive (KA) ------------------------------------------------------------------------------
ARCHIVE_NOT_FOUND = "KA001"
ARCHIVE_CORRUPT = "KA002"
ARCHIVE_UNSAFE_MEMBER = "KA003"
ARCHIVE_MISSING_MEMBER = "KA004"
WEIGHTS_MISMATCH = "KA005"
ARCHIVE_TOO_LARGE = "KA006"
ARCHIVE_FORMAT_VERSION = "KA007"
ARCHIVE_HASH_MISMATCH = "KA008"
ARCHIVE_SIGNATURE = "KA009"
COMPONENT_TOO_NEW = "KA010"  # the archive has a newer component version than installed
MIGRATION_MISSING = "KA011"  # no registered migration between two component versions
MIGRATION_FAILED = "KA012"  # a migration cannot apply to what the archive holds
ARCHIVES_DIFFER = "KA013"  # keel archive diff found a difference

# -- the system (KS) -------------------------------------------------------------------------
OS_FAILURE = "KS001"  # the operating system refused: disk full, permission denied, ...
INPUT_TOO_LARGE = "KS002"  # a line, field or request over its configured limit

# -- guard (KG) --------------------------------------------------------------------------------
ENV_BREAKING = "KG001"
ENV_RISKY = "KG002"
GPU_CHECK_FAILED = "KG003"
FINGERPRINT_MISMATCH = "KG004"
VERIFY_FAILED = "KG005"
BAD_ENV_DOCUMENT = "KG006"


class KeelError(Exception):
    """Base of every error keel raises on purpose. ``code`` is stable; the message is for people."""

    code: str = "K000"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a config, located by its dotted path."""

    code: str
    path: str
    message: str
    expected: str | None = None
    found: Any = None
    suggestion: str | None = None

    def render(self) -> str:
        where = self.path or "<root>"
        text = f"[{self.code}] {where}: {self.message}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.found is not None:
            text += f", found {_excerpt(self.found)}"
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "expected": self.expected,
            "found": _excerpt(self.found) if self.found is not None else None,
            "suggestion": self.suggestion,
        }


class ConfigurationError(KeelError):
    """A config that cannot be built. Carries every issue found, not just the first."""

    code = "KC000"

    def __init__(self, issues: Sequence[ConfigIssue] | str, *, code: str | None = None) -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(code or self.code, "", issues)]
        self.issues: list[ConfigIssue] = list(issues)
        count = len(self.issues)
        header = f"{count} problem{'s' if count != 1 else ''} in the config:"
        body = "\n".join(f"  - {issue.render()}" for issue in self.issues)
        super().__init__(f"{header}\n{body}", code=code or self.issues[0].code)


class RegistryError(KeelError):
    """A registered name that does not exist, or one registered twice."""

    code = UNKNOWN_COMPONENT


class DataError(KeelError):
    """Bad input data; the message names the file and line."""

    code = BAD_DATA_LINE

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        excerpt: str | None = None,
        code: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.excerpt = excerpt
        where = path or ""
        if line is not None:
            where += f":{line}"
        text = f"{where}: {message}" if where else message
        if excerpt is not None:
            text += f"\n    {_excerpt(excerpt, 120)}"
        super().__init__(text, code=code)


class ModelError(KeelError):
    code = SHAPE_MISMATCH


class TrainingError(KeelError):
    code = TRAINING_FAILED


class ArchiveError(KeelError):
    """An archive that is missing, corrupt, tampered with or unsafe to open."""

    code = ARCHIVE_CORRUPT


class GuardError(KeelError):
    code = VERIFY_FAILED


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelled word, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _excerpt(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return printable(text)


# Every C0/C1 control character but newline and tab: ESC starts terminal escape sequences.
_CONTROL = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))
    if code not in (0x09, 0x0A)
}


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences included) written as ``\\xNN``, so
    data quoted in a message can never drive the terminal that shows it."""
    return text.translate(_CONTROL)

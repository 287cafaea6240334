"""Schema enforcement: read every line of a data file and report every problem, not the first.

``validate_data`` runs a dataset reader over a file and collects each bad line (file:line and
why), counts them by error code, and lists label values that the training data never had. To
continue past a bad line the reader must accept ``on_error`` in ``read`` (a callback that gets
each ``DataError``); a reader without it stops at its first bad line, and the report says so.
"""

from __future__ import annotations

import contextlib
import inspect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.common import errors
from keel.common.errors import DataError
from keel.data.fields.label_field import LabelField
from keel.data.fields.sequence_label_field import SequenceLabelField
from keel.data.fields.text_field import TextField
from keel.guard.results import FAIL, PASS, CheckResult

if TYPE_CHECKING:
    from keel.data.dataset_readers.dataset_reader import DatasetReader
    from keel.data.instance import Instance
    from keel.data.vocabulary import Vocabulary


@dataclass(frozen=True)
class BadLine:
    """One problem in a data file."""

    path: str
    line: int | None
    code: str
    reason: str
    excerpt: str | None = None

    def render(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: [{self.code}] {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "code": self.code,
            "reason": self.reason,
            "excerpt": self.excerpt,
        }


@dataclass
class ValidationReport:
    """Everything wrong with one data file. ``ok`` when there is nothing."""

    path: str
    instances: int = 0
    errors: list[BadLine] = field(default_factory=list)
    error_counts: Counter[str] = field(default_factory=Counter)
    #: namespace -> {label never seen in training: occurrences}
    unseen_labels: dict[str, dict[str, int]] = field(default_factory=dict)
    empty_text_fields: int = 0
    #: False when reading stopped early: at --max-errors, or at a reader's first bad line.
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(self.error_counts.values())

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def to_check(self) -> CheckResult:
        """The validation as one check of the guard's result vocabulary."""
        if self.ok:
            return CheckResult(
                "data validate", PASS, f"{self.instances} instances read; no error", self.to_dict()
            )
        counts = ", ".join(f"{code}: {n}" for code, n in sorted(self.error_counts.items()))
        return CheckResult(
            "data validate",
            FAIL,
            f"{self.error_count} error(s) ({counts}) in {self.instances} instances read",
            self.to_dict(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "instances": self.instances,
            "error_count": self.error_count,
            "error_counts": dict(sorted(self.error_counts.items())),
            "errors": [error.to_dict() for error in self.errors],
            "unseen_labels": {
                namespace: dict(sorted(labels.items()))
                for namespace, labels in sorted(self.unseen_labels.items())
            },
            "empty_text_fields": self.empty_text_fields,
            "complete": self.complete,
            "notes": list(self.notes),
        }


class _StopReading(Exception):
    """Raised from the error callback to stop at --max-errors."""


def reader_supports_on_error(reader: DatasetReader) -> bool:
    """Whether ``reader.read`` takes an ``on_error`` callback (and so continues past bad lines)."""
    try:
        return "on_error" in inspect.signature(reader.read).parameters
    except (TypeError, ValueError):
        return False


def label_namespaces(instance: Instance) -> Iterable[tuple[str, list[str]]]:
    """(namespace, string labels) of each label field of an instance."""
    for value in instance.fields.values():
        if isinstance(value, LabelField):
            if not value.skip_indexing:
                yield value.label_namespace, [value.label]  # type: ignore[list-item]
        elif isinstance(value, SequenceLabelField) and not value._skip_indexing:
            yield value.label_namespace, value.labels  # type: ignore[misc]


def labels_from_vocabulary(vocab: Vocabulary) -> dict[str, set[str]]:
    """The labels of every non-padded namespace (``*labels``, ``*tags``) of a vocabulary."""
    known: dict[str, set[str]] = {}
    for namespace in vocab.get_namespaces():
        if not vocab.is_padded(namespace):
            known[namespace] = set(vocab.get_token_to_index_vocabulary(namespace))
    return known


def labels_from_instances(instances: Iterable[Instance]) -> dict[str, set[str]]:
    """The labels each namespace takes in ``instances`` (e.g. the training data)."""
    known: dict[str, set[str]] = {}
    for instance in instances:
        for namespace, labels in label_namespaces(instance):
            known.setdefault(namespace, set()).update(labels)
    return known


def validate_data(
    reader: DatasetReader,
    path: str | Path,
    known_labels: Mapping[str, set[str]] | None = None,
    max_errors: int | None = None,
) -> ValidationReport:
    """Read every line of ``path`` with ``reader`` and report every problem.

    ``known_labels`` (namespace -> labels seen in training) turns each other label into an
    error (``KD006``); leave it None to skip that check. ``max_errors`` stops reading after that
    many errors (the report is then marked incomplete).
    """
    name = str(path)
    report = ValidationReport(path=name)
    unseen: dict[str, Counter[str]] = {}
    # (namespace, label) -> (first instance number, its source line when the reader knows it)
    first_seen: dict[tuple[str, str], tuple[int, int | None]] = {}

    def record(error: DataError, line: int | None = None) -> None:
        report.errors.append(
            BadLine(
                path=error.path or name,
                line=error.line if error.line is not None else line,
                code=error.code,
                reason=_reason(error),
                excerpt=error.excerpt,
            )
        )
        report.error_counts[error.code] += 1
        if max_errors is not None and report.error_count >= max_errors:
            raise _StopReading

    continues = reader_supports_on_error(reader)
    try:
        instances = reader.read(path, on_error=record) if continues else reader.read(path)  # type: ignore[call-arg]
        for instance in instances:
            report.instances += 1
            for value in instance.fields.values():
                if isinstance(value, TextField) and len(value.tokens) == 0:
                    report.empty_text_fields += 1
            if known_labels is None:
                continue
            for namespace, labels in label_namespaces(instance):
                seen = known_labels.get(namespace)
                if seen is None:
                    continue
                for label in labels:
                    if label not in seen:
                        unseen.setdefault(namespace, Counter())[label] += 1
                        first_seen.setdefault(
                            (namespace, label), (report.instances, instance.source_line)
                        )
    except _StopReading:
        report.complete = False
        report.notes.append(f"stopped after {max_errors} errors (--max-errors)")
    except DataError as error:
        with contextlib.suppress(_StopReading):
            record(error)
        if error.code not in (errors.DATA_NOT_FOUND, errors.EMPTY_DATA) and error.line is not None:
            report.complete = False
            if continues:
                report.notes.append("reading stopped at an error the reader cannot skip")
            else:
                report.notes.append(
                    f"{type(reader).__name__} stops at its first bad line (its read() takes no "
                    "on_error callback), so later lines were not checked"
                )
    for namespace, counts in unseen.items():
        report.unseen_labels[namespace] = dict(counts)
        for label, count in sorted(counts.items()):
            number, line = first_seen[(namespace, label)]
            where = "" if line is not None else f", the first is instance {number} of the file"
            report.errors.append(
                BadLine(
                    path=name,
                    line=line,
                    code=errors.UNSEEN_LABEL,
                    reason=(
                        f"label {label!r} ({count} instance{'s' if count != 1 else ''}{where}) "
                        f"never occurs in training namespace {namespace!r}"
                    ),
                )
            )
            report.error_counts[errors.UNSEEN_LABEL] += 1
    if report.empty_text_fields:
        report.notes.append(
            f"{report.empty_text_fields} text field(s) have no tokens after tokenization"
        )
    return report


def _reason(error: DataError) -> str:
    """The message of a DataError without the ``path:line:`` prefix it adds itself."""
    text = error.message
    prefix = error.path or ""
    if error.line is not None:
        prefix += f":{error.line}"
    if prefix and text.startswith(prefix + ": "):
        text = text[len(prefix) + 2 :]
    return text.split("\n", 1)[0]


def locate_unseen_label(
    reader: DatasetReader, path: str | Path, vocab: Vocabulary, error: DataError
) -> DataError:
    """``error`` (a label the vocabulary lacks, found while indexing, where no line is known)
    with the file and line of the first such label in ``path``; ``error`` itself if none is
    found."""
    report = validate_data(reader, path, known_labels=labels_from_vocabulary(vocab), max_errors=1)
    first = next((bad for bad in report.errors if bad.code == errors.UNSEEN_LABEL), None)
    if first is None:
        return error
    return DataError(
        first.reason, path=first.path, line=first.line, excerpt=first.excerpt, code=first.code
    )

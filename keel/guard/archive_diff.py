"""``keel archive diff A B``: how two archives differ, section by section.

- config: every dotted path added, removed or changed;
- vocabulary: per namespace, tokens added and removed, and tokens whose index moved;
- weights: tensors only in A (``-``), only in B (``+``), reshaped, and the root-mean-square
  distance of every shared tensor whose values differ by more than ``threshold`` (as
  ``allennlp diff`` does);
- environment: the two training environments under ``keel env diff``'s rules;
- predictions: both models run on the union of their golden inputs, decoded outputs compared.

Both archives are loaded as ``load_archive`` loads them (component migrations applied), so an
archive migrated by ``keel archive migrate`` compares equal to its original. ``identical`` is
True only when no section shows a difference (informational environment changes aside).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from keel.archive.archive import ArchiveLimits, archive_snapshot, opened_archive
from keel.archive.model_archive import Archive, load_opened_archive
from keel.common.file_utils import canonical_json
from keel.common.filenames import GOLDEN_FILE
from keel.common.plugins import import_plugins
from keel.data.vocabulary import Vocabulary
from keel.guard.env_diff import BREAKING, RISKY, diff_environments
from keel.guard.golden import Golden, agreement, replay

_EXAMPLES = 10


@dataclass
class ArchiveDiff:
    """Every difference between archive ``a`` (the reference) and ``b``."""

    a: str
    b: str
    config: list[dict[str, Any]] = field(default_factory=list)
    vocabulary: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] | None = None
    predictions: dict[str, Any] = field(default_factory=dict)
    threshold: float = 0.0

    @property
    def environment_differs(self) -> bool:
        if self.environment is None:
            return False
        summary = self.environment.get("summary", {})
        return bool(summary.get(str(BREAKING)) or summary.get(str(RISKY)))

    @property
    def predictions_differ(self) -> bool:
        if not self.predictions.get("compared"):
            return False  # nothing to compare on; the other sections decide
        # Scores that cannot be compared (None: other names or shapes) differ too.
        return bool(self.predictions["disagreements"]) or (
            self.predictions["max_score_difference"] != 0.0
        )

    @property
    def identical(self) -> bool:
        return not (
            self.config
            or self.vocabulary
            or self.weights
            or self.environment_differs
            or self.predictions_differ
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "threshold": self.threshold,
            "config": self.config,
            "vocabulary": self.vocabulary,
            "weights": self.weights,
            "environment": self.environment,
            "predictions": self.predictions,
        }


def diff_archives(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    threshold: float = 0.0,
    include_packages: Iterable[str] = (),
    trust_bundled_code: bool = False,
    limits: ArchiveLimits | None = None,
) -> ArchiveDiff:
    """Compare two archives; see the module docstring for what each section holds."""
    import_plugins(include_packages)
    with (
        archive_snapshot(a, limits) as snapshot_a,
        opened_archive(snapshot_a, limits=limits) as (root_a, manifest_a),
        archive_snapshot(b, limits) as snapshot_b,
        opened_archive(snapshot_b, limits=limits) as (root_b, manifest_b),
    ):
        first = load_opened_archive(
            root_a, manifest_a, snapshot_a.source, trust_bundled_code=trust_bundled_code
        )
        second = load_opened_archive(
            root_b, manifest_b, snapshot_b.source, trust_bundled_code=trust_bundled_code
        )
        golden_a = _read_golden(root_a / GOLDEN_FILE)
        golden_b = _read_golden(root_b / GOLDEN_FILE)
        result = ArchiveDiff(str(snapshot_a.source), str(snapshot_b.source), threshold=threshold)
        result.config = diff_configs(first.config, second.config)
        result.vocabulary = diff_vocabularies(first.vocab, second.vocab)
        result.weights = diff_state_dicts(
            first.model.state_dict(), second.model.state_dict(), threshold
        )
        if manifest_a.environment is not None and manifest_b.environment is not None:
            required = sorted(
                set(manifest_a.required_distributions()) | set(manifest_b.required_distributions())
            )
            result.environment = diff_environments(
                manifest_a.environment,
                manifest_b.environment,
                required_distributions=required,
                a_label="A",
                b_label="B",
            ).to_dict()
        result.predictions = compare_predictions(first, second, golden_a, golden_b)
    return result


def diff_configs(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """Every dotted path whose value differs: ``{"path", "change", "a", "b"}``."""
    if isinstance(a, dict) and isinstance(b, dict):
        changes = []
        for key in sorted(a.keys() | b.keys()):
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                changes.append({"path": where, "change": "removed", "a": a[key], "b": None})
            elif key not in a:
                changes.append({"path": where, "change": "added", "a": None, "b": b[key]})
            else:
                changes += diff_configs(a[key], b[key], where)
        return changes
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        changes = []
        for index, (left, right) in enumerate(zip(a, b, strict=True)):
            changes += diff_configs(left, right, f"{path}[{index}]")
        return changes
    if a != b:
        return [{"path": path or "<root>", "change": "changed", "a": a, "b": b}]
    return []


def diff_vocabularies(a: Vocabulary, b: Vocabulary) -> dict[str, dict[str, Any]]:
    """Per namespace that differs: counts and examples of added, removed and moved tokens."""
    result: dict[str, dict[str, Any]] = {}
    for namespace in sorted(set(a.get_namespaces()) | set(b.get_namespaces())):
        left = a.get_token_to_index_vocabulary(namespace) if namespace in a.get_namespaces() else {}
        right = (
            b.get_token_to_index_vocabulary(namespace) if namespace in b.get_namespaces() else {}
        )
        added = sorted(right.keys() - left.keys(), key=right.__getitem__)
        removed = sorted(left.keys() - right.keys(), key=left.__getitem__)
        moved = sorted(
            (token for token in left.keys() & right.keys() if left[token] != right[token]),
            key=left.__getitem__,
        )
        if added or removed or moved:
            result[namespace] = {
                "size_a": len(left),
                "size_b": len(right),
                "added": len(added),
                "removed": len(removed),
                "moved": len(moved),
                "added_examples": added[:_EXAMPLES],
                "removed_examples": removed[:_EXAMPLES],
                "moved_examples": [
                    {"token": token, "a": left[token], "b": right[token]}
                    for token in moved[:_EXAMPLES]
                ],
            }
    return result


def diff_state_dicts(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], threshold: float = 0.0
) -> list[dict[str, Any]]:
    """``-`` only in A, ``+`` only in B, ``shape`` reshaped, ``~`` values differ with RMS
    distance above ``threshold``; in key order."""
    entries: list[dict[str, Any]] = []
    for key in sorted(a.keys() | b.keys()):
        if key not in b:
            entries.append({"key": key, "change": "-", "shape_a": list(a[key].shape)})
        elif key not in a:
            entries.append({"key": key, "change": "+", "shape_b": list(b[key].shape)})
        elif a[key].shape != b[key].shape:
            entries.append(
                {
                    "key": key,
                    "change": "shape",
                    "shape_a": list(a[key].shape),
                    "shape_b": list(b[key].shape),
                }
            )
        else:
            left, right = a[key].detach().double(), b[key].detach().double()
            if torch.equal(left, right):
                continue
            rms = float(torch.sqrt(torch.mean((left - right) ** 2))) if left.numel() else 0.0
            if rms > threshold or math.isnan(rms):
                entries.append({"key": key, "change": "~", "rms": rms})
    return entries


def compare_predictions(
    first: Archive, second: Archive, golden_a: Golden | None, golden_b: Golden | None
) -> dict[str, Any]:
    """Both models on the union of their golden inputs: decoded agreement and score distance."""
    records: dict[str, dict[str, Any]] = {}
    for golden in (golden_a, golden_b):
        for record in golden.records if golden else []:
            records.setdefault(canonical_json(record), record)
    if not records:
        return {"compared": 0, "note": "neither archive has golden inputs"}
    inputs = list(records.values())
    outputs = []
    for archive in (first, second):
        try:
            outputs.append(
                replay(archive.model, archive.validation_dataset_reader, archive.vocab, inputs)
            )
        except Exception as error:  # one model cannot read the other's inputs: say so
            return {
                "compared": 0,
                "note": f"not comparable: an archive's reader cannot read the golden inputs "
                f"({type(error).__name__}: {error})",
            }
    now_a, now_b = outputs
    compared = agreement(now_a.scores, now_a.decoded, now_b)
    largest = compared.max_difference
    return {
        "compared": len(inputs),
        "agreement": (len(inputs) - len(compared.changed)) / len(inputs),
        "disagreements": len(compared.changed),
        "disagreement_examples": [
            {"input": inputs[item["input"]], "a": item["expected"], "b": item["actual"]}
            for item in compared.changed[:_EXAMPLES]
        ],
        # None: the two models' scores have other names or shapes, so no distance
        "max_score_difference": None if math.isinf(largest) else largest,
    }


def _read_golden(path: Any) -> Golden | None:
    if not path.is_file():
        return None
    try:
        return Golden.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None

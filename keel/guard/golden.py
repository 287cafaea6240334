"""Golden predictions: a fixed, seeded sample of validation inputs and the model's raw outputs.

Recorded at archive time; ``verify`` re-tokenizes, re-indexes and re-predicts the same inputs in
a new environment and compares. Inputs are stored as the raw records a predictor accepts
(``{"text": ...}`` or ``{"tokens": [...]}``), so the whole path from text to output is checked.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy
import torch

from keel.common import errors
from keel.common.errors import KeelError
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model

GOLDEN_FORMAT = 2
GOLDEN_BATCH_SIZE = 32
# Format 1 stored ``logits`` and the first of these outputs; format 2 stores what the model
# declares (``Model.golden_outputs``).
_FORMAT_1_DECODED_KEYS = ("label", "tags")


@dataclass
class Replay:
    """The indexed ids and outputs obtained now for the golden inputs, by output name."""

    indexed: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    decoded: list[dict[str, Any]]


@dataclass
class Golden:
    """A golden predictions file of any format, read into the current form."""

    format: int
    records: list[dict[str, Any]]
    indexed: list[dict[str, Any]]
    batch_size: int
    device: str
    #: per record, output name -> raw scores (compared within a tolerance)
    scores: list[dict[str, Any]]
    #: per record, output name -> decoded value (compared exactly)
    decoded: list[dict[str, Any]]
    #: the seed the inputs were sampled with (None when not recorded)
    seed: int | None = None

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Golden:
        version = document.get("format")
        records = list(document["records"])
        if version == 1:
            # logits (padding rows cut) under "logits", the first decoded output under "decoded".
            scores = [{"logits": item} if item else {} for item in document["scores"]]
            decoded = [
                {"decoded": item} if item is not None else {} for item in document["decoded"]
            ]
        elif version == 2:
            scores = [dict(item) for item in document["scores"]]
            decoded = [dict(item) for item in document["decoded"]]
        else:
            raise ValueError(f"golden predictions format {version!r} is not one this keel reads")
        if not len(records) == len(scores) == len(decoded) == len(document["indexed"]):
            raise ValueError("golden records, ids and outputs differ in number")
        return cls(
            format=int(version),
            records=records,
            indexed=list(document["indexed"]),
            batch_size=int(document.get("batch_size", GOLDEN_BATCH_SIZE)),
            device=str(document.get("device", "cpu")),
            scores=scores,
            decoded=decoded,
            seed=seed if isinstance(seed := document.get("seed"), int) else None,
        )


def sample_records(
    reader: DatasetReader, data_path: str, sample_size: int, seed: int
) -> list[dict[str, Any]]:
    """``sample_size`` records of ``data_path`` chosen by ``seed``, in file order, unlabelled."""
    records = list(reader.read_records(data_path))
    chosen = sorted(random.Random(seed).sample(range(len(records)), min(sample_size, len(records))))
    return [_without_gold(records[index]) for index in chosen]


def _without_gold(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in ("label", "tags")}


def indexed_ids(instance: Instance) -> dict[str, Any]:
    """The ids each text field's indexers produce, by field and indexer: what verify compares."""
    ids: dict[str, Any] = {}
    for name, field in sorted(instance.fields.items()):
        if isinstance(field, TextField):
            ids[name] = {
                indexer: {key: list(values) for key, values in sorted(output.items())}
                for indexer, output in sorted(field.indexed.items())
            }
    return ids


def replay(
    model: Model,
    reader: DatasetReader,
    vocab: Vocabulary,
    records: Sequence[dict[str, Any]],
    batch_size: int = GOLDEN_BATCH_SIZE,
    golden_format: int = GOLDEN_FORMAT,
) -> Replay:
    """Tokenize, index and predict ``records`` in fixed batches, on the model's device; the
    outputs are chosen as ``golden_format`` chose them."""
    instances = [reader.text_to_instance(**record) for record in records]
    for instance in instances:
        instance.index_fields(vocab)
    model.eval()
    select = _format_1_outputs if golden_format == 1 else _declared_outputs(model)
    scores: list[dict[str, Any]] = []
    decoded: list[dict[str, Any]] = []
    for start in range(0, len(instances), batch_size):
        for output in model.forward_on_instances(instances[start : start + batch_size]):
            record_scores, record_decoded = select(output)
            scores.append(record_scores)
            decoded.append(record_decoded)
    return Replay([indexed_ids(instance) for instance in instances], scores, decoded)


def record_golden(
    model: Model,
    reader: DatasetReader,
    vocab: Vocabulary,
    data_path: str,
    *,
    sample_size: int,
    seed: int,
) -> dict[str, Any]:
    """The golden section of an archive: inputs, their ids, raw scores and decoded outputs."""
    records = sample_records(reader, data_path, sample_size, seed)
    return golden_document(model, reader, vocab, records, seed=seed)


def golden_document(
    model: Model,
    reader: DatasetReader,
    vocab: Vocabulary,
    records: Sequence[dict[str, Any]],
    *,
    seed: int | None,
) -> dict[str, Any]:
    """The golden predictions file for ``records`` (already chosen), in the current format."""
    records = list(records)
    result = replay(model, reader, vocab, records)
    return {
        "format": GOLDEN_FORMAT,
        "sample_size": len(records),
        "seed": seed,
        "batch_size": GOLDEN_BATCH_SIZE,
        "device": str(model.get_device().type),
        "records": records,
        "indexed": result.indexed,
        "scores": result.scores,
        "decoded": result.decoded,
    }


_Selection = tuple[dict[str, Any], dict[str, Any]]


def _declared_outputs(model: Model) -> Callable[[dict[str, Any]], _Selection]:
    declared = type(model).golden_outputs

    def select(output: dict[str, Any]) -> _Selection:
        if declared is None:
            return _every_output(output)
        missing = [name for name in (*declared.scores, *declared.decoded) if name not in output]
        if missing:
            raise KeelError(
                f"{type(model).__name__} declares golden outputs {missing} that its forward "
                f"did not return (it returned {sorted(output)})",
                code=errors.SHAPE_MISMATCH,
            )
        mask = output.get(declared.mask) if declared.mask else None
        scores = {name: _score_rows(output[name], mask) for name in declared.scores}
        decoded = {name: _plain(output[name]) for name in declared.decoded}
        return scores, decoded

    return select


def _every_output(output: dict[str, Any]) -> _Selection:
    """A model that declares nothing: every per-instance output but the loss, float arrays as
    scores and the rest (labels, tags, ids, masks) decoded; values JSON cannot hold are left
    out."""
    scores: dict[str, Any] = {}
    decoded: dict[str, Any] = {}
    for name, value in sorted(output.items()):
        if name == "loss":
            continue
        if isinstance(value, numpy.ndarray | numpy.floating | float) and numpy.issubdtype(
            numpy.asarray(value).dtype, numpy.floating
        ):
            scores[name] = numpy.asarray(value, dtype=numpy.float32).tolist()
            continue
        plain = _plain(value)
        try:
            json.dumps(plain)
        except (TypeError, ValueError):
            continue
        decoded[name] = plain
    return scores, decoded


def _format_1_outputs(output: dict[str, Any]) -> _Selection:
    logits = output.get("logits")
    scores = {"logits": _score_rows(logits, output.get("mask"))} if logits is not None else {}
    for key in _FORMAT_1_DECODED_KEYS:
        if key in output:
            return scores, {"decoded": _plain(output[key])}
    return scores, {}


def _score_rows(value: Any, mask: Any) -> list[Any]:
    array = numpy.asarray(value, dtype=numpy.float32)
    if mask is not None and array.ndim >= 2:
        # Taggers: keep the real tokens' rows only, so padding never enters a comparison.
        array = array[: int(numpy.asarray(mask).sum())]
    return array.tolist()


def _plain(value: Any) -> Any:
    if isinstance(value, numpy.ndarray | numpy.generic | torch.Tensor):
        return value.tolist()
    return value


@dataclass
class Agreement:
    """How far outputs obtained now are from the golden ones."""

    #: inputs whose decoded output changed: index, expected, actual
    changed: list[dict[str, Any]]
    #: every |score difference|, flattened (inf when an output vanished or changed shape)
    differences: numpy.ndarray
    compared: int

    @property
    def max_difference(self) -> float:
        return float(self.differences.max()) if self.differences.size else 0.0

    def within(self, tolerance: float) -> bool:
        return not self.changed and self.max_difference <= tolerance

    def describe(self, tolerance: float) -> str:
        reasons = []
        if self.changed:
            reasons.append(f"{len(self.changed)} of {self.compared} decoded outputs changed")
        if self.max_difference > tolerance:
            reasons.append(
                f"max |score difference| {self.max_difference:.3g} > tolerance {tolerance:g}"
            )
        if not reasons:
            return (
                f"{self.compared} golden outputs reproduced; max |score difference| "
                f"{self.max_difference:.3g} (tolerance {tolerance:g})"
            )
        return "; ".join(reasons)


def agreement(
    expected_scores: Sequence[dict[str, Any]],
    expected_decoded: Sequence[dict[str, Any]],
    now: Replay,
) -> Agreement:
    """Compare outputs obtained now with recorded ones (decoded exactly, scores by value)."""
    changed = [
        {"input": index, "expected": old, "actual": new}
        for index, (old, new) in enumerate(zip(expected_decoded, now.decoded, strict=True))
        if old != new
    ]
    return Agreement(changed, score_differences(expected_scores, now.scores), len(now.decoded))


def score_differences(
    expected: Sequence[dict[str, Any]], actual: Sequence[dict[str, Any]]
) -> numpy.ndarray:
    """Absolute differences between two lists of named (ragged) score arrays, flattened; an
    output missing on one side or reshaped counts as an infinite difference."""
    parts = []
    for old, new in zip(expected, actual, strict=True):
        if old.keys() != new.keys():
            return numpy.array([numpy.inf])
        for name in sorted(old):
            old_array = numpy.asarray(old[name], dtype=numpy.float64)
            new_array = numpy.asarray(new[name], dtype=numpy.float64)
            if old_array.shape != new_array.shape:
                return numpy.array([numpy.inf])
            parts.append(numpy.abs(old_array - new_array).ravel())
    return numpy.concatenate(parts) if parts else numpy.zeros(0)

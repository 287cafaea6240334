"""Golden predictions: a fixed, seeded sample of validation inputs and the model's raw outputs.

Recorded at archive time; ``verify`` re-tokenizes, re-indexes and re-predicts the same inputs in
a new environment and compares. Inputs are stored as the raw records a predictor accepts
(``{"text": ...}`` or ``{"tokens": [...]}``), so the whole path from text to output is checked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy
import torch

from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model

GOLDEN_FORMAT = 1
GOLDEN_BATCH_SIZE = 32
# Output keys that hold a model's decoded answer, by kind of model.
DECODED_KEYS = ("label", "tags")


@dataclass
class Replay:
    """The indexed ids and outputs obtained now for the golden inputs."""

    indexed: list[dict[str, Any]]
    scores: list[list[Any]]
    decoded: list[Any]


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
) -> Replay:
    """Tokenize, index and predict ``records`` in fixed batches, on the model's device."""
    instances = [reader.text_to_instance(**record) for record in records]
    for instance in instances:
        instance.index_fields(vocab)
    model.eval()
    scores: list[list[Any]] = []
    decoded: list[Any] = []
    for start in range(0, len(instances), batch_size):
        for output in model.forward_on_instances(instances[start : start + batch_size]):
            scores.append(_scores(output))
            decoded.append(_decoded(output))
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


def _scores(output: dict[str, Any]) -> list[Any]:
    logits = output.get("logits")
    if logits is None:
        return []
    array = numpy.asarray(logits, dtype=numpy.float32)
    mask = output.get("mask")
    if mask is not None and array.ndim >= 2:
        # Taggers: keep the real tokens' rows only, so padding never enters a comparison.
        array = array[: int(numpy.asarray(mask).sum())]
    return array.tolist()


def _decoded(output: dict[str, Any]) -> Any:
    for key in DECODED_KEYS:
        if key in output:
            value = output[key]
            if isinstance(value, numpy.ndarray | torch.Tensor):
                return value.tolist()
            return value
    return None


def score_differences(expected: Sequence[Any], actual: Sequence[Any]) -> numpy.ndarray:
    """Absolute differences between two lists of (ragged) score arrays, flattened."""
    parts = []
    for old, new in zip(expected, actual, strict=True):
        old_array = numpy.asarray(old, dtype=numpy.float64)
        new_array = numpy.asarray(new, dtype=numpy.float64)
        if old_array.shape != new_array.shape:
            return numpy.array([numpy.inf])
        parts.append(numpy.abs(old_array - new_array).ravel())
    return numpy.concatenate(parts) if parts else numpy.zeros(0)

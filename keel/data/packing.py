"""Packed fields: a whole data set's indexed fields in flat arrays, batched by gathering.

A data loader that serves many epochs packs each field once (``Field.pack``), then makes every
batch with a few numpy gathers (``Packed.take``) instead of walking Python objects per instance.
``take`` returns exactly what ``Field.batch`` returns for the same instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


class Packed(Protocol):
    """A field (or indexer output) of every instance, ready to batch by index."""

    def take(self, indices: np.ndarray) -> Any:
        """The batch of the instances at ``indices``, as ``Field.batch`` would build it."""
        ...


@runtime_checkable
class ColumnarPack(Packed, Protocol):
    """An indexer's pack that can show its ids as columns (output key -> ``RaggedIds``,
    ``NestedIds`` or per-field rows), which ``TokenIndexer.pack_from_columns`` rebuilds it from.
    Every built-in indexer's pack is one; a preprocessing cache entry stores these columns."""

    def columns(self) -> Mapping[str, Any]:
        """Output key -> the ids of every field under it."""
        ...


class RaggedIds:
    """Variable-length id rows stored as one flat int64 array plus lengths."""

    def __init__(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        self.flat = flat
        self.lengths = lengths
        self.offsets = np.zeros(len(lengths), dtype=np.int64)
        if len(lengths) > 1:
            np.cumsum(lengths[:-1], out=self.offsets[1:])

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> RaggedIds:
        from itertools import chain

        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        return cls(flat, lengths)

    def to_rows(self) -> list[list[int]]:
        """Each row's ids as a list."""
        return split_by_lengths(self.flat.tolist(), self.lengths.tolist())

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``indices`` padded with 0 to the longest of them, and the mask of real ids."""
        lengths = self.lengths[indices]
        width = int(lengths.max(initial=0))
        steps = np.arange(width)
        mask = steps < lengths[:, None]
        if not len(self.flat):
            return np.zeros((len(indices), width), dtype=np.int64), mask
        positions = self.offsets[indices][:, None] + steps
        np.minimum(positions, len(self.flat) - 1, out=positions)
        padded = self.flat[positions]
        padded[~mask] = 0
        return padded, mask


class NestedIds:
    """Rows of variable-length id lists (a list of character ids per token) in flat arrays.

    ``outer``: items per row; ``inner``: ids per item, for every item in row order; ``flat``:
    every id in order.
    """

    def __init__(self, outer: np.ndarray, inner: np.ndarray, flat: np.ndarray) -> None:
        self.outer = outer
        self.inner = inner
        self.flat = flat
        self.row_offsets = np.zeros(len(outer), dtype=np.int64)
        if len(outer) > 1:
            np.cumsum(outer[:-1], out=self.row_offsets[1:])
        self.item_offsets = np.zeros(len(inner), dtype=np.int64)
        if len(inner) > 1:
            np.cumsum(inner[:-1], out=self.item_offsets[1:])

    def to_rows(self) -> list[list[list[int]]]:
        """Each row's items, each a list of ids."""
        return split_by_lengths(
            split_by_lengths(self.flat.tolist(), self.inner.tolist()), self.outer.tolist()
        )

    def take(self, indices: np.ndarray, min_inner: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``indices`` as (B, T, C) ids padded with 0 (C at least ``min_inner``), and the
        (B, T) mask of real items: what ``pad_2d`` makes from the same rows."""
        counts = self.outer[indices]
        width = int(counts.max(initial=0))
        steps = np.arange(width)
        mask = steps < counts[:, None]
        items = (self.row_offsets[indices][:, None] + steps)[mask]  # real items, row-major
        lengths = self.inner[items]
        depth = max(int(lengths.max(initial=0)), min_inner)
        padded = np.zeros((len(indices), width, depth), dtype=np.int64)
        if len(items):
            inner_steps = np.arange(depth)
            inner_mask = inner_steps < lengths[:, None]
            slots = np.zeros((len(items), depth), dtype=np.int64)
            positions = (self.item_offsets[items][:, None] + inner_steps)[inner_mask]
            slots[inner_mask] = self.flat[positions]
            padded[mask] = slots
        return padded, mask


class ArrayPack:
    """One value per instance: a batch is a slice of one array."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def take(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.values[indices])


class ListPack:
    """Fallback: keeps the items and batches the selected ones with ``batch_items``."""

    def __init__(self, items: Sequence[Any], batch_items: Callable[[list[Any]], Any]) -> None:
        self.items = items
        self.batch_items = batch_items

    def take(self, indices: np.ndarray) -> Any:
        items = self.items
        return self.batch_items([items[i] for i in indices.tolist()])


def shared_value(values: Iterable[Any]) -> Any:
    """The one value every item has, or None when they differ (or there are none)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def split_by_lengths(values: list[Any], lengths: list[int]) -> list[list[Any]]:
    """``values`` cut into consecutive pieces of ``lengths``."""
    ends = list(accumulate(lengths))
    return [values[start:end] for start, end in zip([0, *ends], ends, strict=False)]

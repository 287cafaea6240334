"""Bulk padding of ragged id lists into arrays: one numpy pass per batch, no per-row copies."""

from __future__ import annotations

from itertools import chain

import numpy as np


def pad_1d(rows: list[list[int]], min_length: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` as an int64 array (B, T) padded with 0, and the bool mask of real positions."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = max(int(lengths.max(initial=0)), min_length)
    mask = np.arange(width) < lengths[:, None]
    total = int(lengths.sum())
    padded = np.zeros((len(rows), width), dtype=np.int64)
    padded[mask] = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=total)
    return padded, mask


def pad_2d(rows: list[list[list[int]]], min_inner: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nested ``rows`` (B, T, C) padded with 0, and the bool mask (B, T) of real tokens."""
    token_counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(token_counts.max(initial=0))
    mask = np.arange(width) < token_counts[:, None]
    items = list(chain.from_iterable(rows))
    item_lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    inner = max(int(item_lengths.max(initial=0)), min_inner)
    padded = np.zeros((len(rows), width, inner), dtype=np.int64)
    # Row-major order of the mask matches the order of ``items``, so the real (b, t) slots
    # take the flattened items in turn; within each, the first ``len`` inner slots are real.
    slots = padded[mask]  # (N, inner) copy
    inner_mask = np.arange(inner) < item_lengths[:, None]
    total = int(item_lengths.sum())
    slots[inner_mask] = np.fromiter(chain.from_iterable(items), dtype=np.int64, count=total)
    padded[mask] = slots
    return padded, mask

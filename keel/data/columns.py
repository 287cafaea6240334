"""Fields as columns: a whole column of one field type as int64 arrays plus JSON, and back.

The contract every cacheable field type declares (``Field.column_kind``, ``Field.to_columns``,
``Field.from_columns``): ``to_columns`` turns the fields of one name across all instances (and
their pack, when packed) into ``FieldColumns``; ``from_columns`` rebuilds the same fields, not
indexed, and their pack from them, with no tokenizing or indexing. The preprocessing cache
stores columns and nothing else, so it never needs to know a field type's insides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.common.errors import KeelError
from keel.data.packing import NestedIds, RaggedIds

if TYPE_CHECKING:
    from keel.data.fields.field import Field
    from keel.data.token_indexers.token_indexer import TokenIndexer


class NotColumnar(KeelError):
    """These fields cannot be stored as columns (the caller then does without, e.g. no cache)."""


@dataclass
class FieldColumns:
    """One field name's column: int64 ``arrays`` by relative name, JSON ``strings``, and a JSON
    ``spec`` saying how to read them back."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    strings: Any = None
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class ColumnContext:
    """What a field type may need beyond its own column.

    ``siblings``: the first instance's fields by name (a sequence label field names the text
    field it labels). When rebuilding: ``count`` instances, the reader's ``token_indexers``, and
    the columns rebuilt so far (text fields come first).
    """

    siblings: Mapping[str, Field] = field(default_factory=dict)
    count: int = 0
    token_indexers: Mapping[str, TokenIndexer] = field(default_factory=dict)
    rebuilt: dict[str, list[Any]] = field(default_factory=dict)


_KINDS: dict[str, type[Field]] = {}


def register_column_kind(kind: str, field_type: type[Field]) -> None:
    """Called by ``Field.__init_subclass__`` for each type that declares ``column_kind``."""
    existing = _KINDS.get(kind)
    if existing is not None and existing is not field_type:
        raise KeelError(
            f"column kind {kind!r} is declared by {existing.__qualname__} and "
            f"{field_type.__qualname__}"
        )
    _KINDS[kind] = field_type


def field_type_of_kind(kind: str) -> type[Field]:
    """The field type that stores itself under ``kind``."""
    try:
        return _KINDS[kind]
    except KeyError:
        raise NotColumnar(f"unknown column kind {kind!r}") from None


def lengths_of(rows: Sequence[Sized]) -> np.ndarray:
    return np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))


def int_array(values: Iterable[int | None]) -> np.ndarray:
    """int64 array with -1 for None (token offsets and unindexed ids may be absent)."""
    items = [-1 if value is None else value for value in values]
    return np.asarray(items, dtype=np.int64).reshape(-1)


def optional_ints(values: list[int]) -> list[int | None]:
    """``int_array`` read back: -1 is None."""
    return [None if value < 0 else value for value in values]


def encode_id_columns(
    columns: Mapping[str, Any], arrays: dict[str, np.ndarray], prefix: str
) -> dict[str, str]:
    """An indexer pack's outputs (``RaggedIds``, ``NestedIds`` or per-field rows) as arrays
    under ``prefix``; returns output key -> layout (``flat`` or ``nested``)."""
    layouts = {}
    for key in sorted(columns):
        column = columns[key]
        path = f"{prefix}/{key}"
        if isinstance(column, RaggedIds):
            arrays[f"{path}/lengths"] = column.lengths
            arrays[f"{path}/values"] = column.flat
            layouts[key] = "flat"
        elif isinstance(column, NestedIds):
            arrays[f"{path}/lengths"] = column.outer
            arrays[f"{path}/inner_lengths"] = column.inner
            arrays[f"{path}/values"] = column.flat
            layouts[key] = "nested"
        else:
            layouts[key] = encode_rows(column, arrays, path)
    return layouts


def encode_rows(rows: list[list[Any]], arrays: dict[str, np.ndarray], path: str) -> str:
    """Per-field id rows (flat, or nested one level) as arrays under ``path``."""
    first = next((row for row in rows if row), None)
    if first is not None and isinstance(first[0], list):
        inner = list(chain.from_iterable(rows))
        arrays[f"{path}/lengths"] = lengths_of(rows)
        arrays[f"{path}/inner_lengths"] = lengths_of(inner)
        arrays[f"{path}/values"] = int_array(chain.from_iterable(inner))
        return "nested"
    arrays[f"{path}/lengths"] = lengths_of(rows)
    arrays[f"{path}/values"] = int_array(chain.from_iterable(rows))
    return "flat"


def decode_id_columns(
    layouts: Mapping[str, str], arrays: Mapping[str, np.ndarray], prefix: str
) -> dict[str, RaggedIds | NestedIds]:
    """``encode_id_columns`` read back, as flat-array columns."""
    outputs: dict[str, RaggedIds | NestedIds] = {}
    for key, layout in layouts.items():
        path = f"{prefix}/{key}"
        values, outer = arrays[f"{path}/values"], arrays[f"{path}/lengths"]
        if layout == "nested":
            outputs[key] = NestedIds(outer, arrays[f"{path}/inner_lengths"], values)
        else:
            outputs[key] = RaggedIds(values, outer)
    return outputs

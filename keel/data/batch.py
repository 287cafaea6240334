"""Collation: a list of instances -> a dict of batched tensors, one bulk call per field."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.common.errors import KeelError
from keel.data.instance import Instance
from keel.data.packing import Packed
from keel.data.util import gc_paused

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


def collate(instances: Sequence[Instance]) -> dict[str, Any]:
    """Batch indexed instances: ``{field name: FieldType.batch([that field of each instance])}``.

    Every instance must have the same field names with the same field types.
    """
    if not instances:
        raise KeelError("cannot collate an empty list of instances")
    names = list(instances[0].fields)
    batch: dict[str, Any] = {}
    for name in names:
        try:
            fields = [instance.fields[name] for instance in instances]
        except KeyError as error:
            raise KeelError(
                f"instances in one batch have different fields: one lacks {name!r}"
            ) from error
        field_type = type(fields[0])
        if any(type(field) is not field_type for field in fields):
            raise KeelError(f"field {name!r} has different types within one batch")
        batch[name] = field_type.batch(fields)
    return batch


_fields_of = attrgetter("fields")


class PackedInstances:
    """A list of instances packed field by field; ``take(indices)`` equals ``collate`` of them.

    Built once per vocabulary by the data loader, so each batch costs a few array gathers.
    """

    def __init__(
        self, packs: dict[str, Packed], size: int, columns: dict[str, list[Any]] | None = None
    ) -> None:
        self.packs = packs
        self.size = size
        #: field name -> that field of every instance, in order (what was packed)
        self.columns = columns or {}

    @classmethod
    def build(cls, instances: Sequence[Instance], vocab: Vocabulary) -> PackedInstances | None:
        """Pack ``instances``; None when they do not all have the same field names and types."""
        if not instances:
            return None
        layout = [(name, type(field)) for name, field in instances[0].fields.items()]
        names = [name for name, _ in layout]
        with gc_paused():
            field_dicts = list(map(_fields_of, instances))
            if set(map(len, field_dicts)) != {len(names)}:
                return None
            try:
                columns = {name: list(map(itemgetter(name), field_dicts)) for name in names}
            except KeyError:
                return None
            for name, field_type in layout:
                if set(map(type, columns[name])) != {field_type}:
                    return None
            packs = {name: field_type.pack(columns[name], vocab) for name, field_type in layout}
        return cls(packs, len(instances), columns)

    def take(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        index_array = np.asarray(indices, dtype=np.int64)
        return {name: pack.take(index_array) for name, pack in self.packs.items()}

    def __len__(self) -> int:
        return self.size

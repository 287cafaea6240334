"""``MetadataField``: any object carried alongside an instance, never tensorized."""

from __future__ import annotations

import json
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Self

from keel.data.columns import ColumnContext, FieldColumns, NotColumnar
from keel.data.fields.field import Field
from keel.data.packing import ListPack, Packed

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary

_metadata_of = attrgetter("metadata")


class MetadataField(Field):
    """Raw metadata (e.g. ``{"words": [...]}``); a batch is the list of the objects."""

    __slots__ = ("metadata",)
    column_kind = "metadata"

    def __init__(self, metadata: Any) -> None:
        self.metadata = metadata

    @classmethod
    def batch(cls, fields: list[Self]) -> list[Any]:
        return [field.metadata for field in fields]

    @classmethod
    def pack(cls, fields: list[Self], vocab: Vocabulary) -> Packed:
        return MetadataPack(list(map(_metadata_of, fields)))

    @classmethod
    def to_columns(
        cls, fields: list[Self], pack: Packed | None, context: ColumnContext
    ) -> FieldColumns:
        metadata = [field.metadata for field in fields]
        if not _plain_json(metadata):
            try:
                round_trip = json.loads(json.dumps(metadata))
            except (TypeError, ValueError) as error:
                raise NotColumnar(f"metadata is not JSON: {error}") from error
            if round_trip != metadata:
                raise NotColumnar("metadata does not survive JSON unchanged")
        return FieldColumns({}, metadata, {})

    @classmethod
    def from_columns(
        cls, columns: FieldColumns, context: ColumnContext, *, indexed: bool
    ) -> tuple[list[Self], Packed | None]:
        metadata = list(columns.strings)
        return [cls(item) for item in metadata], None if indexed else MetadataPack(metadata)

    def __getitem__(self, key: Any) -> Any:
        return self.metadata[key]

    def human_readable_repr(self) -> Any:
        return self.metadata

    def __repr__(self) -> str:
        return f"MetadataField({self.metadata!r})"


def _plain_json(metadata: list[Any]) -> bool:
    """True for the common metadata shape, dicts of string keys to lists of strings, which
    JSON keeps exactly (no round trip needed to check)."""
    if set(map(type, metadata)) != {dict}:
        return False
    values = list(chain.from_iterable(item.values() for item in metadata))
    keys = set(chain.from_iterable(metadata))
    if not all(type(key) is str for key in keys) or set(map(type, values)) - {list}:
        return False
    return set(map(type, chain.from_iterable(values))) <= {str}


class MetadataPack(ListPack):
    """The metadata objects themselves (nothing to index): a batch is one lookup each."""

    def __init__(self, metadata: list[Any]) -> None:
        super().__init__(metadata, list)

"""``MetadataField``: any object carried alongside an instance, never tensorized."""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Self

from keel.data.fields.field import Field
from keel.data.packing import ListPack, Packed

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary

_metadata_of = attrgetter("metadata")


class MetadataField(Field):
    """Raw metadata (e.g. ``{"words": [...]}``); a batch is the list of the objects."""

    __slots__ = ("metadata",)

    def __init__(self, metadata: Any) -> None:
        self.metadata = metadata

    @classmethod
    def batch(cls, fields: list[Self]) -> list[Any]:
        return [field.metadata for field in fields]

    @classmethod
    def pack(cls, fields: list[Self], vocab: Vocabulary) -> Packed:
        return MetadataPack(list(map(_metadata_of, fields)))

    def __getitem__(self, key: Any) -> Any:
        return self.metadata[key]

    def human_readable_repr(self) -> Any:
        return self.metadata

    def __repr__(self) -> str:
        return f"MetadataField({self.metadata!r})"


class MetadataPack(ListPack):
    """The metadata objects themselves (nothing to index): a batch is one lookup each."""

    def __init__(self, metadata: list[Any]) -> None:
        super().__init__(metadata, list)

"""``MetadataField``: any object carried alongside an instance, never tensorized."""

from __future__ import annotations

from typing import Any, Self

from keel.data.fields.field import Field


class MetadataField(Field):
    """Raw metadata (e.g. ``{"words": [...]}``); a batch is the list of the objects."""

    __slots__ = ("metadata",)

    def __init__(self, metadata: Any) -> None:
        self.metadata = metadata

    @classmethod
    def batch(cls, fields: list[Self]) -> list[Any]:
        return [field.metadata for field in fields]

    def __getitem__(self, key: Any) -> Any:
        return self.metadata[key]

    def human_readable_repr(self) -> Any:
        return self.metadata

    def __repr__(self) -> str:
        return f"MetadataField({self.metadata!r})"

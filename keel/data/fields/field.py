"""The ``Field`` base class: one named piece of an instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from keel.data.packing import ListPack, Packed

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class Field:
    """Counts its vocabulary items, indexes itself, and batches many of its kind at once."""

    __slots__ = ()

    def count_vocab_items(self, counter: dict[str, dict[str, int]]) -> None:
        """Add this field's vocabulary items to ``counter[namespace][item]``."""

    def index(self, vocab: Vocabulary) -> None:
        """Convert strings to ids with ``vocab``; called once before batching."""

    @classmethod
    def index_many(cls, fields: list[Self], vocab: Vocabulary) -> None:
        """Index many fields of this type at once; override where bulk lookups are faster."""
        for field in fields:
            field.index(vocab)

    @classmethod
    def pack(cls, fields: list[Self], vocab: Vocabulary) -> Packed:
        """Index ``fields`` and pack them for fast repeated batching (see ``keel.data.packing``).

        The default indexes each field and batches the selected ones with ``batch``.
        """
        cls.index_many(fields, vocab)
        return ListPack(fields, cls.batch)

    @classmethod
    def batch(cls, fields: list[Self]) -> Any:
        """Pad and stack a whole batch of these fields in one go."""
        raise NotImplementedError

    def human_readable_repr(self) -> Any:
        """A JSON-friendly view of the field, for debugging and prediction output."""
        return repr(self)

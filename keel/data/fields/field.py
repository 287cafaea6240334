"""The ``Field`` base class: one named piece of an instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from keel.data.columns import ColumnContext, FieldColumns, NotColumnar, register_column_kind
from keel.data.packing import ListPack, Packed

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class Field:
    """Counts its vocabulary items, indexes itself, and batches many of its kind at once."""

    __slots__ = ()
    #: the name this type's columns are stored under (``keel.data.columns``); None when the
    #: type cannot be stored as columns (a preprocessing cache then skips those instances)
    column_kind: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("column_kind") is not None:
            register_column_kind(cls.__dict__["column_kind"], cls)

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

    @classmethod
    def to_columns(
        cls, fields: list[Self], pack: Packed | None, context: ColumnContext
    ) -> FieldColumns:
        """``fields`` (one name across all instances; ``pack``, when given, their pack) as
        columns. Raises NotColumnar when they cannot be stored so."""
        raise NotColumnar(f"{cls.__name__} declares no column layout")

    @classmethod
    def from_columns(
        cls, columns: FieldColumns, context: ColumnContext, *, indexed: bool
    ) -> tuple[list[Self], Packed | None]:
        """The fields ``to_columns`` stored, and their pack. With ``indexed`` the fields get
        their ids back (and no pack is made); without, they stay unindexed and the pack, built
        from the stored ids, serves batching."""
        raise NotColumnar(f"{cls.__name__} declares no column layout")

    def human_readable_repr(self) -> Any:
        """A JSON-friendly view of the field, for debugging and prediction output."""
        return repr(self)

"""The ``Instance``: one example, a mapping of names to fields."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from keel.data.fields.field import Field
from keel.data.util import gc_paused

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class Instance(Mapping[str, Field]):
    """Named fields; ``index_fields(vocab)`` once, then batch with ``keel.data.batch.collate``."""

    __slots__ = ("fields", "indexed", "source_line", "source_id")

    def __init__(
        self,
        fields: dict[str, Field],
        source_line: int | None = None,
        source_id: str | None = None,
    ) -> None:
        self.fields = fields
        self.indexed = False
        #: the line of the data file the instance starts at, when its reader knows it (errors
        #: found after reading, such as an unseen label, name it)
        self.source_line = source_line
        #: the example's own id in the data, when the data has one (a tsv ``id_column``, a JSON
        #: line's ``id``, a CoNLL-U ``# sent_id``): evaluate's per-instance output carries it
        self.source_id = source_id

    def add_field(self, name: str, field: Field, vocab: Vocabulary | None = None) -> None:
        """Add a field; index it now when the instance is already indexed."""
        self.fields[name] = field
        if self.indexed and vocab is not None:
            field.index(vocab)

    def count_vocab_items(self, counter: dict[str, dict[str, int]]) -> None:
        for field in self.fields.values():
            field.count_vocab_items(counter)

    def index_fields(self, vocab: Vocabulary) -> None:
        """Index every field with ``vocab`` (idempotent: a second call is a no-op)."""
        if not self.indexed:
            for field in self.fields.values():
                field.index(vocab)
            self.indexed = True

    def __getitem__(self, key: str) -> Field:
        return self.fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def human_readable_dict(self) -> dict[str, Any]:
        return {name: field.human_readable_repr() for name, field in self.fields.items()}

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}: {field!r}" for name, field in self.fields.items())
        return f"Instance({inner})"


def index_instances(instances: Iterable[Instance], vocab: Vocabulary) -> None:
    """Index the instances not indexed yet: one bulk ``index_many`` per field name and type."""
    pending = [instance for instance in instances if not instance.indexed]
    if not pending:
        return
    with gc_paused():
        groups: dict[tuple[str, type[Field]], list[Field]] = {}
        for instance in pending:
            for name, field in instance.fields.items():
                key = (name, type(field))
                group = groups.get(key)
                if group is None:
                    groups[key] = group = []
                group.append(field)
        for (_, field_type), fields in groups.items():
            field_type.index_many(fields, vocab)
        for instance in pending:
            instance.indexed = True

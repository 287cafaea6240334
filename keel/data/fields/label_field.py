"""``LabelField``: one categorical label per instance."""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Self, cast

import numpy as np
import torch

from keel.common.errors import KeelError
from keel.data.columns import ColumnContext, FieldColumns, NotColumnar, int_array
from keel.data.fields.field import Field
from keel.data.packing import ArrayPack, Packed, shared_value

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class LabelField(Field):
    """A string label looked up in ``label_namespace``, or an int id when ``skip_indexing``."""

    column_kind = "label"

    __slots__ = ("label", "label_namespace", "skip_indexing", "label_id")

    def __init__(
        self, label: str | int, label_namespace: str = "labels", skip_indexing: bool = False
    ) -> None:
        self.label = label
        self.label_namespace = label_namespace
        self.skip_indexing = skip_indexing
        self.label_id: int | None = None
        if skip_indexing:
            if not isinstance(label, int) or isinstance(label, bool):
                raise TypeError(
                    f"LabelField with skip_indexing=True needs an int label, got {label!r}"
                )
            self.label_id = label
        elif not isinstance(label, str):
            raise TypeError(
                f"LabelField label must be a string (or an int with skip_indexing=True), "
                f"got {label!r}"
            )

    def count_vocab_items(self, counter: dict[str, dict[str, int]]) -> None:
        if not self.skip_indexing:
            counts = counter.setdefault(self.label_namespace, {})
            label = cast(str, self.label)  # an int label is skip_indexing
            counts[label] = counts.get(label, 0) + 1

    def index(self, vocab: Vocabulary) -> None:
        if not self.skip_indexing:
            self.label_id = vocab.get_token_index(cast(str, self.label), self.label_namespace)

    @classmethod
    def index_many(cls, fields: list[Self], vocab: Vocabulary) -> None:
        by_namespace: dict[str, list[Self]] = {}
        for field in fields:
            if not field.skip_indexing:
                by_namespace.setdefault(field.label_namespace, []).append(field)
        for namespace, group in by_namespace.items():
            get = vocab.get_token_to_index_vocabulary(namespace).get
            for field in group:
                label_id = get(cast(str, field.label))
                field.label_id = (
                    label_id
                    if label_id is not None
                    else vocab.get_token_index(cast(str, field.label), namespace)
                )

    @classmethod
    def pack(cls, fields: list[Self], vocab: Vocabulary) -> LabelPack:
        namespace = shared_value(map(attrgetter("label_namespace"), fields))
        skip_indexing = shared_value(map(attrgetter("skip_indexing"), fields))
        if namespace is None or skip_indexing is not False:
            cls.index_many(fields, vocab)
            ids = [field.label_id for field in fields]
        else:
            get = vocab.get_token_to_index_vocabulary(namespace).get
            ids = [get(cast(str, field.label)) for field in fields]
            if None in ids:
                # Raises for a namespace without OOV; a padded one maps the label to OOV.
                cls.index_many(fields, vocab)
                ids = [field.label_id for field in fields]
        return LabelPack(np.array(ids, dtype=np.int64), namespace, skip_indexing)

    @classmethod
    def batch(cls, fields: list[Self]) -> torch.Tensor:
        ids = [field.label_id for field in fields]
        if None in ids:
            raise KeelError("LabelField is not indexed yet: call index(vocab) before batching")
        return torch.tensor(ids, dtype=torch.long)

    @classmethod
    def to_columns(
        cls, fields: list[Self], pack: Packed | None, context: ColumnContext
    ) -> FieldColumns:
        namespace = shared_value(field.label_namespace for field in fields)
        skip_indexing = shared_value(field.skip_indexing for field in fields)
        if namespace is None or skip_indexing is None:
            raise NotColumnar("label fields of one name mix namespaces or skip_indexing")
        if isinstance(pack, LabelPack):
            ids = np.asarray(pack.values, dtype=np.int64)
        else:
            ids = int_array(field.label_id for field in fields)
        return FieldColumns(
            {"ids": ids},
            [field.label for field in fields],
            {"namespace": namespace, "skip_indexing": skip_indexing},
        )

    @classmethod
    def from_columns(
        cls, columns: FieldColumns, context: ColumnContext, *, indexed: bool
    ) -> tuple[list[Self], Packed | None]:
        namespace, skip_indexing = columns.spec["namespace"], columns.spec["skip_indexing"]
        ids = columns.arrays["ids"]
        fields = []
        for label, label_id in zip(columns.strings, ids.tolist(), strict=True):
            field = cls(label, namespace, skip_indexing)
            field.label_id = None if label_id < 0 else label_id
            fields.append(field)
        return fields, None if indexed else LabelPack(ids, namespace, skip_indexing)

    def human_readable_repr(self) -> str | int:
        return self.label

    def __repr__(self) -> str:
        return f"LabelField({self.label!r}, namespace={self.label_namespace!r})"


class LabelPack(ArrayPack):
    """Label ids, with the namespace and ``skip_indexing`` that every packed field shares (None
    where they differ)."""

    def __init__(
        self, values: np.ndarray, namespace: str | None, skip_indexing: bool | None
    ) -> None:
        super().__init__(values)
        self.namespace = namespace
        self.skip_indexing = skip_indexing

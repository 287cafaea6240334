"""``SequenceLabelField``: one label per token of a ``TextField`` (tags)."""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Self, cast

import numpy as np
import torch

from keel.common.errors import DataError, KeelError
from keel.data.columns import ColumnContext, FieldColumns, NotColumnar, int_array, lengths_of
from keel.data.fields.field import Field
from keel.data.fields.text_field import TextField
from keel.data.packing import Packed, RaggedIds, shared_value, split_by_lengths
from keel.data.token_indexers.padding import pad_1d

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class SequenceLabelField(Field):
    """Labels aligned with ``sequence_field``; batches to LongTensor (B, T) padded with 0.

    Int labels are taken as ids already (no vocabulary lookup).
    """

    __slots__ = ("labels", "sequence_field", "label_namespace", "_ids", "_skip_indexing")
    column_kind = "sequence_label"

    def __init__(
        self,
        labels: list[str] | list[int],
        sequence_field: TextField,
        label_namespace: str = "labels",
    ) -> None:
        if len(labels) != len(sequence_field):
            raise DataError(
                f"{len(labels)} labels for {len(sequence_field)} tokens: a sequence label field "
                "needs exactly one label per token",
                excerpt=" ".join(map(str, labels)),
            )
        self.labels = labels
        self.sequence_field = sequence_field
        self.label_namespace = label_namespace
        # The first label settles the common case (tag strings) without a generator.
        self._skip_indexing = (
            bool(labels)
            and isinstance(labels[0], int)
            and all(isinstance(label, int) for label in labels)
        )
        self._ids: list[int] | None = list(cast(list[int], labels)) if self._skip_indexing else None

    @property
    def ids(self) -> list[int] | None:
        """The label ids, once indexed (or given as ints); None before."""
        return self._ids

    def set_ids(self, ids: list[int]) -> None:
        """Ids computed elsewhere for these labels (a preprocessing cache entry)."""
        if len(ids) != len(self.labels):
            raise KeelError(f"{len(ids)} ids for {len(self.labels)} labels")
        self._ids = list(ids)

    @property
    def skip_indexing(self) -> bool:
        """True when the labels are int ids already (no vocabulary lookup)."""
        return self._skip_indexing

    def count_vocab_items(self, counter: dict[str, dict[str, int]]) -> None:
        if not self._skip_indexing:
            counts = counter.setdefault(self.label_namespace, {})
            get = counts.get
            for label in cast(list[str], self.labels):
                counts[label] = get(label, 0) + 1

    def index(self, vocab: Vocabulary) -> None:
        if self._skip_indexing:
            return
        mapping = vocab.get_token_to_index_vocabulary(self.label_namespace)
        labels = cast(list[str], self.labels)
        found = [mapping.get(label) for label in labels]
        if None in found:
            if not vocab.is_padded(self.label_namespace):
                raise vocab.unseen_token_error(labels[found.index(None)], self.label_namespace)
            found = [1 if i is None else i for i in found]
        self._ids = cast(list[int], found)

    @classmethod
    def index_many(cls, fields: list[Self], vocab: Vocabulary) -> None:
        # One C-level lookup over every label of a namespace; any label the namespace lacks
        # sends its fields through ``index``, which pads or names it.
        pending: dict[str, list[Self]] = {}
        for field in fields:
            if not field._skip_indexing:
                pending.setdefault(field.label_namespace, []).append(field)
        for namespace, group in pending.items():
            get = vocab.get_token_to_index_vocabulary(namespace).get
            label_lists = list(map(_labels_of, group))
            found = list(map(get, chain.from_iterable(label_lists)))
            if None in found:
                for field in group:
                    field.index(vocab)
                continue
            rows = split_by_lengths(found, list(map(len, label_lists)))
            for field, row in zip(group, rows, strict=True):
                field._ids = row

    @classmethod
    def pack(cls, fields: list[Self], vocab: Vocabulary) -> SequenceLabelPack:
        cls.index_many(fields, vocab)
        ragged = RaggedIds.from_rows([field._ids or [] for field in fields])
        return SequenceLabelPack(
            ragged,
            shared_value(field.label_namespace for field in fields),
            shared_value(field.skip_indexing for field in fields),
        )

    @classmethod
    def batch(cls, fields: list[Self]) -> torch.Tensor:
        rows = [field._ids for field in fields]
        if any(row is None for row in rows):
            raise KeelError(
                "SequenceLabelField is not indexed yet: call index(vocab) before batching"
            )
        padded, _ = pad_1d(cast(list[list[int]], rows))
        return torch.from_numpy(padded)

    @classmethod
    def to_columns(
        cls, fields: list[Self], pack: Packed | None, context: ColumnContext
    ) -> FieldColumns:
        namespace = shared_value(field.label_namespace for field in fields)
        if namespace is None:
            raise NotColumnar("sequence label fields of one name mix namespaces")
        source = next(
            (name for name, other in context.siblings.items() if other is fields[0].sequence_field),
            None,
        )
        if source is None:
            raise NotColumnar("the labelled text field is not in the instance")
        arrays: dict[str, np.ndarray] = {}
        if isinstance(pack, SequenceLabelPack):
            arrays["ids"], arrays["lengths"] = pack.ragged.flat, pack.ragged.lengths
        else:
            rows = [field._ids if field._ids is not None else [] for field in fields]
            arrays["ids"] = int_array(chain.from_iterable(rows))
            arrays["lengths"] = lengths_of(rows)
        strings = [list(field.labels) for field in fields]
        return FieldColumns(arrays, strings, {"namespace": namespace, "sequence_field": source})

    @classmethod
    def from_columns(
        cls, columns: FieldColumns, context: ColumnContext, *, indexed: bool
    ) -> tuple[list[Self], Packed | None]:
        namespace = columns.spec["namespace"]
        ragged = RaggedIds(columns.arrays["ids"], columns.arrays["lengths"])
        texts = context.rebuilt[columns.spec["sequence_field"]]
        fields = [
            cls(labels, text, namespace)
            for labels, text in zip(columns.strings, texts, strict=True)
        ]
        if indexed:
            for field, row in zip(fields, ragged.to_rows(), strict=True):
                if len(row) == len(field.labels):  # an unindexed field was stored with no ids
                    field.set_ids(row)
            return fields, None
        skip_indexing = shared_value(field.skip_indexing for field in fields)
        return fields, SequenceLabelPack(ragged, namespace, skip_indexing)

    def __len__(self) -> int:
        return len(self.labels)

    def human_readable_repr(self) -> list[str] | list[int]:
        return cast(list[str] | list[int], list(self.labels))

    def __repr__(self) -> str:
        return f"SequenceLabelField({len(self.labels)} labels, namespace={self.label_namespace!r})"


class SequenceLabelPack:
    """Label ids per instance, with the namespace and ``skip_indexing`` that every packed field
    shares (None where they differ)."""

    def __init__(
        self, ragged: RaggedIds, namespace: str | None, skip_indexing: bool | None
    ) -> None:
        self.ragged = ragged
        self.namespace = namespace
        self.skip_indexing = skip_indexing

    def take(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.ragged.take(indices)[0])


_labels_of = attrgetter("labels")

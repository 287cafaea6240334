"""``TextField``: a list of tokens and the indexers that turn them into tensors."""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Self, cast

import numpy as np
import torch

from keel.common.errors import KeelError
from keel.data.columns import (
    ColumnContext,
    FieldColumns,
    NotColumnar,
    decode_id_columns,
    encode_id_columns,
    encode_rows,
    int_array,
    lengths_of,
    optional_ints,
)
from keel.data.fields.field import Field
from keel.data.packing import ColumnarPack, Packed, split_by_lengths
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.token import Token

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary

TextFieldTensors = dict[str, dict[str, torch.Tensor]]


class TextField(Field):
    """Tokens plus ``token_indexers`` (name -> indexer); batches to ``TextFieldTensors``."""

    __slots__ = ("tokens", "token_indexers", "_indexed")
    column_kind = "text"

    def __init__(self, tokens: list[Token], token_indexers: dict[str, TokenIndexer]) -> None:
        self.tokens = tokens
        self.token_indexers = token_indexers
        self._indexed: dict[str, dict[str, list[Any]]] | None = None

    def count_vocab_items(self, counter: dict[str, dict[str, int]]) -> None:
        for indexer in self.token_indexers.values():
            indexer.count_vocab_items(self.tokens, counter)

    def index(self, vocab: Vocabulary) -> None:
        self._indexed = {
            name: indexer.tokens_to_indices(self.tokens, vocab)
            for name, indexer in self.token_indexers.items()
        }

    @classmethod
    def index_many(cls, fields: list[Self], vocab: Vocabulary) -> None:
        # Fields from one reader share one indexer dict, so each indexer runs once over all.
        groups: dict[int, list[Self]] = {}
        for field in fields:
            groups.setdefault(id(field.token_indexers), []).append(field)
        for group in groups.values():
            token_lists = [field.tokens for field in group]
            results = {
                name: indexer.batch_tokens_to_indices(token_lists, vocab)
                for name, indexer in group[0].token_indexers.items()
            }
            names = list(results)
            for position, field in enumerate(group):
                field._indexed = {name: results[name][position] for name in names}

    @classmethod
    def pack(cls, fields: list[Self], vocab: Vocabulary) -> Packed:
        indexers = fields[0].token_indexers
        if len({id(field.token_indexers) for field in fields}) != 1:
            # Fields built with different indexer objects: index each with its own.
            return super().pack(fields, vocab)
        token_lists = [field.tokens for field in fields]
        texts = list(map(_text, chain.from_iterable(token_lists)))
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        packs = {
            name: indexer.pack(token_lists, vocab, texts=texts)
            for name, indexer in indexers.items()
        }
        return TextFieldPack(packs, texts, lengths)

    def set_indexed(self, indexed: dict[str, dict[str, list[Any]]]) -> None:
        """Ids computed elsewhere for these tokens (a preprocessing cache entry), by indexer
        name and output key; the indexer names must be this field's."""
        if sorted(indexed) != sorted(self.token_indexers):
            raise KeelError(
                f"ids for indexers {sorted(indexed)}, the field has {sorted(self.token_indexers)}"
            )
        self._indexed = indexed

    @classmethod
    def to_columns(
        cls, fields: list[Self], pack: Packed | None, context: ColumnContext
    ) -> FieldColumns:
        token_lists = [field.tokens for field in fields]
        tokens = list(chain.from_iterable(token_lists))
        if any(token.text_id is not None or token.type_id is not None for token in tokens):
            raise NotColumnar("tokens carry text_id/type_id")
        arrays = {
            "lengths": lengths_of(token_lists),
            "idx": int_array(map(_idx_of, tokens)),
            "idx_end": int_array(map(_idx_end_of, tokens)),
        }
        columnar = (
            {name: pack.packs[name] for name in sorted(pack.packs)}
            if isinstance(pack, TextFieldPack)
            else {}
        )
        if isinstance(pack, TextFieldPack) and all(
            isinstance(indexer_pack, ColumnarPack) for indexer_pack in columnar.values()
        ):
            layouts = {
                name: encode_id_columns(cast(ColumnarPack, indexer_pack).columns(), arrays, name)
                for name, indexer_pack in columnar.items()
            }
            return FieldColumns(arrays, pack.texts, {"indexers": layouts})
        indexed = [field.indexed for field in fields]
        names = sorted(indexed[0])
        if any(sorted(item) != names for item in indexed):
            raise NotColumnar("text fields of one name have different indexers")
        layouts = {
            name: {
                key: encode_rows([item[name][key] for item in indexed], arrays, f"{name}/{key}")
                for key in sorted(indexed[0][name])
            }
            for name in names
        }
        return FieldColumns(arrays, [token.text for token in tokens], {"indexers": layouts})

    @classmethod
    def from_columns(
        cls, columns: FieldColumns, context: ColumnContext, *, indexed: bool
    ) -> tuple[list[Self], Packed | None]:
        layouts: dict[str, dict[str, str]] = columns.spec["indexers"]
        indexers = dict(context.token_indexers)
        if sorted(layouts) != sorted(indexers):
            raise NotColumnar(
                f"stored with indexers {sorted(layouts)}, the reader has {sorted(indexers)}"
            )
        arrays, texts = columns.arrays, columns.strings
        lengths = arrays["lengths"]
        tokens = list(
            map(
                Token,
                texts,
                optional_ints(arrays["idx"].tolist()),
                optional_ints(arrays["idx_end"].tolist()),
            )
        )
        fields = [cls(row, indexers) for row in split_by_lengths(tokens, lengths.tolist())]
        outputs = {
            name: decode_id_columns(layout, arrays, name) for name, layout in layouts.items()
        }
        if not indexed:
            packs = {
                name: indexers[name].pack_from_columns(id_columns, context.count)
                for name, id_columns in outputs.items()
            }
            return fields, TextFieldPack(packs, texts, lengths)
        rows = {
            name: {key: column.to_rows() for key, column in id_columns.items()}
            for name, id_columns in outputs.items()
        }
        for position, field in enumerate(fields):
            field.set_indexed(
                {
                    name: {key: by_key[key][position] for key in by_key}
                    for name, by_key in rows.items()
                }
            )
        return fields, None

    @property
    def indexed(self) -> dict[str, dict[str, list[Any]]]:
        if self._indexed is None:
            raise KeelError("TextField is not indexed yet: call index(vocab) before batching")
        return self._indexed

    @classmethod
    def batch(cls, fields: list[Self]) -> TextFieldTensors:
        indexers = fields[0].token_indexers
        indexed = [field.indexed for field in fields]
        return {
            name: indexer.batch_tensors([item[name] for item in indexed])
            for name, indexer in indexers.items()
        }

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self):
        return iter(self.tokens)

    def __getitem__(self, index: int) -> Token:
        return self.tokens[index]

    def human_readable_repr(self) -> list[str]:
        return [token.text for token in self.tokens]

    def __repr__(self) -> str:
        words = " ".join(token.text for token in self.tokens[:12])
        more = " ..." if len(self.tokens) > 12 else ""
        return f"TextField({len(self.tokens)} tokens: {words}{more})"


_text = attrgetter("text")
_idx_of = attrgetter("idx")
_idx_end_of = attrgetter("idx_end")


class TextFieldPack:
    """Text fields packed: one pack per indexer, plus every token's text and each field's length.

    ``texts`` and ``lengths`` are kept for the preprocessing fingerprint, which hashes them
    instead of walking the tokens again.
    """

    def __init__(self, packs: dict[str, Packed], texts: list[str], lengths: np.ndarray) -> None:
        self.packs = packs
        self.texts = texts
        self.lengths = lengths

    def take(self, indices: np.ndarray) -> TextFieldTensors:
        return {name: pack.take(indices) for name, pack in self.packs.items()}

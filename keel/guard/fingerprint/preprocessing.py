"""The preprocessing fingerprint: the indexed instances of one data file reduced to one digest
(order-sensitive; field names, token strings, token ids, lengths, labels) plus statistics.
"""

from __future__ import annotations

import hashlib
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import chain, compress, islice
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.common.errors import KeelError
from keel.data.fields.label_field import LabelField, LabelPack
from keel.data.fields.metadata_field import MetadataField, MetadataPack
from keel.data.fields.sequence_label_field import SequenceLabelField, SequenceLabelPack
from keel.data.fields.text_field import TextField, TextFieldPack
from keel.data.packing import ArrayPack, ColumnarPack, NestedIds, RaggedIds, split_by_lengths
from keel.data.token_indexers.token_indexer import IndexedRowsPack
from keel.data.util import gc_paused
from keel.guard.fingerprint.canonical import (
    I64,
    canonical_json,
    nul_terminated,
    string_bytes,
    strings_bytes,
    u32,
)

if TYPE_CHECKING:
    from keel.data.batch import PackedInstances
    from keel.data.instance import Instance
    from keel.data.token_indexers.token_indexer import TokenIndexer
    from keel.data.vocabulary import Vocabulary


PREPROCESSING_FORMAT = "keel-preprocessing-fingerprint/2"

_OOV_INDEX = 1  # padded namespaces: 0 is padding, 1 is @@UNKNOWN@@ (docs/architecture.md)


@dataclass
class PreprocessingFingerprint:
    """The digest of a sequence of indexed instances, with summary statistics.

    ``lengths``: per text field, a histogram ``{token count: instances}``. ``oov``: per
    vocabulary namespace, ``{"items": n, "oov": k, "rate": k / n}`` over every id the token
    indexers produced. ``labels``: per label field, ``{label: count}``.
    """

    digest: str
    instances: int
    lengths: dict[str, dict[int, int]] = dataclass_field(default_factory=dict)
    oov: dict[str, dict[str, float]] = dataclass_field(default_factory=dict)
    labels: dict[str, dict[str, int]] = dataclass_field(default_factory=dict)
    #: how ``digest`` was computed; a record from another keel may carry an older format
    format: str = PREPROCESSING_FORMAT

    def to_dict(self) -> dict[str, Any]:
        lengths = {}
        for name in sorted(self.lengths):
            histogram = self.lengths[name]
            count = sum(histogram.values())
            total = sum(length * n for length, n in histogram.items())
            lengths[name] = {
                "min": min(histogram) if histogram else 0,
                "max": max(histogram) if histogram else 0,
                "mean": round(total / count, 4) if count else 0.0,
                "histogram": {str(length): histogram[length] for length in sorted(histogram)},
            }
        return {
            "format": self.format,
            "digest": self.digest,
            "instances": self.instances,
            "lengths": lengths,
            "oov": {name: dict(self.oov[name]) for name in sorted(self.oov)},
            "labels": {
                name: {label: self.labels[name][label] for label in sorted(self.labels[name])}
                for name in sorted(self.labels)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessingFingerprint:
        return cls(
            format=str(data.get("format", PREPROCESSING_FORMAT)),
            digest=str(data["digest"]),
            instances=int(data["instances"]),
            lengths={
                name: {int(k): int(v) for k, v in entry["histogram"].items()}
                for name, entry in data.get("lengths", {}).items()
            },
            oov={name: dict(entry) for name, entry in data.get("oov", {}).items()},
            labels={name: dict(entry) for name, entry in data.get("labels", {}).items()},
        )


class _Streams:
    """Named byte streams, each hashed as it grows; one digest covers them all, by name.

    A stream is one column's canonical bytes concatenated in instance order, so feeding the
    instances at once or in chunks of any size gives the same digest.
    """

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, ...], Any] = {}
        self._worker: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def add(self, name: tuple[str, ...], data: Any) -> None:
        stream = self._hashes.get(name)
        if stream is None:
            stream = self._hashes[name] = hashlib.sha256()
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if self._worker is None and size < _BACKGROUND_BYTES:
            stream.update(data)
            return
        # hashlib lets go of the GIL on large buffers, so a worker thread hashes them while
        # this one goes on with the next columns. One worker, first in first out: every
        # stream still gets its bytes in order, so the digest is the same. The buffers are
        # the packs' arrays, which nothing changes while a fingerprint is taken.
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="keel-fingerprint")
        self._pending.append(self._worker.submit(stream.update, data))

    def _finish(self) -> None:
        """Wait for the worker's hashing (raising its error, if any) and stop it."""
        if self._worker is None:
            return
        try:
            for future in self._pending:
                future.result()
        finally:
            self._worker.shutdown()
            self._worker, self._pending = None, []

    def ints(self, name: tuple[str, ...], values: Any) -> None:
        """int64, little-endian."""
        self.add(name, np.ascontiguousarray(values, dtype="<i8").data)

    def strings(self, name: tuple[str, ...], texts: list[str]) -> None:
        self.add(name, nul_terminated(texts))

    def digest(self, header: bytes) -> str:
        self._finish()
        digest = hashlib.sha256(header + u32(len(self._hashes)))
        for name in sorted(self._hashes):
            digest.update(strings_bytes(list(name)) + self._hashes[name].digest())
        return digest.hexdigest()


# Buffers from this size on are hashed by a worker thread (an int64 id column of 128k ids).
_BACKGROUND_BYTES = 1024 * 1024

_fields_of = attrgetter("fields")
_text_of = attrgetter("text")
_labels_of = attrgetter("labels")
_label_of = attrgetter("label")
# Chunk size when the caller gives no packed instances: bounds the memory of packing a stream.
# The digest does not depend on it.
_CHUNK = 4096

#: A layout: per field (sorted by name) its name, kind and what must agree across a column
#: (indexer names, label namespace), flattened to strings.
Layout = tuple[str, ...]


_HASHED_KINDS = ("text", "label", "sequence_label", "metadata")


def _text_layout(indexers: Mapping[str, TokenIndexer], vocab: Vocabulary) -> tuple[str, ...]:
    """Per indexer (sorted by name): its name, and "1" when its ids determine token texts."""
    entries: list[str] = []
    for name in sorted(indexers):
        entries += (name, "1" if indexers[name].ids_determine_text(vocab) else "0")
    return tuple(entries)


def _column_layout(name: str, column: list[Any], vocab: Vocabulary) -> tuple[str, ...] | None:
    """The layout entry of ``name`` when every field of ``column`` agrees on it, else None."""
    kinds = set(map(type, column))
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    # Each field type declares its kind (keel.data.columns); the hashing of each kind is
    # this module's, and frozen by the fingerprint format.
    declared = getattr(kind, "column_kind", None)  # a Field subclass declares it
    label = declared if declared in _HASHED_KINDS else None
    extras: tuple[str, ...]
    if label == "text":
        distinct = {id(item): item for item in map(attrgetter("token_indexers"), column)}
        texts = {_text_layout(indexers, vocab) for indexers in distinct.values()}
        if len(texts) != 1:
            return None
        extras = texts.pop()
    elif label in ("label", "sequence_label"):
        namespaces = set(map(attrgetter("label_namespace"), column))
        skips = set(map(attrgetter("skip_indexing"), column))
        if len(namespaces) != 1 or len(skips) != 1:
            return None
        extras = (namespaces.pop(), "ids" if skips.pop() else "strings")
    elif label == "metadata":
        extras = ()
    else:
        label = "other"
        extras = (f"{kind.__module__}.{kind.__qualname__}",)
    return (name, label, str(len(extras)), *extras)


def _uniform_layout(
    fields: list[dict[str, Any]], vocab: Vocabulary
) -> tuple[Layout, dict[str, list[Any]]] | None:
    """The shared layout of instances (given by their field dicts) and their columns, or None."""
    names = sorted(fields[0])
    if set(map(len, fields)) != {len(names)}:
        return None
    layout: list[str] = []
    columns: dict[str, list[Any]] = {}
    for name in names:
        try:
            column = list(map(itemgetter(name), fields))
        except KeyError:
            return None
        entry = _column_layout(name, column, vocab)
        if entry is None:
            return None
        layout += entry
        columns[name] = column
    return tuple(layout), columns


def _packed_layout(
    packed: PackedInstances, vocab: Vocabulary
) -> tuple[Layout, dict[str, list[Any]]] | None:
    """The layout of packed instances, reusing what packing checked: one type per column, one
    indexer dict per text column, one namespace per label column."""
    columns = packed.columns
    if len(columns) != len(packed.packs):
        return None
    layout: list[str] = []
    for name in sorted(columns):
        column = columns[name]
        entry: tuple[str, ...] | None
        pack = packed.packs[name]
        if isinstance(pack, TextFieldPack):
            extras = _text_layout(column[0].token_indexers, vocab)
            entry = (name, "text", str(len(extras)), *extras)
        elif (
            isinstance(pack, LabelPack | SequenceLabelPack)
            and pack.namespace is not None
            and pack.skip_indexing is not None
        ):
            kind = "label" if isinstance(pack, LabelPack) else "sequence_label"
            entry = (name, kind, "2", pack.namespace, "ids" if pack.skip_indexing else "strings")
        else:
            entry = _column_layout(name, column, vocab)
        if entry is None:
            return None
        layout += entry
    return tuple(layout), columns


class _Tokens:
    """The token texts of a text column, to compare per instance with metadata lists."""

    def __init__(self, texts: list[str], lengths: np.ndarray) -> None:
        self.texts = texts
        self.lengths = lengths
        self._rows: list[list[str]] | None = None

    @property
    def rows(self) -> list[list[str]]:
        """Each instance's token texts."""
        if self._rows is None:
            self._rows = split_by_lengths(self.texts, self.lengths.tolist())
        return self._rows

    def one(self, index: int) -> _Tokens:
        return _Tokens(self.rows[index], self.lengths[index:][:1])

    def equal(self, values: list[Any]) -> list[bool]:
        return list(map(operator.eq, values, self.rows))

    def all_equal(self, values: list[list[Any]]) -> bool:
        """Whether every list in ``values`` equals its instance's tokens, without splitting
        them per instance: the same lengths and the same items in one flat comparison (a
        tagger's metadata words are the tokens' own strings, so mostly pointer checks)."""
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        return np.array_equal(lengths, self.lengths) and (
            list(chain.from_iterable(values)) == self.texts
        )


class _PreprocessingHasher:
    """Feeds instances into the digest and the statistics, a run of one layout at a time.

    Every column of a run goes in whole, from what packing made (``PackedInstances``): ids as
    the flat int64 arrays, token strings as one NUL-joined string (only the out-of-vocabulary
    ones where ids determine the rest). Hashing then costs C-level passes over arrays, not
    Python code per token. Runs of instances with one layout are recorded in a layout stream,
    so instances with different fields stay distinguishable.
    """

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.streams = _Streams()
        self.instances = 0
        self.lengths: dict[str, Counter[int]] = {}
        self.oov_items: Counter[str] = Counter()
        self.oov_count: Counter[str] = Counter()
        self.labels: dict[str, Counter[str]] = {}
        self._padded: dict[str, bool] = {}
        self._layout: Layout | None = None
        self._run = 0
        #: per namespace whose ids stand for strings, how often each id occurred: the strings
        #: of the ids used go into the digest once (unused vocabulary entries do not matter)
        self._used: dict[str, np.ndarray] = {}
        #: this run's text columns: (every token's text, tokens per field)
        self._texts: dict[str, tuple[list[str], np.ndarray]] = {}
        self._columns: dict[str, Callable[[str, list[Any], Any], None]] = {
            "label": self._label_column,
            "sequence_label": self._sequence_column,
            "metadata": self._metadata_column,
            "other": self._other_column,
        }

    def add(self, instances: Sequence[Instance], packed: PackedInstances | None = None) -> None:
        """Add ``instances`` in order; ``packed``: the same instances packed with the vocab."""
        if instances:
            with gc_paused():  # many short-lived lists, no cycles (see gc_paused)
                self._add(instances, packed)

    def _add(self, instances: Sequence[Instance], packed: PackedInstances | None) -> None:
        if packed is not None and len(packed) != len(instances):
            raise KeelError(f"{len(packed)} packed instances given for {len(instances)}")
        vocab = self.vocab
        uniform = _packed_layout(packed, vocab) if packed is not None else None
        if uniform is None:
            packed = None
            fields = list(map(_fields_of, instances))
            uniform = _uniform_layout(fields, vocab)
        if uniform is not None:
            self._add_run(len(instances), *uniform, packed)
            return
        # Mixed layouts (rare): each run of consecutive instances sharing one goes in whole.
        layouts = [_uniform_layout([item], vocab) for item in fields]  # never None for one
        start = 0
        for end in range(1, len(fields) + 1):
            if end == len(fields) or layouts[end][0] != layouts[start][0]:  # type: ignore[index]
                run = _uniform_layout(fields[start:end], vocab)
                assert run is not None  # equal per-instance layouts make a uniform run
                self._add_run(end - start, *run, None)
                start = end

    def _add_run(
        self,
        count: int,
        layout: Layout,
        columns: dict[str, list[Any]],
        packed: PackedInstances | None,
    ) -> None:
        if layout != self._layout:
            self._close_run()
            self._layout = layout
        self._run += count
        self.instances += count
        entries: list[tuple[str, str, tuple[str, ...]]] = []
        position = 0
        while position < len(layout):
            name, kind, extras = layout[position], layout[position + 1], int(layout[position + 2])
            entries.append((name, kind, layout[position + 3 : position + 3 + extras]))
            position += 3 + extras
        packs = {
            name: packed.packs.get(name) if packed is not None else None for name, *_ in entries
        }
        # Text columns first: metadata lists equal to a text field's tokens refer to them.
        self._texts = {}
        for name, kind, text_extras in entries:
            if kind == "text":
                packs[name] = self._text_column(name, columns[name], packs[name], text_extras)
        for name, kind, _ in entries:
            if kind != "text":
                self._columns[kind](name, columns[name], packs[name])

    def _close_run(self) -> None:
        if self._run and self._layout is not None:
            self.streams.ints(("@runs",), [self._run, len(self._layout)])
            self.streams.strings(("@layout",), list(self._layout))
        self._run = 0

    # -- statistics -------------------------------------------------------------------------

    def _is_padded(self, namespace: str) -> bool:
        padded = self._padded.get(namespace)
        if padded is None:
            padded = self._padded[namespace] = self.vocab.is_padded(namespace)
        return padded

    def _count_oov(self, namespace: str, flat: np.ndarray) -> None:
        if self._is_padded(namespace):
            self.oov_items[namespace] += len(flat)
            self.oov_count[namespace] += int(np.count_nonzero(flat == _OOV_INDEX))

    def _histogram(self, name: str, lengths: np.ndarray) -> None:
        histogram = self.lengths.get(name)
        if histogram is None:
            histogram = self.lengths[name] = Counter()
        values, counts = np.unique(lengths, return_counts=True)
        histogram.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))

    def _count_labels(self, name: str, labels: Iterable[str] | Mapping[str, int]) -> None:
        counts = self.labels.get(name)
        if counts is None:
            counts = self.labels[name] = Counter()
        counts.update(labels)

    # -- columns ----------------------------------------------------------------------------

    def _ids(self, stream: tuple[str, ...], column: Any) -> np.ndarray:
        """Hash one indexer output: RaggedIds, NestedIds, or rows of ids (possibly nested one
        level), the same ids giving the same bytes in every form."""
        if isinstance(column, RaggedIds):
            self.streams.ints((*stream, "rows"), column.lengths)
            flat = column.flat
        elif isinstance(column, NestedIds):
            self.streams.ints((*stream, "rows"), column.outer)
            if len(column.inner):  # as for rows: nested only once some row has an item
                self.streams.ints((*stream, "inner"), column.inner)
            flat = column.flat
        else:
            rows = column
            self.streams.ints((*stream, "rows"), np.fromiter(map(len, rows), dtype=np.int64))
            first = next((row for row in rows if row), None)
            if first is not None and type(first[0]) is list:
                inner = list(chain.from_iterable(rows))
                self.streams.ints((*stream, "inner"), np.fromiter(map(len, inner), np.int64))
                values = chain.from_iterable(inner)
            else:
                values = chain.from_iterable(rows)
            # numpy's fromiter is the fastest way from Python ints to a packed array.
            flat = np.fromiter(values, dtype=np.int64)
        self.streams.ints(stream, flat)
        return flat

    def _text_column(
        self, name: str, column: list[TextField], pack: Any, layout: tuple[str, ...]
    ) -> Any:
        if not isinstance(pack, TextFieldPack):
            pack = TextField.pack(column, self.vocab)
        indexers = column[0].token_indexers
        if isinstance(pack, TextFieldPack):
            texts, lengths = pack.texts, pack.lengths
            outputs = {
                indexer: _indexer_columns(indexer_pack, indexers[indexer], column, self.vocab)
                for indexer, indexer_pack in pack.packs.items()
            }
        else:
            # Fields with equal indexer names but different indexer objects: packing indexed
            # each field with its own.
            token_lists = [field.tokens for field in column]
            texts = list(map(_text_of, chain.from_iterable(token_lists)))
            lengths = np.fromiter(map(len, token_lists), dtype=np.int64)
            indexed = [field.indexed for field in column]
            outputs = {
                indexer: _row_columns([item[indexer] for item in indexed], name, indexer)
                for indexer in indexers
            }
        self._texts[name] = (texts, lengths)
        self.streams.ints((name, "text", "lengths"), lengths)
        self._histogram(name, lengths)
        flats: dict[str, np.ndarray] = {}
        for indexer in sorted(outputs):
            vocabulary_keys = indexers[indexer].vocabulary_keys
            namespace = indexers[indexer].namespace
            for key in sorted(outputs[indexer]):
                flat = self._ids((name, "text", indexer, key), outputs[indexer][key])
                if namespace is not None and key in vocabulary_keys:
                    self._count_oov(namespace, flat)
                    if key == vocabulary_keys[0]:
                        flats[indexer] = flat
        # The layout flags the indexers whose ids name each token's text exactly (out of
        # vocabulary aside): with one, the namespace's vocabulary (hashed once) plus the texts
        # of out-of-vocabulary tokens cover every token string, without joining them all.
        flagged = [layout[i] for i in range(0, len(layout), 2) if layout[i + 1] == "1"]
        if flagged and flagged[0] in flats:
            indexer = flagged[0]
            self._mark_used(indexers[indexer].namespace, flats[indexer])
            positions = np.flatnonzero(flats[indexer] == _OOV_INDEX).tolist()
            oov_texts = [texts[position] for position in positions]
            self.streams.strings((name, "text", "oov-tokens", indexer), oov_texts)
        else:
            self.streams.strings((name, "text", "tokens"), texts)
        return pack

    def _mark_used(self, namespace: str, ids: np.ndarray) -> np.ndarray:
        """Count the occurrences of ``ids`` in ``namespace``; returns this call's counts."""
        counts = np.bincount(ids, minlength=self.vocab.get_vocab_size(namespace))
        used = self._used.get(namespace)
        self._used[namespace] = counts if used is None else used + counts
        return counts

    def _count_ids(self, name: str, ids: np.ndarray) -> None:
        """Label counts of int labels (``skip_indexing``): the ids are the labels."""
        if not len(ids):
            return
        if ids.min() >= 0:
            counts = np.bincount(ids)
            values = np.flatnonzero(counts)
            counts = counts[values]
        else:
            values, counts = np.unique(ids, return_counts=True)
        labels = map(str, values.tolist())
        self._count_labels(name, dict(zip(labels, counts.tolist(), strict=True)))

    def _labels(
        self,
        name: str,
        kind: str,
        fields: list[Any],
        labels: Callable[[], list[str]],
        ids: np.ndarray,
    ) -> None:
        """Label ids, and their strings (``labels()``) only where ids do not name them one to
        one."""
        self.streams.ints((name, kind, "ids"), ids)
        namespace = fields[0].label_namespace
        if fields[0].skip_indexing:
            self._count_ids(name, ids)
        elif not self._is_padded(namespace):
            # A namespace without OOV: each id names one label, so the strings of the ids used
            # (hashed once, in ``result``) cover the labels.
            counts = self._mark_used(namespace, ids)
            table = self.vocab.get_tokens(namespace)
            used = np.flatnonzero(counts)
            labels_used = [table[value] for value in used.tolist()]
            self._count_labels(name, dict(zip(labels_used, counts[used].tolist(), strict=True)))
        else:
            strings = labels()
            self.streams.strings((name, kind, "labels"), strings)
            self._count_labels(name, strings)

    def _label_column(self, name: str, column: list[LabelField], pack: Any) -> None:
        if not isinstance(pack, ArrayPack):
            pack = LabelField.pack(column, self.vocab)
        self._labels(name, "label", column, lambda: list(map(_label_of, column)), pack.values)

    def _sequence_column(self, name: str, column: list[SequenceLabelField], pack: Any) -> None:
        if not isinstance(pack, SequenceLabelPack):
            pack = SequenceLabelField.pack(column, self.vocab)
        ragged = pack.ragged
        self.streams.ints((name, "sequence_label", "lengths"), ragged.lengths)

        def labels() -> list[str]:
            return list(chain.from_iterable(map(_labels_of, column)))

        self._labels(name, "sequence_label", column, labels, ragged.flat)
        self._count_oov(column[0].label_namespace, ragged.flat)

    def _metadata_column(self, name: str, column: list[MetadataField], pack: Any) -> None:
        # Lists of strings in metadata often repeat the tokens of the run's first text field (a
        # tagger's {"words": [...]}); per instance, a flag then stands in for the strings.
        reference = None
        if self._texts:
            texts, lengths = self._texts[min(self._texts)]
            reference = _Tokens(texts, lengths)
        if isinstance(pack, MetadataPack):
            items = list(pack.items)
        else:
            items = list(map(attrgetter("metadata"), column))
        self._metadata((name, "metadata"), items, reference)

    def _metadata(
        self, stream: tuple[str, ...], metadata: list[Any], tokens: _Tokens | None
    ) -> None:
        # The common shape, the same string keys everywhere, goes in a column at a time;
        # anything else one object at a time, with identical bytes.
        first = metadata[0]
        columns = None
        if (
            type(first) is dict
            and set(map(type, metadata)) == {dict}
            and set(map(len, metadata)) == {len(first)}
            and all(type(key) is str for key in first)
        ):
            keys = sorted(first)
            try:  # same size and every key of the first present: the same keys
                columns = [list(map(itemgetter(key), metadata)) for key in keys]
            except KeyError:
                columns = None
        if columns is not None:
            count = len(metadata)
            self.streams.ints((*stream, "shape"), np.tile(np.array([0, len(keys)]), count))
            self.streams.add((*stream, "keys"), nul_terminated(keys) * count)
            for key, values in zip(keys, columns, strict=True):
                self._metadata_values((*stream, "key", key), values, tokens)
        elif len(metadata) > 1:
            for index, item in enumerate(metadata):
                self._metadata(stream, [item], tokens.one(index) if tokens else None)
        else:
            self.streams.ints((*stream, "shape"), [1, 0])
            self.streams.strings((*stream, "json"), [canonical_json(first)])

    def _metadata_values(
        self, stream: tuple[str, ...], values: list[Any], tokens: _Tokens | None
    ) -> None:
        """Per value: a flag (1: a list equal to the instance's tokens), then for the others a
        list of strings (length, items) or any other value (length -1, its JSON)."""
        count = len(values)
        if set(map(type, values)) == {list}:
            if tokens is not None and tokens.all_equal(values):
                self.streams.ints((*stream, "same"), np.ones(count, dtype=np.int64))
                return
            same = tokens.equal(values) if tokens is not None else [False] * count
            if all(same):
                self.streams.ints((*stream, "same"), np.ones(count, dtype=np.int64))
                return
            keep = [not flag for flag in same]
            rest = list(compress(values, keep))
            lengths = np.fromiter(map(len, rest), dtype=np.int64, count=len(rest))
            flat = list(chain.from_iterable(rest))
            try:
                data = nul_terminated(flat)
            except TypeError:  # not all strings: value by value below
                pass
            else:
                self.streams.ints((*stream, "same"), np.array(same, dtype=np.int64))
                self.streams.ints((*stream, "lengths"), lengths)
                self.streams.add((*stream, "items"), data)
                return
        if count > 1:
            for index, value in enumerate(values):
                self._metadata_values(stream, [value], tokens.one(index) if tokens else None)
            return
        value = values[0]
        if tokens is not None and type(value) is list and tokens.equal(values)[0]:
            self.streams.ints((*stream, "same"), [1])
            return
        self.streams.ints((*stream, "same"), [0])
        self.streams.ints((*stream, "lengths"), [-1])
        self.streams.strings((*stream, "items"), [canonical_json(value)])

    def _other_column(self, name: str, column: list[Any], pack: Any) -> None:
        # A field type this module does not know: its readable form (its class is in the layout).
        texts = [canonical_json(field.human_readable_repr()) for field in column]
        self.streams.strings((name, "other"), texts)

    def result(self) -> PreprocessingFingerprint:
        self._close_run()
        for namespace in sorted(self._used):
            table = self.vocab.get_tokens(namespace)
            used = np.flatnonzero(self._used[namespace])
            self.streams.ints(("@vocabulary", namespace, "ids"), used)
            self.streams.strings(("@vocabulary", namespace), [table[i] for i in used.tolist()])
        digest = self.streams.digest(string_bytes(PREPROCESSING_FORMAT) + I64.pack(self.instances))
        oov = {
            namespace: {
                "items": items,
                "oov": self.oov_count[namespace],
                "rate": round(self.oov_count[namespace] / items, 6) if items else 0.0,
            }
            for namespace, items in self.oov_items.items()
        }
        return PreprocessingFingerprint(
            digest=digest,
            instances=self.instances,
            lengths={name: dict(histogram) for name, histogram in self.lengths.items()},
            oov=oov,
            labels={name: dict(counts) for name, counts in self.labels.items()},
        )


def _indexer_columns(
    pack: Any, indexer: TokenIndexer, fields: list[TextField], vocab: Vocabulary
) -> dict[str, Any]:
    """One indexer's outputs for a column: key -> RaggedIds or per-field rows."""
    if isinstance(pack, ColumnarPack):
        return dict(pack.columns())
    # A custom indexer whose pack does not expose its columns: index again, field by field.
    rows = indexer.batch_tokens_to_indices([field.tokens for field in fields], vocab)
    return IndexedRowsPack(rows, indexer.batch_tensors).columns()


def _row_columns(rows: list[dict[str, list[Any]]], field: str, indexer: str) -> dict[str, Any]:
    try:
        return IndexedRowsPack(rows, list).columns()
    except KeelError as error:
        raise KeelError(f"field {field!r}, indexer {indexer!r}: {error}") from error


def preprocessing_fingerprint(
    instances: Iterable[Instance],
    vocab: Vocabulary,
    packed: PackedInstances | None = None,
) -> PreprocessingFingerprint:
    """Digest and statistics of ``instances`` in order.

    ``packed`` is the same instances packed with ``vocab`` (``PackedInstances.build``, what a
    data loader batches from): given, the ids are hashed straight from its arrays. Without it,
    the instances are packed here, a chunk at a time.
    """
    hasher = _PreprocessingHasher(vocab)
    if packed is not None:
        hasher.add(instances if isinstance(instances, Sequence) else list(instances), packed)
        return hasher.result()
    stream = iter(instances)
    while chunk := list(islice(stream, _CHUNK)):
        hasher.add(chunk)
    return hasher.result()


class FingerprintingIterator:
    """Wraps an instance stream so the fingerprint is computed while a consumer reads it.

    ``fingerprint`` is available once the stream is exhausted; the digest is the one
    ``preprocessing_fingerprint`` gives for the same instances.
    """

    def __init__(self, instances: Iterable[Instance], vocab: Vocabulary) -> None:
        self._source = iter(instances)
        self._hasher = _PreprocessingHasher(vocab)
        self._pending: list[Instance] = []
        self._result: PreprocessingFingerprint | None = None

    def __iter__(self) -> FingerprintingIterator:
        return self

    def __next__(self) -> Instance:
        try:
            instance = next(self._source)
        except StopIteration:
            if self._result is None:
                self._hasher.add(self._pending)
                self._pending = []
                self._result = self._hasher.result()
            raise
        self._pending.append(instance)
        if len(self._pending) >= _CHUNK:
            self._hasher.add(self._pending)
            self._pending = []
        return instance

    @property
    def fingerprint(self) -> PreprocessingFingerprint:
        if self._result is None:
            raise KeelError("the fingerprint is ready only once every instance has been read")
        return self._result

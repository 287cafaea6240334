"""Preprocessing and tokenizer-behaviour fingerprints.

Both reduce what keel's data pipeline *produced* to a sha256 over canonical bytes built here
(little-endian packed integers, length-prefixed UTF-8), never over ``hash()`` or ``repr``, so the
same data through the same pipeline gives the same digest in every process and on every platform.

- ``preprocessing_fingerprint``: the indexed instances of one data file (order-sensitive; field
  names, token strings, token ids, lengths, labels) plus summary statistics.
- ``tokenizer_fingerprint``: a fixed, versioned probe corpus (``probe_corpus/vN.txt``) run through
  a tokenizer and its token indexers; keeps each line's tokens so a mismatch can be shown.
- ``vocabulary_hash``: the namespaces and tokens of a vocabulary, in index order.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from importlib import resources
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.common import errors
from keel.common.errors import GuardError, KeelError
from keel.data.fields.label_field import LabelField
from keel.data.fields.metadata_field import MetadataField
from keel.data.fields.sequence_label_field import SequenceLabelField
from keel.data.fields.text_field import TextField
from keel.guard.hashing import FileHash, hash_file

if TYPE_CHECKING:
    from keel.data.instance import Instance
    from keel.data.token_indexers.token_indexer import TokenIndexer
    from keel.data.tokenizers.tokenizer import Tokenizer
    from keel.data.vocabulary import Vocabulary

PREPROCESSING_FORMAT = "keel-preprocessing-fingerprint/1"
TOKENIZER_FORMAT = "keel-tokenizer-fingerprint/1"
VOCABULARY_FORMAT = "keel-vocabulary-hash/1"

#: Every released probe corpus and the sha256 of its file. Released files are never edited.
PROBE_CORPORA: dict[str, str] = {
    "v1": "20663b1aba114a0cf0cf2aff56d8a2f31d400092ec53ce2541720cd59ffb501d",
}
DEFAULT_PROBE_CORPUS = "v1"

_OOV_INDEX = 1  # padded namespaces: 0 is padding, 1 is @@UNKNOWN@@ (docs/architecture.md)
_BIG_ENDIAN = sys.byteorder == "big"
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")


# -- canonical bytes ------------------------------------------------------------------------------


def _u32(value: int) -> bytes:
    return _U32.pack(value)


def _str(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return _U32.pack(len(data)) + data


def _strs(texts: list[str]) -> bytes:
    """A list of strings: count, each length in code points, then the UTF-8 of their join.

    The lengths make the join unambiguous without escaping, and cost one C-level pass.
    """
    lengths = array("I", map(len, texts))
    if _BIG_ENDIAN:
        lengths.byteswap()
    joined = "".join(texts).encode("utf-8", "surrogatepass")
    return _U32.pack(len(texts)) + lengths.tobytes() + _U32.pack(len(joined)) + joined


def _ints(values: Any) -> bytes:
    """A (possibly nested) list of ints: a tag, the count, then packed int64s or the children."""
    if values and type(values[0]) is list:
        return b"N" + _U32.pack(len(values)) + b"".join(_ints(child) for child in values)
    packed = array("q", values)
    if _BIG_ENDIAN:
        packed.byteswap()
    return b"F" + _U32.pack(len(packed)) + packed.tobytes()


def _pack_ints(values: list[int], typecode: str = "q") -> bytes:
    packed = array(typecode, values)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _json(value: Any) -> str:
    """Canonical JSON for metadata; objects JSON cannot express count only by their type."""
    try:
        text = json.dumps(
            value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=True
        )
    except (TypeError, ValueError):
        text = "<" + type(value).__qualname__ + ">"
    return text


# -- preprocessing fingerprint --------------------------------------------------------------------


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
            "format": PREPROCESSING_FORMAT,
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
            digest=str(data["digest"]),
            instances=int(data["instances"]),
            lengths={
                name: {int(k): int(v) for k, v in entry["histogram"].items()}
                for name, entry in data.get("lengths", {}).items()
            },
            oov={name: dict(entry) for name, entry in data.get("oov", {}).items()},
            labels={name: dict(entry) for name, entry in data.get("labels", {}).items()},
        )


# Tags in the structure stream, so the streams parse back unambiguously.
_TAG_INSTANCE, _TAG_TEXT, _TAG_LABEL, _TAG_SEQUENCE, _TAG_METADATA, _TAG_OTHER = range(1, 7)
_TAG_FLAT, _TAG_NESTED, _TAG_CHUNK, _TAG_ROWS, _TAG_JSON, _TAG_WORDS = range(7, 13)
_TAG_STRINGS_NUL, _TAG_STRINGS_LENGTHS = 13, 14
# Instances are encoded a chunk at a time, column by column; the chunk size is part of the
# format (changing it changes every digest), so it is a constant, not a parameter.
_CHUNK = 1024


class _PreprocessingHasher:
    """Feeds instances into the digest and the statistics, a chunk of instances at a time.

    Each chunk is serialized into three streams, each hashed as one running concatenation:
    structure (tags, counts, label ids, string lengths), strings, and token ids. The
    structure stream says how to cut the others, so together they determine every instance
    exactly. A chunk whose instances share field names and types is encoded column by column:
    whole columns go through C-level list operations (chain, map, count, Counter) instead of
    Python code per token, which keeps the fingerprint a few percent of reading and indexing.
    Any other chunk is encoded instance by instance.
    """

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self._hashes = [hashlib.sha256() for _ in range(3)]
        self._structure: list[int] = []
        self._strings: list[str] = []
        self._ids: list[np.ndarray] = []
        self._pending: list[Instance] = []
        self.instances = 0
        self.lengths: dict[str, Counter[int]] = {}
        self.oov_items: Counter[str] = Counter()
        self.oov_count: Counter[str] = Counter()
        self.labels: dict[str, Counter[str]] = {}
        self._padded: dict[str, bool] = {}
        self._columns = {
            TextField: self._text_column,
            LabelField: self._label_column,
            SequenceLabelField: self._sequence_column,
            MetadataField: self._metadata_column,
        }

    def add(self, instance: Instance) -> None:
        self._pending.append(instance)
        if len(self._pending) >= _CHUNK:
            pending, self._pending = self._pending, []
            self.add_chunk(pending)

    # -- chunks -----------------------------------------------------------------------------

    def add_chunk(self, chunk: list[Instance]) -> None:
        """Add up to ``_CHUNK`` instances; every chunk but the last must be exactly that size."""
        if self._pending:
            raise KeelError("add_chunk after add: use one or the other")
        vocab = self.vocab
        for instance in chunk:
            if not instance.indexed:
                instance.index_fields(vocab)
        self.instances += len(chunk)
        fields = [instance.fields for instance in chunk]
        names = sorted(fields[0])
        columns: list[tuple[str, list[Any], Any]] = []
        # Same number of fields and every name of the first present in each: same names.
        if len(set(map(len, fields))) == 1:
            for name in names:
                try:
                    column = [item[name] for item in fields]
                except KeyError:
                    break
                kinds = set(map(type, column))
                handler = self._columns.get(kinds.pop()) if len(kinds) == 1 else None
                if handler is None:
                    break
                columns.append((name, column, handler))
            else:
                self._structure += (_TAG_CHUNK, len(chunk), len(names))
                self._strings += names
                for name, column, handler in columns:
                    handler(name, column)
                self._flush()
                return
        self._structure += (_TAG_ROWS, len(chunk))
        for instance in chunk:
            self._add_row(instance)
        self._flush()

    def _is_padded(self, namespace: str) -> bool:
        padded = self._padded.get(namespace)
        if padded is None:
            padded = self._padded[namespace] = self.vocab.is_padded(namespace)
        return padded

    def _histogram(self, name: str, counts: Iterable[int]) -> None:
        histogram = self.lengths.get(name)
        if histogram is None:
            histogram = self.lengths[name] = Counter()
        histogram.update(counts)

    def _count_labels(self, name: str, labels: Iterable[str]) -> None:
        counts = self.labels.get(name)
        if counts is None:
            counts = self.labels[name] = Counter()
        counts.update(labels)

    def _add_id_rows(self, rows: list[list[Any]], namespace: str | None) -> None:
        """Per-instance id lists (flat, or nested one level as the characters indexer makes)."""
        structure = self._structure
        structure += map(len, rows)
        first = next((row for row in rows if row), None)
        if first is not None and type(first[0]) is list:
            inner = list(chain.from_iterable(rows))
            structure.append(_TAG_NESTED)
            structure += map(len, inner)
            values = chain.from_iterable(inner)
        else:
            structure.append(_TAG_FLAT)
            values = chain.from_iterable(rows)
        # numpy's fromiter is the fastest way from Python ints to packed little-endian bytes.
        flat = np.fromiter(values, dtype="<i8")
        self._ids.append(flat)
        if namespace is not None and self._is_padded(namespace):
            self.oov_items[namespace] += len(flat)
            self.oov_count[namespace] += int(np.count_nonzero(flat == _OOV_INDEX))

    def _text_column(self, name: str, column: list[TextField]) -> None:
        token_lists = [field.tokens for field in column]
        counts = list(map(len, token_lists))
        self._structure.append(_TAG_TEXT)
        self._structure += counts
        self._strings += [token.text for tokens in token_lists for token in tokens]
        self._histogram(name, counts)
        # The private attribute skips a property call per field; the property raises if unindexed.
        indexed = [field._indexed for field in column]
        if None in indexed:
            indexed = [field.indexed for field in column]
        indexers = column[0].token_indexers
        indexer_names = sorted(indexed[0])
        try:
            # Same number of indexers everywhere and the first one's names found in each (no
            # KeyError below) means the same indexer names in every field of the column.
            if len(set(map(len, indexed))) != 1:
                raise KeyError
            by_indexer = [[item[name] for item in indexed] for name in indexer_names]
            if any(len(set(map(len, outputs))) != 1 for outputs in by_indexer):
                raise KeyError
            keys_by_indexer = [sorted(outputs[0]) for outputs in by_indexer]
            rows_by_key = [
                [[output[key] for output in outputs] for key in keys]
                for outputs, keys in zip(by_indexer, keys_by_indexer, strict=True)
            ]
        except KeyError:
            # Fields in one column with different indexers: rare; encode each field's dict.
            self._structure.append(_TAG_ROWS)
            for item, field in zip(indexed, column, strict=True):
                self._indexed_dict(item, field.token_indexers)
            return
        self._structure += (_TAG_CHUNK, len(indexer_names))
        for indexer_name, keys, rows in zip(
            indexer_names, keys_by_indexer, rows_by_key, strict=True
        ):
            self._strings.append(indexer_name)
            self._structure.append(len(keys))
            namespace = getattr(indexers.get(indexer_name), "namespace", None)
            for key, key_rows in zip(keys, rows, strict=True):
                self._strings.append(key)
                self._add_id_rows(key_rows, namespace)

    def _indexed_dict(self, indexed: dict[str, dict[str, list[Any]]], indexers: Any) -> None:
        self._structure.append(len(indexed))
        for indexer_name in sorted(indexed):
            outputs = indexed[indexer_name]
            self._strings.append(indexer_name)
            self._structure.append(len(outputs))
            namespace = getattr(indexers.get(indexer_name), "namespace", None)
            for key in sorted(outputs):
                self._strings.append(key)
                self._add_id_rows([outputs[key]], namespace)

    def _label_column(self, name: str, column: list[LabelField]) -> None:
        labels = [str(field.label) for field in column]
        ids = [field.label_id for field in column]
        if None in ids:
            ids = [-1 if label_id is None else label_id for label_id in ids]
        self._structure.append(_TAG_LABEL)
        self._structure += ids
        self._strings += [field.label_namespace for field in column]
        self._strings += labels
        self._count_labels(name, labels)

    def _sequence_column(self, name: str, column: list[SequenceLabelField]) -> None:
        rows = [field.labels for field in column]
        self._structure.append(_TAG_SEQUENCE)
        self._structure += map(len, rows)
        self._strings += [field.label_namespace for field in column]
        flat = list(chain.from_iterable(rows))
        if not set(map(type, flat)) <= {str}:
            flat = list(map(str, flat))
        self._strings += flat
        self._count_labels(name, flat)
        # SequenceLabelField keeps its ids privately (None until indexed).
        ids = [field._ids for field in column]
        namespaces = {field.label_namespace for field in column}
        if None not in ids and len(namespaces) == 1:
            self._structure.append(_TAG_CHUNK)
            self._add_id_rows(ids, namespaces.pop())
            return
        self._structure.append(_TAG_ROWS)
        for field in column:
            indexed = field._ids is not None
            self._add_id_rows([field._ids or []], field.label_namespace if indexed else None)

    def _metadata_column(self, name: str, column: list[MetadataField]) -> None:
        self._structure.append(_TAG_METADATA)
        metadata = [field.metadata for field in column]
        # The common shape, the same keys everywhere, each a list of strings (a tagger's
        # {"words": [...]}), is checked and encoded a whole column at a time.
        if set(map(type, metadata)) == {dict} and len(set(map(tuple, metadata))) == 1:
            keys = list(metadata[0])
            if all(type(key) is str for key in keys):
                values = [[item[key] for item in metadata] for key in keys]
                lists = all(set(map(type, rows)) <= {list} for rows in values)
                flat = [list(chain.from_iterable(rows)) for rows in values] if lists else []
                if lists and all(set(map(type, items)) <= {str} for items in flat):
                    order = sorted(range(len(keys)), key=keys.__getitem__)
                    self._structure += (_TAG_CHUNK, len(keys))
                    for index in order:
                        self._strings.append(keys[index])
                        self._structure += map(len, values[index])
                        self._strings += flat[index]
                    return
        self._structure.append(_TAG_ROWS)
        for item in metadata:
            self._metadata(item)

    def _metadata(self, metadata: Any) -> None:
        # The common shape, {"words": [str, ...]}, skips json.dumps (the slowest step here).
        if type(metadata) is dict and all(type(key) is str for key in metadata):
            keys = sorted(metadata)
            values = [metadata[key] for key in keys]
            if all(
                type(value) is list and all(type(item) is str for item in value) for value in values
            ):
                self._structure += (_TAG_WORDS, len(keys))
                self._structure += map(len, values)
                self._strings += keys
                for value in values:
                    self._strings += value
                return
        self._structure.append(_TAG_JSON)
        self._strings.append(_json(metadata))

    # -- one instance at a time -------------------------------------------------------------

    def _add_row(self, instance: Instance) -> None:
        fields = instance.fields
        names = sorted(fields)
        self._structure += (_TAG_INSTANCE, len(names))
        self._strings += names
        for name in names:
            value = fields[name]
            if isinstance(value, TextField):
                self._text_column(name, [value])
            elif isinstance(value, LabelField):
                self._label_column(name, [value])
            elif isinstance(value, SequenceLabelField):
                self._sequence_column(name, [value])
            elif isinstance(value, MetadataField):
                self._metadata_column(name, [value])
            else:
                # A field type this module does not know: its class and readable form.
                kind = type(value)
                self._structure.append(_TAG_OTHER)
                self._strings.append(f"{kind.__module__}.{kind.__qualname__}")
                self._strings.append(_json(value.human_readable_repr()))

    def _flush(self) -> None:
        structure, texts, ids = self._hashes
        strings = self._strings
        joined = "\x00".join(strings)
        if joined.count("\x00") == len(strings) - 1:
            # No string holds NUL (the usual case): NUL-terminated strings need no lengths.
            self._structure += (_TAG_STRINGS_NUL, len(strings))
            joined += "\x00"
        else:
            self._structure += (_TAG_STRINGS_LENGTHS, len(strings))
            self._structure += map(len, strings)
            joined = "".join(strings)
        structure.update(_pack_ints(self._structure))
        texts.update(joined.encode("utf-8", "surrogatepass"))
        for array_ in self._ids:
            ids.update(array_.data)
        self._structure.clear()
        self._strings.clear()
        self._ids.clear()

    def result(self) -> PreprocessingFingerprint:
        if self._pending:
            pending, self._pending = self._pending, []
            self.add_chunk(pending)
        digest = hashlib.sha256(_str(PREPROCESSING_FORMAT) + _I64.pack(self.instances))
        for stream in self._hashes:
            digest.update(stream.digest())
        oov = {
            namespace: {
                "items": items,
                "oov": self.oov_count[namespace],
                "rate": round(self.oov_count[namespace] / items, 6) if items else 0.0,
            }
            for namespace, items in self.oov_items.items()
        }
        return PreprocessingFingerprint(
            digest=digest.hexdigest(),
            instances=self.instances,
            lengths={name: dict(histogram) for name, histogram in self.lengths.items()},
            oov=oov,
            labels={name: dict(counts) for name, counts in self.labels.items()},
        )


def preprocessing_fingerprint(
    instances: Iterable[Instance], vocab: Vocabulary
) -> PreprocessingFingerprint:
    """Digest and statistics of ``instances`` in order, indexing any that are not yet indexed."""
    hasher = _PreprocessingHasher(vocab)
    stream = iter(instances)
    while chunk := list(islice(stream, _CHUNK)):
        hasher.add_chunk(chunk)
    return hasher.result()


class FingerprintingIterator:
    """Wraps an instance stream so the fingerprint is computed while a consumer reads it.

    ``fingerprint`` is available once the stream is exhausted; this is how a training run gets
    the fingerprint of its data without reading the file twice.
    """

    def __init__(self, instances: Iterable[Instance], vocab: Vocabulary) -> None:
        self._source = iter(instances)
        self._hasher = _PreprocessingHasher(vocab)
        self._result: PreprocessingFingerprint | None = None

    def __iter__(self) -> FingerprintingIterator:
        return self

    def __next__(self) -> Instance:
        try:
            instance = next(self._source)
        except StopIteration:
            if self._result is None:
                self._result = self._hasher.result()
            raise
        self._hasher.add(instance)
        return instance

    @property
    def fingerprint(self) -> PreprocessingFingerprint:
        if self._result is None:
            raise KeelError("the fingerprint is ready only once every instance has been read")
        return self._result


# -- vocabulary -----------------------------------------------------------------------------------


def vocabulary_hash(vocab: Vocabulary) -> str:
    """sha256 of every namespace (sorted by name): padded or not, and its tokens in index order."""
    digest = hashlib.sha256(_str(VOCABULARY_FORMAT))
    namespaces = sorted(vocab.get_namespaces())
    digest.update(_u32(len(namespaces)))
    for namespace in namespaces:
        table = vocab.get_index_to_token_vocabulary(namespace)
        tokens = [table[index] for index in range(len(table))]
        digest.update(_str(namespace) + (b"P" if vocab.is_padded(namespace) else b"U"))
        digest.update(_strs(tokens))
    return digest.hexdigest()


# -- tokenizer fingerprint ------------------------------------------------------------------------


def probe_corpus_bytes(version: str = DEFAULT_PROBE_CORPUS) -> bytes:
    """The raw bytes of a released probe corpus, checked against its pinned sha256."""
    expected = PROBE_CORPORA.get(version)
    if expected is None:
        known = ", ".join(sorted(PROBE_CORPORA))
        raise GuardError(
            f"unknown probe corpus version {version!r} (this keel knows: {known})",
            code=errors.FINGERPRINT_MISMATCH,
        )
    data = resources.files("keel.guard").joinpath("probe_corpus", f"{version}.txt").read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise GuardError(
            f"probe corpus {version} is damaged: sha256 {actual}, expected {expected}; released "
            "probe corpora must never change (check for end-of-line conversion by git)",
            code=errors.FINGERPRINT_MISMATCH,
        )
    return data


def load_probe_corpus(version: str = DEFAULT_PROBE_CORPUS) -> list[str]:
    """The probe lines of a corpus version, split on ``\\n`` only (see probe_corpus/README.md)."""
    lines = probe_corpus_bytes(version).decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass
class TokenizerFingerprint:
    """How a tokenizer and its indexers treat the probe corpus: one digest, plus per line the
    token count, a short digest (token strings and ids) and the token strings themselves."""

    corpus_version: str
    digest: str
    token_counts: list[int]
    line_digests: list[str]
    tokens: list[list[str]]
    #: sha256 of each component's ``fingerprint_material()`` (a transformer tokenizer's
    #: tokenizer.json and normalisation settings), by component
    materials: dict[str, str] = dataclass_field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "materials": dict(self.materials),
            "format": TOKENIZER_FORMAT,
            "corpus_version": self.corpus_version,
            "corpus_sha256": PROBE_CORPORA.get(self.corpus_version),
            "digest": self.digest,
            "token_counts": list(self.token_counts),
            "line_digests": list(self.line_digests),
            "tokens": [list(line) for line in self.tokens],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenizerFingerprint:
        fmt = data.get("format", TOKENIZER_FORMAT)
        if fmt != TOKENIZER_FORMAT:
            raise GuardError(
                f"unsupported tokenizer fingerprint format {fmt!r} (expected {TOKENIZER_FORMAT})",
                code=errors.BAD_ENV_DOCUMENT,
            )
        return cls(
            corpus_version=str(data["corpus_version"]),
            digest=str(data["digest"]),
            token_counts=[int(n) for n in data["token_counts"]],
            line_digests=[str(d) for d in data["line_digests"]],
            tokens=[[str(t) for t in line] for line in data["tokens"]],
            materials={str(k): str(v) for k, v in dict(data.get("materials") or {}).items()},
        )


@dataclass(frozen=True)
class LineDiff:
    """One probe line that a tokenizer/indexers now treat differently."""

    line: int  # 1-based line number in the probe corpus
    text: str
    old_tokens: list[str]
    new_tokens: list[str]

    @property
    def same_tokens(self) -> bool:
        """True when only the ids changed (e.g. a different vocabulary), not the tokens."""
        return self.old_tokens == self.new_tokens

    def render(self) -> str:
        text = json.dumps(self.text, ensure_ascii=False)
        if self.same_tokens:
            return (
                f"line {self.line} {text}: same {len(self.new_tokens)} tokens, different ids\n"
                f"  tokens: {json.dumps(self.new_tokens, ensure_ascii=False)}"
            )
        return (
            f"line {self.line} {text}:\n"
            f"  old ({len(self.old_tokens)}): {json.dumps(self.old_tokens, ensure_ascii=False)}\n"
            f"  new ({len(self.new_tokens)}): {json.dumps(self.new_tokens, ensure_ascii=False)}"
        )


def tokenizer_fingerprint(
    tokenizer: Tokenizer,
    token_indexers: Mapping[str, TokenIndexer],
    vocab: Vocabulary,
    corpus_version: str = DEFAULT_PROBE_CORPUS,
) -> TokenizerFingerprint:
    """Run the probe corpus through ``tokenizer`` and each of ``token_indexers`` with ``vocab``.

    Reads the vocabulary only; an indexer that rejects a token (a non-padded namespace) records
    the error code for that line instead of failing.
    """
    lines = load_probe_corpus(corpus_version)
    tokenized = tokenizer.batch_tokenize(lines)
    names = sorted(token_indexers)
    digest = hashlib.sha256(_str(TOKENIZER_FORMAT) + _str(corpus_version) + _u32(len(lines)))
    materials = component_materials(tokenizer, token_indexers)
    for name, material_digest in sorted(materials.items()):
        digest.update(_str(name) + _str(material_digest))
    counts: list[int] = []
    line_digests: list[str] = []
    texts_per_line: list[list[str]] = []
    for tokens in tokenized:
        texts = [token.text for token in tokens]
        parts = [_strs(texts), _u32(len(names))]
        for name in names:
            parts.append(_str(name))
            try:
                outputs = token_indexers[name].tokens_to_indices(tokens, vocab)
            except KeelError as error:
                parts.append(b"E" + _str(error.code))
                continue
            parts.append(_u32(len(outputs)))
            for key in sorted(outputs):
                parts.append(_str(key) + _ints(outputs[key]))
        line_digest = hashlib.sha256(b"".join(parts)).digest()
        digest.update(line_digest)
        counts.append(len(tokens))
        line_digests.append(line_digest[:8].hex())
        texts_per_line.append(texts)
    return TokenizerFingerprint(
        corpus_version=corpus_version,
        digest=digest.hexdigest(),
        token_counts=counts,
        line_digests=line_digests,
        tokens=texts_per_line,
        materials=materials,
    )


def component_materials(tokenizer: Any, token_indexers: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of ``fingerprint_material()`` for the tokenizer and each indexer that has one.

    Covers what the probe corpus may not exercise: a word-piece vocabulary entry, a normaliser
    setting in tokenizer.json.
    """
    components = {"tokenizer": tokenizer, **{f"indexer:{k}": v for k, v in token_indexers.items()}}
    materials = {}
    for name, component in components.items():
        material = getattr(component, "fingerprint_material", None)
        if callable(material):
            materials[name] = hashlib.sha256(material()).hexdigest()
    return materials


def diff_tokenizer_fingerprints(
    old: TokenizerFingerprint, new: TokenizerFingerprint, limit: int | None = 5
) -> list[LineDiff]:
    """The first ``limit`` probe lines (all when None) treated differently, old vs new."""
    if old.corpus_version != new.corpus_version:
        raise GuardError(
            f"cannot compare tokenizer fingerprints taken with different probe corpora "
            f"({old.corpus_version} vs {new.corpus_version})",
            code=errors.FINGERPRINT_MISMATCH,
        )
    if old.digest == new.digest:
        return []
    lines = load_probe_corpus(old.corpus_version)
    diffs: list[LineDiff] = []
    for index, (old_digest, new_digest) in enumerate(
        zip(old.line_digests, new.line_digests, strict=True)
    ):
        if old_digest != new_digest:
            diffs.append(LineDiff(index + 1, lines[index], old.tokens[index], new.tokens[index]))
            if limit is not None and len(diffs) >= limit:
                break
    return diffs


# -- one data file, end to end --------------------------------------------------------------------


@dataclass
class DataFingerprint:
    """Everything keel records about one data file: raw bytes, preprocessing and tokenizer."""

    file: FileHash
    preprocessing: PreprocessingFingerprint
    tokenizer: TokenizerFingerprint | None
    vocabulary_sha256: str
    #: "archive" (the model's vocabulary) or "data" (built from this file, see below)
    vocabulary_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "tokenizer": self.tokenizer.to_dict() if self.tokenizer is not None else None,
            "vocabulary_sha256": self.vocabulary_sha256,
            "vocabulary_source": self.vocabulary_source,
        }


def reader_tokenizer_fingerprint(
    reader: Any, vocab: Vocabulary, corpus_version: str = DEFAULT_PROBE_CORPUS
) -> TokenizerFingerprint | None:
    """The tokenizer fingerprint of a dataset reader's ``tokenizer`` and ``token_indexers``.

    A reader of pre-tokenized data (no ``tokenizer``) splits on whitespace, so the probe corpus
    goes through the whitespace tokenizer; a reader without ``token_indexers`` gives None.
    """
    from keel.data.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    token_indexers = getattr(reader, "token_indexers", None)
    if not token_indexers:
        return None
    tokenizer = getattr(reader, "tokenizer", None) or WhitespaceTokenizer()
    return tokenizer_fingerprint(tokenizer, token_indexers, vocab, corpus_version)


def fingerprint_data_file(
    reader: Any,
    data_path: str | Path,
    vocab: Vocabulary | None = None,
    vocabulary_config: Mapping[str, Any] | None = None,
) -> DataFingerprint:
    """Hash, read, index and fingerprint one data file with ``reader``.

    With ``vocab`` (an archive's) the ids are the model's. Without it the vocabulary is built
    from this file itself (with ``vocabulary_config``, the config's ``vocabulary`` section, when
    given): the digest then describes the file's own preprocessing, comparable only with other
    fingerprints computed the same way.
    """
    from keel.common.from_params import build
    from keel.data.vocabulary import Vocabulary

    file_hash = hash_file(data_path)
    instances = list(reader.read(data_path))
    source = "archive"
    if vocab is None:
        source = "data"
        config = dict(vocabulary_config or {})
        vocab = build(Vocabulary, config, path="vocabulary", extras={"instances": instances})
    return DataFingerprint(
        file=file_hash,
        preprocessing=preprocessing_fingerprint(instances, vocab),
        tokenizer=reader_tokenizer_fingerprint(reader, vocab),
        vocabulary_sha256=vocabulary_hash(vocab),
        vocabulary_source=source,
    )

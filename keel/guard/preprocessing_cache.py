"""A cache of tokenized and indexed instances, so a second run on the same data skips both.

An entry is keyed by what determines its content and nothing else: the sha256 of the data file,
the dataset reader's resolved config (tokenizer and token indexers included), the vocabulary's
hash and keel's version. Any change to one of them is a different key, hence a miss. The key is
never random and never involves a path or a modification time, so a copied or touched file still
hits and a changed file never does.

Entries hold no pickle: token ids, offsets and label ids are numpy arrays in one safetensors
file, token strings, labels and metadata are JSON. An entry is a directory that appears under
its final name only when complete (``atomic_directory``). A damaged entry is a miss.

Layout: ``<root>/instances/<key[:2]>/<key>/{meta.json, arrays.safetensors, strings.json}`` and
``<root>/vocabularies/<key[:2]>/<key>/`` (a vocabulary in its usual directory format).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

import keel
from keel.common.errors import DataError, KeelError
from keel.common.file_utils import atomic_directory, atomic_write_json, canonical_json
from keel.common.hashing import FileHash
from keel.data.batch import PackedInstances
from keel.data.fields.label_field import LabelField, LabelPack
from keel.data.fields.metadata_field import MetadataField, MetadataPack
from keel.data.fields.sequence_label_field import SequenceLabelField, SequenceLabelPack
from keel.data.fields.text_field import TextField, TextFieldPack
from keel.data.instance import Instance, index_instances
from keel.data.packing import ArrayPack, NestedIds, RaggedIds, shared_value, split_by_lengths
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.token import Token
from keel.data.vocabulary import Vocabulary
from keel.guard.fingerprint import (
    PREPROCESSING_FORMAT,
    PreprocessingFingerprint,
    preprocessing_fingerprint,
    vocabulary_hash,
)

logger = logging.getLogger(__name__)

CACHE_FORMAT = "keel-preprocessing-cache/1"
# KEEL_CACHE_DIR moves the cache (e.g. to a shared volume); it never changes what is computed.
DEFAULT_CACHE_DIR = Path(os.environ.get("KEEL_CACHE_DIR", "~/.cache/keel/preprocessing"))


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _file_sha256(data_file: FileHash | str) -> str:
    return data_file.sha256 if isinstance(data_file, FileHash) else str(data_file)


@dataclass(frozen=True)
class CacheKey:
    """A cache key and the material it was computed from (kept in the entry for inspection)."""

    digest: str
    material: dict[str, Any]


def instances_key(
    data_file: FileHash | str,
    reader_config: Mapping[str, Any],
    vocab: Vocabulary | str,
    keel_version: str = keel.__version__,
) -> CacheKey:
    """The key of the indexed instances of one data file.

    ``data_file``: its FileHash or sha256. ``reader_config``: the dataset reader's resolved config
    (tokenizer and indexers included). ``vocab``: the vocabulary or its ``vocabulary_hash``.
    """
    material = {
        "format": CACHE_FORMAT,
        "fingerprint_format": PREPROCESSING_FORMAT,
        "kind": "instances",
        "data_sha256": _file_sha256(data_file),
        "reader": dict(reader_config),
        "vocabulary_sha256": vocab if isinstance(vocab, str) else vocabulary_hash(vocab),
        "keel_version": keel_version,
    }
    return CacheKey(_sha256(material), material)


def vocabulary_key(
    data_files: Sequence[FileHash | str],
    reader_config: Mapping[str, Any],
    vocabulary_config: Mapping[str, Any] | None,
    keel_version: str = keel.__version__,
) -> CacheKey:
    """The key of a vocabulary built from ``data_files`` read with ``reader_config``.

    A run whose vocabulary comes from its own data needs the vocabulary before it can compute
    ``instances_key``; caching the vocabulary under this key lets a second run skip tokenizing.
    """
    material = {
        "format": CACHE_FORMAT,
        "kind": "vocabulary",
        "data_sha256": [_file_sha256(item) for item in data_files],
        "reader": dict(reader_config),
        "vocabulary": dict(vocabulary_config or {}),
        "keel_version": keel_version,
    }
    return CacheKey(_sha256(material), material)


class PreprocessingCache:
    """Indexed instances (and vocabularies) on disk under content keys.

    ``directory`` defaults to ``~/.cache/keel/preprocessing``; pass one explicitly to put the
    cache elsewhere (tests, shared volumes).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        root = Path(directory) if directory is not None else DEFAULT_CACHE_DIR
        self.directory = root.expanduser()

    def _entry(self, kind: str, key: CacheKey | str) -> Path:
        digest = key.digest if isinstance(key, CacheKey) else key
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KeelError(f"not a cache key: {digest!r}")
        return self.directory / kind / digest[:2] / digest

    # -- instances --------------------------------------------------------------------------

    def load(
        self, key: CacheKey | str, token_indexers: Mapping[str, TokenIndexer]
    ) -> list[Instance] | None:
        """The cached instances, already indexed, or None on a miss or a damaged entry.

        Every text field gets ``token_indexers`` (the reader's); their names must be the ones
        the entry was stored with.
        """
        loaded = self._load(key, token_indexers, packed=False)
        return loaded[0] if loaded is not None else None

    def load_packed(
        self, key: CacheKey | str, token_indexers: Mapping[str, TokenIndexer]
    ) -> tuple[list[Instance], PackedInstances] | None:
        """The cached instances and their packs, rebuilt from the stored arrays: neither
        tokenizing nor indexing runs (a data loader batches from the packs). The instances
        themselves are left unindexed. None on a miss or a damaged entry."""
        loaded = self._load(key, token_indexers, packed=True)
        if loaded is None or loaded[1] is None:
            return None
        return loaded[0], loaded[1]

    def _load(
        self, key: CacheKey | str, token_indexers: Mapping[str, TokenIndexer], packed: bool
    ) -> tuple[list[Instance], PackedInstances | None] | None:
        entry = self._entry("instances", key)
        if not entry.is_dir():
            return None
        # Decoding allocates millions of small lists and nothing cyclic; without pausing the
        # cyclic collector, its repeated full passes cost more than the decoding itself.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return _read_entry(entry, key, token_indexers, packed)
        except Exception as error:  # noqa: BLE001 - the cache only saves time: never a crash
            logger.warning(
                "ignoring a preprocessing cache entry that cannot be rebuilt %s: %s: %s",
                entry,
                type(error).__name__,
                error,
            )
            return None
        finally:
            if gc_was_enabled:
                gc.enable()

    def store(
        self,
        key: CacheKey,
        instances: Sequence[Instance],
        vocab: Vocabulary,
        fingerprint: PreprocessingFingerprint | None = None,
        packed: PackedInstances | None = None,
    ) -> Path | None:
        """Write ``instances`` (indexed with ``vocab`` first if needed) under ``key``.

        ``packed``, the same instances packed with ``vocab``, gives the ids directly (no second
        indexing pass).

        The entry also keeps the instances' preprocessing fingerprint (``fingerprint`` when the
        caller has it, else computed here), so a cache hit gets it without recomputing.
        Returns the entry, or None when the instances cannot be cached (mixed field layouts or a
        field type the cache does not know); the run then simply does not use the cache.
        """
        entry = self._entry("instances", key)
        if not _packs_cover(packed, instances):
            packed = None
            index_instances(instances, vocab)
        if fingerprint is None:
            fingerprint = preprocessing_fingerprint(instances, vocab, packed)
        try:
            arrays, strings, schema = _encode(instances, packed)
        except _Uncacheable as reason:
            logger.info("not caching these instances: %s", reason)
            return None
        meta = {
            "format": CACHE_FORMAT,
            "key": key.digest,
            "material": key.material,
            "instances": len(instances),
            "schema": schema,
            "fingerprint": fingerprint.to_dict(),
        }
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)  # a damaged entry being replaced
        try:
            with atomic_directory(entry) as temp:
                save_file(arrays, str(temp / "arrays.safetensors"))
                atomic_write_json(temp / "strings.json", strings, indent=None)
                atomic_write_json(temp / "meta.json", meta)
        except OSError:
            if not entry.is_dir():
                raise
            # Another process finished the same entry first; its content is the same.
        return entry

    def fingerprint(self, key: CacheKey | str) -> PreprocessingFingerprint | None:
        """The preprocessing fingerprint stored with an entry, or None on a miss."""
        meta_path = self._entry("instances", key) / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            fingerprint = PreprocessingFingerprint.from_dict(meta["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # An entry from a keel that computed fingerprints differently: the caller recomputes.
        return fingerprint if fingerprint.format == PREPROCESSING_FORMAT else None

    def get_or_create(
        self,
        key: CacheKey,
        make: Callable[[], Iterable[Instance]],
        vocab: Vocabulary,
        token_indexers: Mapping[str, TokenIndexer],
    ) -> tuple[list[Instance], bool]:
        """(instances, True) from the cache, or (``make()`` indexed and stored, False)."""
        cached = self.load(key, token_indexers)
        if cached is not None:
            return cached, True
        instances = list(make())
        self.store(key, instances, vocab)
        return instances, False

    # -- vocabularies -----------------------------------------------------------------------

    def load_vocabulary(self, key: CacheKey | str) -> Vocabulary | None:
        entry = self._entry("vocabularies", key)
        if not entry.is_dir():
            return None
        try:
            return Vocabulary.from_files(str(entry))
        except (OSError, DataError) as error:
            logger.warning("ignoring a damaged cached vocabulary %s: %s", entry, error)
            return None

    def store_vocabulary(self, key: CacheKey | str, vocab: Vocabulary) -> Path:
        entry = self._entry("vocabularies", key)
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        try:
            with atomic_directory(entry) as temp:
                vocab.save_to_files(str(temp))
        except OSError:
            if not entry.is_dir():
                raise
        return entry


# -- encoding -------------------------------------------------------------------------------------


class _Uncacheable(Exception):
    pass


def _lengths(rows: Sequence[Sequence[Any]]) -> np.ndarray:
    return np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))


def _flat(values: Iterable[int | None]) -> np.ndarray:
    """int64 array with -1 for None (token offsets may be absent)."""
    items = [-1 if value is None else value for value in values]
    return np.asarray(items, dtype=np.int64).reshape(-1)


def _encode(
    instances: Sequence[Instance], packed: PackedInstances | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    if not instances:
        raise _Uncacheable("no instances")
    names = sorted(instances[0].fields)
    if any(sorted(instance.fields) != names for instance in instances):
        raise _Uncacheable("instances have different fields")
    arrays: dict[str, np.ndarray] = {}
    strings: dict[str, Any] = {}
    schema: dict[str, Any] = {}
    for name in names:
        column = [instance.fields[name] for instance in instances]
        kind = type(column[0])
        if any(type(field) is not kind for field in column):
            raise _Uncacheable(f"field {name!r} has different types")
        pack = packed.packs.get(name) if packed is not None else None
        if kind is TextField:
            schema[name] = _encode_text(name, column, arrays, strings, pack)
        elif kind is LabelField:
            namespaces = {field.label_namespace for field in column}
            skips = {field.skip_indexing for field in column}
            if len(namespaces) != 1 or len(skips) != 1:
                raise _Uncacheable(f"label field {name!r} mixes namespaces")
            schema[name] = {
                "type": "label",
                "namespace": namespaces.pop(),
                "skip_indexing": skips.pop(),
            }
            strings[name] = [field.label for field in column]
            if isinstance(pack, ArrayPack):
                arrays[f"{name}/ids"] = np.asarray(pack.values, dtype=np.int64)
            else:
                arrays[f"{name}/ids"] = _flat(field.label_id for field in column)
        elif kind is SequenceLabelField:
            namespaces = {field.label_namespace for field in column}
            if len(namespaces) != 1:
                raise _Uncacheable(f"sequence label field {name!r} mixes namespaces")
            fields = instances[0].fields
            source = next(
                (other for other in names if fields[other] is column[0].sequence_field), None
            )
            if source is None:
                raise _Uncacheable(f"{name!r} labels a text field outside the instance")
            schema[name] = {
                "type": "sequence_label",
                "namespace": namespaces.pop(),
                "sequence_field": source,
            }
            strings[name] = [list(field.labels) for field in column]
            ragged = getattr(pack, "ragged", None)
            if isinstance(ragged, RaggedIds):
                arrays[f"{name}/ids"] = ragged.flat
                arrays[f"{name}/lengths"] = ragged.lengths
            else:
                # SequenceLabelField keeps its ids privately; None means unindexed (-1 rows).
                ids = [field._ids if field._ids is not None else [] for field in column]
                arrays[f"{name}/ids"] = _flat(chain.from_iterable(ids))
                arrays[f"{name}/lengths"] = _lengths(ids)
        elif kind is MetadataField:
            schema[name] = {"type": "metadata"}
            metadata = [field.metadata for field in column]
            if not _plain_json(metadata):
                try:
                    round_trip = json.loads(json.dumps(metadata))
                except (TypeError, ValueError) as error:
                    raise _Uncacheable(f"metadata of {name!r} is not JSON: {error}") from error
                if round_trip != metadata:
                    raise _Uncacheable(f"metadata of {name!r} does not survive JSON unchanged")
            strings[name] = metadata
        else:
            raise _Uncacheable(f"field type {kind.__name__} of {name!r} is not cacheable")
    return arrays, strings, schema


def _encode_text(
    name: str,
    column: list[TextField],
    arrays: dict[str, np.ndarray],
    strings: dict[str, Any],
    pack: Any = None,
) -> dict[str, Any]:
    token_lists = [field.tokens for field in column]
    tokens = list(chain.from_iterable(token_lists))
    if any(map(_has_ids, tokens)):
        raise _Uncacheable(f"tokens of {name!r} carry text_id/type_id")
    arrays[f"{name}/lengths"] = _lengths(token_lists)
    arrays[f"{name}/idx"] = _flat(map(_idx_of, tokens))
    arrays[f"{name}/idx_end"] = _flat(map(_idx_end_of, tokens))
    if isinstance(pack, TextFieldPack):  # every indexer pack has columns (see _packs_cover)
        strings[name] = pack.texts
        return {
            "type": "text",
            "indexers": {
                indexer_name: _encode_columns(
                    f"{name}/{indexer_name}", pack.packs[indexer_name].columns(), arrays
                )
                for indexer_name in sorted(pack.packs)
            },
        }
    strings[name] = [token.text for token in tokens]
    indexed = [field.indexed for field in column]
    indexer_names = sorted(indexed[0])
    outputs_schema: dict[str, dict[str, str]] = {}
    for indexer_name in indexer_names:
        if any(sorted(item) != indexer_names for item in indexed):
            raise _Uncacheable(f"text field {name!r} has different indexers")
        outputs_schema[indexer_name] = {
            key: _encode_rows(
                f"{name}/{indexer_name}/{key}",
                [item[indexer_name][key] for item in indexed],
                arrays,
            )
            for key in sorted(indexed[0][indexer_name])
        }
    return {"type": "text", "indexers": outputs_schema}


def _encode_columns(
    prefix: str, columns: Mapping[str, Any], arrays: dict[str, np.ndarray]
) -> dict[str, str]:
    """An indexer pack's outputs (RaggedIds, NestedIds or rows) as arrays; key -> layout."""
    layouts = {}
    for key in sorted(columns):
        column = columns[key]
        path = f"{prefix}/{key}"
        if isinstance(column, RaggedIds):
            arrays[f"{path}/lengths"] = column.lengths
            arrays[f"{path}/values"] = column.flat
            layouts[key] = "flat"
        elif isinstance(column, NestedIds):
            arrays[f"{path}/lengths"] = column.outer
            arrays[f"{path}/inner_lengths"] = column.inner
            arrays[f"{path}/values"] = column.flat
            layouts[key] = "nested"
        else:
            layouts[key] = _encode_rows(path, column, arrays)
    return layouts


def _encode_rows(path: str, rows: list[list[Any]], arrays: dict[str, np.ndarray]) -> str:
    first = next((row for row in rows if row), None)
    if first is not None and isinstance(first[0], list):
        inner = list(chain.from_iterable(rows))
        arrays[f"{path}/lengths"] = _lengths(rows)
        arrays[f"{path}/inner_lengths"] = _lengths(inner)
        arrays[f"{path}/values"] = _flat(chain.from_iterable(inner))
        return "nested"
    arrays[f"{path}/lengths"] = _lengths(rows)
    arrays[f"{path}/values"] = _flat(chain.from_iterable(rows))
    return "flat"


def _packs_cover(packed: PackedInstances | None, instances: Sequence[Instance]) -> bool:
    """Whether ``packed`` holds every id the entry needs (else the instances get indexed).

    Label packs always hold their ids, and a text column packed field by field was indexed by
    packing; a text column needs every indexer's pack to expose its ``columns()``.
    """
    if packed is None or len(packed) != len(instances) or not packed.columns:
        return False
    return all(
        all(
            callable(getattr(indexer_pack, "columns", None)) for indexer_pack in pack.packs.values()
        )
        for pack in packed.packs.values()
        if isinstance(pack, TextFieldPack)
    )


_idx_of = attrgetter("idx")
_idx_end_of = attrgetter("idx_end")


def _has_ids(token: Token) -> bool:
    return token.text_id is not None or token.type_id is not None


def _plain_json(metadata: list[Any]) -> bool:
    """True for the common metadata shape, dicts of string keys to lists of strings, which
    JSON keeps exactly (no round trip needed to check)."""
    if set(map(type, metadata)) != {dict}:
        return False
    values = list(chain.from_iterable(item.values() for item in metadata))
    keys = set(chain.from_iterable(metadata))
    if not all(type(key) is str for key in keys) or set(map(type, values)) - {list}:
        return False
    return set(map(type, chain.from_iterable(values))) <= {str}


# -- decoding -------------------------------------------------------------------------------------


def _optional(values: list[int]) -> list[int | None]:
    return [None if value < 0 else value for value in values]


def _read_entry(
    entry: Path, key: CacheKey | str, token_indexers: Mapping[str, TokenIndexer], packed: bool
) -> tuple[list[Instance], PackedInstances | None]:
    """The entry's instances; with ``packed``, unindexed and with their packs, else indexed."""
    digest = key.digest if isinstance(key, CacheKey) else key
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != CACHE_FORMAT or meta.get("key") != digest:
        raise KeelError(f"entry has format {meta.get('format')!r} and key {meta.get('key')!r}")
    count = int(meta["instances"])
    arrays = load_file(str(entry / "arrays.safetensors"))
    strings = json.loads((entry / "strings.json").read_text(encoding="utf-8"))
    columns: dict[str, list[Any]] = {}
    packs: dict[str, Any] = {}
    schema: dict[str, Any] = meta["schema"]
    # Text fields first: sequence label fields point at them.
    order = sorted(schema, key=lambda name: schema[name]["type"] != "text")
    for name in order:
        spec = schema[name]
        kind = spec["type"]
        if kind == "text":
            columns[name], packs[name] = _decode_text(
                name, spec, arrays, strings, token_indexers, count, packed
            )
        elif kind == "label":
            labels = strings[name]
            ids = arrays[f"{name}/ids"]
            column = []
            for label, label_id in zip(labels, ids.tolist(), strict=True):
                field = LabelField(label, spec["namespace"], spec["skip_indexing"])
                field.label_id = None if label_id < 0 else label_id
                column.append(field)
            columns[name] = column
            packs[name] = LabelPack(ids, spec["namespace"], spec["skip_indexing"])
        elif kind == "sequence_label":
            ragged = RaggedIds(arrays[f"{name}/ids"], arrays[f"{name}/lengths"])
            rows = [] if packed else ragged.to_rows()
            texts = columns[spec["sequence_field"]]
            column = []
            for index, (labels, text) in enumerate(zip(strings[name], texts, strict=True)):
                field = SequenceLabelField(labels, text, spec["namespace"])
                if not packed and len(rows[index]) == len(labels):
                    field._ids = rows[index]  # stored indexed; no public setter
                column.append(field)
            columns[name] = column
            skip_indexing = shared_value(field.skip_indexing for field in column)
            packs[name] = SequenceLabelPack(ragged, spec["namespace"], skip_indexing)
        elif kind == "metadata":
            columns[name] = [MetadataField(item) for item in strings[name]]
            packs[name] = MetadataPack(strings[name])
        else:
            raise KeelError(f"unknown field type {kind!r} in cache entry")
        if len(columns[name]) != count:
            raise KeelError(f"field {name!r} has {len(columns[name])} rows, expected {count}")
    instances = []
    for row in range(count):
        instance = Instance({name: columns[name][row] for name in schema})
        instance.indexed = not packed
        instances.append(instance)
    if not packed:
        return instances, None
    ordered = {name: packs[name] for name in schema}
    return instances, PackedInstances(ordered, count, {name: columns[name] for name in schema})


def _decode_text(
    name: str,
    spec: dict[str, Any],
    arrays: dict[str, np.ndarray],
    strings: dict[str, Any],
    token_indexers: Mapping[str, TokenIndexer],
    count: int,
    packed: bool,
) -> tuple[list[TextField], TextFieldPack | None]:
    indexer_specs: dict[str, dict[str, str]] = spec["indexers"]
    if sorted(indexer_specs) != sorted(token_indexers):
        raise KeelError(
            f"entry indexes {name!r} with {sorted(indexer_specs)}, the reader with "
            f"{sorted(token_indexers)}"
        )
    lengths = arrays[f"{name}/lengths"]
    texts = strings[name]
    tokens = list(
        map(
            Token,
            texts,
            _optional(arrays[f"{name}/idx"].tolist()),
            _optional(arrays[f"{name}/idx_end"].tolist()),
        )
    )
    token_rows = split_by_lengths(tokens, lengths.tolist())
    outputs: dict[str, dict[str, RaggedIds | NestedIds]] = {}
    for indexer_name, keys in indexer_specs.items():
        outputs[indexer_name] = {}
        for key, shape in keys.items():
            prefix = f"{name}/{indexer_name}/{key}"
            values, outer = arrays[f"{prefix}/values"], arrays[f"{prefix}/lengths"]
            if shape == "nested":
                inner = arrays[f"{prefix}/inner_lengths"]
                outputs[indexer_name][key] = NestedIds(outer, inner, values)
            else:
                outputs[indexer_name][key] = RaggedIds(values, outer)
    indexers = dict(token_indexers)
    fields = [TextField(row, indexers) for row in token_rows]
    if packed:
        packs = {
            indexer_name: indexers[indexer_name].pack_from_columns(columns, count)
            for indexer_name, columns in outputs.items()
        }
        return fields, TextFieldPack(packs, texts, lengths)
    rows = {
        indexer_name: {key: column.to_rows() for key, column in columns.items()}
        for indexer_name, columns in outputs.items()
    }
    for index, field in enumerate(fields):
        # TextField has no public setter for ids it did not compute; this is its own layout.
        field._indexed = {
            indexer_name: {key: key_rows[index] for key, key_rows in by_key.items()}
            for indexer_name, by_key in rows.items()
        }
    return fields, None

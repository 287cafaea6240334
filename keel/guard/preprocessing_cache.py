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

import contextlib
import gc
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

import keel
from keel.common.errors import DataError, KeelError
from keel.common.file_utils import atomic_directory, atomic_write_json, canonical_json
from keel.common.hashing import FileHash
from keel.data.batch import PackedInstances
from keel.data.columns import ColumnContext, FieldColumns, NotColumnar, field_type_of_kind
from keel.data.fields.text_field import TextFieldPack
from keel.data.instance import Instance, index_instances
from keel.data.packing import ColumnarPack, Packed
from keel.data.token_indexers.token_indexer import TokenIndexer
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
#: the cache's size limit; the least recently used entries go first beyond it
DEFAULT_MAX_BYTES = 20 * 1024**3
_KINDS = ("instances", "vocabularies")
# Touched on every hit: its mtime is the entry's last use, which eviction orders by.
_USED = ".last_used"


@dataclass(frozen=True)
class CacheEntry:
    """One stored entry: where it is, its kind, size and last use (seconds since the epoch)."""

    path: Path
    kind: str
    size: int
    last_used: float


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

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        root = Path(directory) if directory is not None else DEFAULT_CACHE_DIR
        self.directory = root.expanduser()
        self.max_bytes = max_bytes

    # -- size and eviction ------------------------------------------------------------------

    def entries(self) -> list[CacheEntry]:
        """Every complete entry, least recently used first."""
        found = []
        for kind in _KINDS:
            for entry in sorted((self.directory / kind).glob("??/" + "[0-9a-f]" * 64)):
                if not entry.is_dir():
                    continue
                files = [path for path in entry.rglob("*") if path.is_file()]
                used = entry / _USED
                last = used.stat().st_mtime if used.exists() else entry.stat().st_mtime
                found.append(CacheEntry(entry, kind, sum(f.stat().st_size for f in files), last))
        return sorted(found, key=lambda item: item.last_used)

    def size(self) -> int:
        return sum(entry.size for entry in self.entries())

    def prune(self, max_bytes: int | None = None) -> list[CacheEntry]:
        """Remove the least recently used entries until the cache holds at most ``max_bytes``
        (default: its limit); returns what was removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries = self.entries()
        total = sum(entry.size for entry in entries)
        removed = []
        for entry in entries:
            if total <= limit:
                break
            shutil.rmtree(entry.path, ignore_errors=True)
            total -= entry.size
            removed.append(entry)
        return removed

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        entries = self.entries()
        for entry in entries:
            shutil.rmtree(entry.path, ignore_errors=True)
        return len(entries)

    def _touch(self, entry: Path) -> None:
        with contextlib.suppress(OSError):  # a read-only cache still serves hits
            (entry / _USED).touch()

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
            loaded = _read_entry(entry, key, token_indexers, packed)
            self._touch(entry)
            return loaded
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
        except NotColumnar as reason:
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
        self._touch(entry)
        self.prune()
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
            vocab = Vocabulary.from_files(str(entry))
            self._touch(entry)
            return vocab
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
        self._touch(entry)
        self.prune()
        return entry


# -- encoding: each field type stores itself as columns (keel.data.columns) ----------------------


def _encode(
    instances: Sequence[Instance], packed: PackedInstances | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    if not instances:
        raise NotColumnar("no instances")
    names = sorted(instances[0].fields)
    if any(sorted(instance.fields) != names for instance in instances):
        raise NotColumnar("instances have different fields")
    context = ColumnContext(siblings=instances[0].fields)
    arrays: dict[str, np.ndarray] = {}
    strings: dict[str, Any] = {}
    schema: dict[str, Any] = {}
    for name in names:
        column = [instance.fields[name] for instance in instances]
        kind = type(column[0])
        if any(type(field) is not kind for field in column):
            raise NotColumnar(f"field {name!r} has different types")
        if kind.column_kind is None:
            raise NotColumnar(f"field type {kind.__name__} of {name!r} stores no columns")
        pack = packed.packs.get(name) if packed is not None else None
        try:
            encoded = kind.to_columns(column, pack, context)
        except NotColumnar as reason:
            raise NotColumnar(f"{name!r}: {reason.message}") from reason
        arrays.update({f"{name}/{key}": array for key, array in encoded.arrays.items()})
        strings[name] = encoded.strings
        schema[name] = {"type": kind.column_kind, **encoded.spec}
    return arrays, strings, schema


def _packs_cover(packed: PackedInstances | None, instances: Sequence[Instance]) -> bool:
    """Whether ``packed`` holds every id the entry needs (else the instances get indexed).

    Label packs always hold their ids, and a text column packed field by field was indexed by
    packing; a text column needs every indexer's pack to be columnar.
    """
    if packed is None or len(packed) != len(instances) or not packed.columns:
        return False
    return all(
        all(isinstance(indexer_pack, ColumnarPack) for indexer_pack in pack.packs.values())
        for pack in packed.packs.values()
        if isinstance(pack, TextFieldPack)
    )


# -- decoding -------------------------------------------------------------------------------------


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
    schema: dict[str, Any] = meta["schema"]
    context = ColumnContext(count=count, token_indexers=token_indexers)
    packs: dict[str, Packed] = {}
    # Text fields first: sequence label fields point at them.
    for name in sorted(schema, key=lambda name: schema[name]["type"] != "text"):
        spec = dict(schema[name])
        kind = field_type_of_kind(spec.pop("type"))
        prefix = f"{name}/"
        columns = FieldColumns(
            {key[len(prefix) :]: array for key, array in arrays.items() if key.startswith(prefix)},
            strings[name],
            spec,
        )
        fields, pack = kind.from_columns(columns, context, indexed=not packed)
        if len(fields) != count:
            raise KeelError(f"field {name!r} has {len(fields)} rows, expected {count}")
        context.rebuilt[name] = fields
        if pack is not None:
            packs[name] = pack
    instances = []
    for row in range(count):
        instance = Instance({name: context.rebuilt[name][row] for name in schema})
        instance.indexed = not packed
        instances.append(instance)
    if not packed:
        return instances, None
    ordered = {name: packs[name] for name in schema}
    return instances, PackedInstances(
        ordered, count, {name: context.rebuilt[name] for name in schema}
    )

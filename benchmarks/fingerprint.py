"""Cost of the preprocessing fingerprint relative to reading and indexing a data file.

Each of ``--repeats`` rounds does what ``keel train`` does with a data file, back to back: read
(tokenize) it with keel's reader, index it (``PackedInstances.build``: the flat id arrays the
data loader batches from) and fingerprint it from those arrays; the ratio fingerprint / (read
+ index) is computed per round and its median reported (the machine may be shared). The goal:
under 5%. Also times the standalone fingerprint (``keel data fingerprint``, which packs the
instances itself), the tokenizer fingerprint (probe corpus) and the preprocessing cache.

    python benchmarks/fingerprint.py [PATH] [--format tsv|conllu] [--characters] [--repeats 5]

PATH defaults to /work/shared/data/sst2/train.tsv (tsv, word tokenizer); for a tagging file,
e.g. /work/shared/data/ud_en_ewt/en_ewt-ud-train.conllu, pass ``--format conllu``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

from keel.common.hashing import hash_file
from keel.data import Vocabulary, WordTokenizer
from keel.data.batch import PackedInstances
from keel.data.dataset_readers import TsvReader
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer
from keel.guard.fingerprint import (
    preprocessing_fingerprint,
    reader_tokenizer_fingerprint,
)
from keel.guard.preprocessing_cache import PreprocessingCache, instances_key

DEFAULT_PATH = "/work/shared/data/sst2/train.tsv"


def best_time(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--format", choices=["tsv", "conllu"], default="tsv")
    parser.add_argument("--characters", action="store_true", help="Add a characters indexer.")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    indexers: dict[str, Any] = {"tokens": SingleIdTokenIndexer()}
    if args.characters:
        indexers["chars"] = TokenCharactersIndexer()
    if args.format == "tsv":
        reader: Any = TsvReader(tokenizer=WordTokenizer(), token_indexers=indexers)
    else:
        reader = ConlluDatasetReader(token_indexers=indexers)

    # One round = read, index, fingerprint back to back, so a busy neighbour slows all three
    # alike; the ratio is taken per round and the median reported, next to the best times.
    rounds = []
    vocab = Vocabulary.from_instances(reader.read(args.path))
    vocab_s, _ = best_time(lambda: Vocabulary.from_instances(reader.read(args.path)), 1)
    for _ in range(args.repeats):
        gc.collect()
        start = time.perf_counter()
        instances = list(reader.read(args.path))
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        packed = PackedInstances.build(instances, vocab)
        index_s = time.perf_counter() - start
        start = time.perf_counter()
        fingerprint = preprocessing_fingerprint(instances, vocab, packed)
        fingerprint_s = time.perf_counter() - start
        rounds.append((read_s, index_s, fingerprint_s))
    read_s = min(r[0] for r in rounds)
    index_s = min(r[1] for r in rounds)
    fingerprint_s = min(r[2] for r in rounds)
    ratios = sorted(r[2] / (r[0] + r[1]) for r in rounds)
    median_ratio = ratios[len(ratios) // 2]
    standalone_s, standalone = best_time(
        lambda: preprocessing_fingerprint(instances, vocab), args.repeats
    )
    assert standalone == fingerprint
    tokenizer_s, _ = best_time(lambda: reader_tokenizer_fingerprint(reader, vocab), args.repeats)
    hash_s, file_hash = best_time(lambda: hash_file(args.path), args.repeats)

    with tempfile.TemporaryDirectory() as directory:
        cache = PreprocessingCache(directory)
        key = instances_key(file_hash, {"benchmark": args.format}, vocab)
        store_s, _ = best_time(lambda: cache.store(key, instances, vocab, fingerprint, packed), 1)
        load_s, loaded = best_time(
            lambda: cache.load_packed(key, reader.token_indexers), args.repeats
        )
        assert preprocessing_fingerprint(loaded[0], vocab, loaded[1]) == fingerprint

    base = read_s + index_s
    print(f"data: {args.path} ({len(instances)} instances), indexers: {sorted(indexers)}")
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"best of {args.repeats} rounds:")
    print(f"  read (tokenize)         {read_s:8.3f} s")
    print(f"  index (pack)            {index_s:8.3f} s")
    print(f"  preprocessing fp        {fingerprint_s:8.3f} s (from the packed arrays)")
    print(f"  build vocabulary        {vocab_s:8.3f} s (read included, once)")
    print(
        f"fingerprint / (read + index): median of rounds {median_ratio:.2%} "
        f"(range {ratios[0]:.2%} .. {ratios[-1]:.2%}); best times {fingerprint_s / base:.2%}"
    )
    print(f"  standalone fp           {standalone_s:8.3f} s (packs the instances itself)")
    print(f"  tokenizer fp (probe)    {tokenizer_s:8.3f} s")
    print(f"  file sha256             {hash_s:8.3f} s")
    print(f"  cache store             {store_s:8.3f} s (once)")
    print(f"  cache load (+ packs)    {load_s:8.3f} s  = {load_s / base:6.1%} of read+index")
    print(f"digest {fingerprint.digest}")


if __name__ == "__main__":
    main()

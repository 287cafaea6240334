"""Throughput of keel's data pipeline: read -> tokenize -> index -> batch, in instances/second.

Runs keel's ``tsv`` reader (whitespace tokenizer, ``single_id`` indexer), builds the vocabulary,
then one epoch of the ``multiprocess`` loader (shuffled batches of tensors), and compares with
the same work done by the ``tokenizers`` library alone (a WordLevel tokenizer with keel's
vocabulary, whitespace pre-tokenizer, ``encode_batch`` with padding, then tensors) as the floor
to approach. Each stage is timed ``--repeats`` times and the best run is reported, since the
machine may be shared.

    python benchmarks/data_pipeline.py [PATH] [--batch-size 32] [--repeats 3]

PATH defaults to /work/shared/data/sst2/train.tsv (GLUE SST-2 train, 67,349 rows).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from keel.data.data_loaders import MultiProcessDataLoader
from keel.data.dataset_readers import TsvReader
from keel.data.tokenizers import WordTokenizer
from keel.data.vocabulary import DEFAULT_OOV_TOKEN, Vocabulary

DEFAULT_PATH = "/work/shared/data/sst2/train.tsv"
# Measured by the author with AllenNLP 2.10.1 (read + index on SST-2, same 2-core box).
ALLENNLP_READ_INDEX = 20_500


class Timing(NamedTuple):
    """Best wall-clock and best process CPU seconds over the repeats."""

    wall: float
    cpu: float

    def __add__(self, other: object) -> Timing:  # type: ignore[override]
        assert isinstance(other, Timing)
        return Timing(self.wall + other.wall, self.cpu + other.cpu)


def best_time(function: Callable[[], Any], repeats: int) -> tuple[Timing, Any]:
    """The fastest of ``repeats`` runs and the last result; a full GC before each.

    CPU time (all threads of this process) is reported too: on a busy machine it estimates
    what wall time would be on an idle one for single-threaded work.
    """
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        result = None
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return Timing(wall, cpu), result


def keel_stages(path: str, batch_size: int, repeats: int, word: bool) -> dict[str, Any]:
    reader = TsvReader(tokenizer=WordTokenizer() if word else None)
    read_s, instances = best_time(lambda: list(reader.read(path)), repeats)
    vocab_s, vocab = best_time(lambda: Vocabulary.from_instances(instances), repeats)

    def first_epoch() -> int:
        # A fresh loader each time, so indexing and packing are inside the timing.
        loader = MultiProcessDataLoader(instances, batch_size=batch_size, shuffle=True)
        loader.index_with(vocab)
        return sum(1 for _ in loader)

    first_s, _ = best_time(first_epoch, repeats)
    loader = MultiProcessDataLoader(instances, batch_size=batch_size, shuffle=True)
    loader.index_with(vocab)
    next(iter(loader))
    later_s, _ = best_time(lambda: sum(1 for _ in loader), repeats)
    return {
        "count": len(instances),
        "read": read_s,
        "vocab": vocab_s,
        "first_epoch": first_s,
        "later_epoch": later_s,
        "vocab_size": vocab.get_vocab_size("tokens"),
        "vocab_obj": vocab,
    }


def tokenizers_floor(
    path: str, vocab: Vocabulary, batch_size: int, repeats: int
) -> tuple[Timing, Timing]:
    """Timings with the ``tokenizers`` library: read -> encode_batch (padded) -> tensors per
    batch, and read -> one encode_batch over the whole file (no batching, no tensors)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tokenizer = Tokenizer(
        WordLevel(dict(vocab.get_token_to_index_vocabulary("tokens")), unk_token=DEFAULT_OOV_TOKEN)
    )
    tokenizer.pre_tokenizer = WhitespaceSplit()
    tokenizer.enable_padding(pad_id=0, pad_token="@@PADDING@@")
    labels = {label: i for i, label in enumerate(vocab.get_token_to_index_vocabulary("labels"))}

    def run() -> int:
        with open(path, encoding="utf-8") as handle:
            next(handle)
            rows = [line.rstrip("\n").split("\t") for line in handle]
        texts = [row[0].strip() for row in rows]
        label_ids = [labels[row[1]] for row in rows]
        order = torch.randperm(len(texts)).tolist()
        batches = 0
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in chunk])
            torch.tensor([e.ids for e in encodings])
            torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool)
            torch.tensor([label_ids[i] for i in chunk])
            batches += 1
        return batches

    def whole_file() -> int:
        with open(path, encoding="utf-8") as handle:
            next(handle)
            texts = [line.split("\t", 1)[0].strip() for line in handle]
        tokenizer.no_padding()
        try:
            return len(tokenizer.encode_batch(texts))
        finally:
            tokenizer.enable_padding(pad_id=0, pad_token="@@PADDING@@")

    per_batch, _ = best_time(run, repeats)
    whole, _ = best_time(whole_file, repeats)
    return per_batch, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    path = str(Path(args.path))

    keel = keel_stages(path, args.batch_size, args.repeats, word=False)
    word = keel_stages(path, args.batch_size, args.repeats, word=True)
    floor, floor_whole = tokenizers_floor(path, keel["vocab_obj"], args.batch_size, args.repeats)
    given = keel["read"] + keel["first_epoch"]
    n = keel["count"]

    def rate(timing: Timing) -> str:
        return f"{n / timing.wall:>12,.0f}{n / timing.cpu:>14,.0f}"

    print(f"data: {path} ({n:,} instances, {keel['vocab_size']:,} token types)")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}, batch size {args.batch_size}, best of {args.repeats}"
    )
    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f}")
    print()
    print(f"{'stage':<58}{'instances/s':>12}{'inst/CPU-s':>14}")
    print("-" * 84)
    rows = [
        ("keel read + tokenize (tsv, whitespace)", keel["read"]),
        ("keel read + tokenize (tsv, word regex)", word["read"]),
        ("keel vocabulary from instances", keel["vocab"]),
        ("keel index + pack + batch, first epoch", keel["first_epoch"]),
        ("keel batch, later epochs (packed)", keel["later_epoch"]),
        ("keel read -> index -> batch (whitespace, vocab given)", given),
        ("keel read -> vocab -> index -> batch (whitespace)",
         keel["read"] + keel["vocab"] + keel["first_epoch"]),
        ("keel read -> index -> batch (word regex, vocab given)",
         word["read"] + word["first_epoch"]),
        ("tokenizers: read -> encode_batch per batch -> tensors", floor),
        ("tokenizers: read -> encode_batch whole file (no tensors)", floor_whole),
    ]  # fmt: skip
    for name, seconds in rows:
        print(f"{name:<58}{rate(seconds)}")
    print(f"{'AllenNLP 2.10.1 read + index (reference, not measured here)':<58}"
          f"{ALLENNLP_READ_INDEX:>12,}")  # fmt: skip
    print()
    print("inst/CPU-s counts the CPU time of every thread of this process (tokenizers uses")
    print("several); for keel, single-threaded, it approximates an idle machine's wall rate.")


if __name__ == "__main__":
    main()

"""Read + index throughput of keel's readers on the AllenNLP reference configs' data.

What AllenNLP 2.10.1's ``reader.read`` + ``index_fields`` did on the same 2-core machine is the
reference (instances per second, measured by the project). keel's figure is ``reader.read``
into a list plus ``PackedInstances.build`` (the indexed flat arrays keel's data loader batches
from), with the vocabulary built beforehand, as in ``keel train``. Each measure is the best of
``--repeats`` runs; the reader is made afresh for every run, so its token cache starts cold.

    python benchmarks/read_index.py [--sst2 DIR] [--ud DIR] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from keel.data import Vocabulary
from keel.data.batch import PackedInstances
from keel.data.dataset_readers import TsvReader
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer
from keel.data.tokenizers import WhitespaceTokenizer

#: AllenNLP 2.10.1, read + index, instances/s on this kind of machine (the project's reference)
ALLENNLP = {"sst2": 20_500, "ud": 6_700}


def best_of(repeats: int, function: Callable[[], Any]) -> tuple[float, float]:
    """The fastest wall and process-CPU seconds of ``repeats`` runs, a full GC before each."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def measure(name: str, make_reader: Callable[[], Any], path: Path, repeats: int) -> None:
    vocab = Vocabulary.from_instances(make_reader().read(path))
    count = 0

    def read_and_index() -> None:
        nonlocal count
        instances = list(make_reader().read(path))
        PackedInstances.build(instances, vocab)
        count = len(instances)

    def read_only() -> None:
        list(make_reader().read(path))

    wall, cpu = best_of(repeats, read_and_index)
    read_wall, _ = best_of(repeats, read_only)
    reference = ALLENNLP[name]
    print(
        f"| {name} | {count:,} | {read_wall:.3f} | {wall:.3f} | {count / wall:,.0f} "
        f"| {count / cpu:,.0f} | {reference:,} | {count / wall / reference:.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", type=Path, default=Path("../shared/data/sst2"))
    parser.add_argument("--ud", type=Path, default=Path("../shared/data/ud_en_ewt"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    print(f"best of {args.repeats}; load average {os.getloadavg()[0]:.2f} at the start\n")
    print("| data | instances | read s | read + index s | inst/s | inst/CPU-s | AllenNLP | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    measure(
        "sst2",
        lambda: TsvReader(
            tokenizer=WhitespaceTokenizer(), token_indexers={"tokens": SingleIdTokenIndexer()}
        ),
        args.sst2 / "train.tsv",
        args.repeats,
    )
    measure(
        "ud",
        lambda: ConlluDatasetReader(
            token_indexers={
                "tokens": SingleIdTokenIndexer(),
                "token_characters": TokenCharactersIndexer(),
            }
        ),
        args.ud / "en_ewt-ud-train.conllu",
        args.repeats,
    )


if __name__ == "__main__":
    main()

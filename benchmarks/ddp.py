"""Training throughput with 1 and N processes (torch.distributed, DistributedDataParallel).

    python benchmarks/ddp.py [--sst2 DIR] [--processes 1 2] [--max-instances N]
    python benchmarks/ddp.py --gpus 4            # on a machine with 4 GPUs: nccl, one per GPU

Trains ``examples/sst2/bilstm.jsonnet`` (SST-2, 16-d BiLSTM) for one epoch with ``keel train``
(``--nproc-per-node`` for N > 1) at the same *effective* batch (64 instances per optimizer step:
64 per process with 1 process, 32 each with 2, ...), and reports training instances per second
from the trainer's own ``training_duration`` (reading and indexing excluded), with the threads
each process gets. On CPU, ranks share the machine's cores: with 2 cores, 2 ranks of 1 thread
compete with 1 process of 2 threads, not with 1 thread. The table says which is which.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EFFECTIVE_BATCH = 64


def parse_duration(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return datetime.timedelta(
        hours=int(hours), minutes=int(minutes), seconds=float(seconds)
    ).total_seconds()


def run(processes: int, threads: int, args: argparse.Namespace) -> dict[str, float]:
    per_process = EFFECTIVE_BATCH // processes
    overrides: dict = {
        "trainer": {"num_epochs": 1, "patience": None},
        "data_loader": {"batch_sampler": {"batch_size": per_process}},
        "golden_sample_size": 0,
    }
    if args.max_instances:
        overrides["dataset_reader"] = {"max_instances": args.max_instances}
    if args.gpus:
        overrides["distributed"] = {"cuda_devices": list(range(processes))}
    with tempfile.TemporaryDirectory() as directory:
        command = [
            sys.executable,
            "-m",
            "keel.cli.main",
            "train",
            str(REPO / "examples/sst2/bilstm.jsonnet"),
            "-s",
            f"{directory}/run",
            "--ext-var",
            f"sst2_dir={args.sst2}",
            "--overrides",
            json.dumps(overrides),
            "--quiet",
            "--no-cache",
        ]
        if processes > 1 and not args.gpus:
            command += ["--nproc-per-node", str(processes)]
        started = time.perf_counter()
        subprocess.run(
            command,
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        metrics = json.loads(Path(f"{directory}/run/metrics.json").read_text())
    seconds = parse_duration(metrics["training_duration"])
    lines = (Path(args.sst2) / "train.tsv").read_text(encoding="utf-8").count("\n")
    instances = args.max_instances or lines - 1  # the header
    return {
        "seconds": seconds,
        "throughput": instances / seconds,
        "wall": wall,
        "accuracy": metrics.get("validation_accuracy", float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", default=str(REPO.parent / "shared/data/sst2"))
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-instances", type=int, default=None)
    parser.add_argument("--gpus", type=int, default=0, help="one process per GPU (nccl)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    settings: list[tuple[int, int]] = []
    for processes in args.processes:
        if args.gpus:
            settings.append((processes, 1))
            continue
        settings.append((processes, max(cores // processes, 1)))
        if processes == 1 and cores > 1:
            settings.append((1, 1))  # one core, for the per-core comparison
    print(f"SST-2 BiLSTM, one epoch, effective batch {EFFECTIVE_BATCH}, {cores} CPU cores")
    print("| processes | threads each | backend | train inst/s | train s | wall s | dev acc |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for processes, threads in settings:
        result = run(processes, threads, args)
        backend = "nccl" if args.gpus else ("gloo" if processes > 1 else "-")
        print(
            f"| {processes} | {threads} | {backend} | {result['throughput']:,.0f} | "
            f"{result['seconds']:.1f} | {result['wall']:.1f} | {result['accuracy']:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Throughput and latency of ``keel serve`` with dynamic batching against one item per forward.

    python benchmarks/serve.py ARCHIVE [--requests 3000] [--concurrency 32] [--data dev.tsv]

Starts ``keel serve`` on 127.0.0.1 twice (dynamic batching; ``--max-batch-size 1``), sends the
same fixed number of requests (one sentence each, distinct texts) from ``--concurrency``
keep-alive connections, and prints requests/s and p50/p99 latency for each. The load is bounded
(a fixed count, loopback only) and stops by itself. The goal: at least 3x the throughput at no
worse p99, at a concurrency of 32.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
CONFIGS = {
    "dynamic batching (max 32 items, 5 ms)": ["--max-batch-size", "32", "--max-wait-ms", "5"],
    "one item per forward (--max-batch-size 1)": ["--max-batch-size", "1", "--max-wait-ms", "0"],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"keel serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("keel serve did not become ready")


def load(port: int, texts: list[str], concurrency: int) -> tuple[float, list[float], int]:
    """(wall seconds, latencies, failures) of sending every text once from ``concurrency``
    keep-alive connections."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    chunks = [texts[index::concurrency] for index in range(concurrency)]

    def worker(chunk: list[str]) -> None:
        nonlocal failures
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
        mine: list[float] = []
        bad = 0
        for text in chunk:
            body = json.dumps({"text": text})
            started = time.perf_counter()
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            bad += response.status != 200
        with lock:
            latencies.extend(mine)
            failures += bad

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--data", default="/work/shared/data/sst2/dev.tsv")
    args = parser.parse_args()

    lines = Path(args.data).read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines if line.strip()]
    texts = [sentences[index % len(sentences)] for index in range(args.requests)]
    rows = []
    for name, flags in CONFIGS.items():
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keel.cli.main",
                "serve",
                args.archive,
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--queue-size",
                str(args.requests),
                *flags,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            wait_ready(port, process)
            load(port, texts[: args.concurrency * 4], args.concurrency)  # warm-up
            seconds, latencies, failures = load(port, texts, args.concurrency)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        rows.append(
            (
                name,
                len(latencies) / seconds,
                1000 * statistics.median(latencies),
                1000 * percentile(latencies, 0.99),
                failures,
            )
        )
    print(f"{args.requests} requests, concurrency {args.concurrency}, {Path(args.archive).name}")
    print("| server | requests/s | p50 ms | p99 ms | failed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rate, p50, p99, failures in rows:
        print(f"| {name} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {failures} |")
    throughput, p99 = rows[0][1] / rows[1][1], rows[0][3] / rows[1][3]
    print(f"throughput ratio: {throughput:.2f}x; p99 ratio: {p99:.2f}")


if __name__ == "__main__":
    main()

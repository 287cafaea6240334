"""Throughput of ``keel data hash`` against GNU ``sha256sum`` on the same file, same run.

Writes a file of random bytes (``--size-mib``, default 1024) unless ``--file`` names one, reads
it once to warm the page cache, then alternates ``sha256sum FILE``, ``keel data hash FILE`` (a
fresh process each, start-up included) and in-process ``hash_file`` ``--repeats`` times,
reporting the best run of each. The goal: keel at >= 90% of sha256sum's throughput.

    python benchmarks/hashing.py [--file PATH] [--size-mib 1024] [--repeats 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keel.common.hashing import hash_file

KEEL_HASH = [sys.executable, "-c", "from keel.cli.data import app; app()", "hash"]


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start, done.stdout.decode().split()[0].lstrip("\\")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()

    created = None
    path = args.file
    if path is None:
        handle, name = tempfile.mkstemp(prefix="keel-hash-bench-", dir=args.dir)
        with os.fdopen(handle, "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        path = created = Path(name)
    size = path.stat().st_size
    try:
        hash_file(path)  # warm the page cache: both sides then read from memory
        best = {"sha256sum": float("inf"), "keel data hash": float("inf"), "hash_file": 1e9}
        digests = set()
        for _ in range(args.repeats):
            seconds, digest = timed(["sha256sum", str(path)])
            best["sha256sum"] = min(best["sha256sum"], seconds)
            digests.add(digest)
            seconds, digest = timed([*KEEL_HASH, str(path)])
            best["keel data hash"] = min(best["keel data hash"], seconds)
            digests.add(digest)
            start = time.perf_counter()
            digests.add(hash_file(path).sha256)
            best["hash_file"] = min(best["hash_file"], time.perf_counter() - start)
        assert len(digests) == 1, digests
        print(f"file: {path} ({size / 2**20:.0f} MiB), {args.repeats} runs, best of each")
        print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
        baseline = size / best["sha256sum"]
        for name, seconds in best.items():
            rate = size / seconds
            print(
                f"{name:16s} {seconds:7.3f} s  {rate / 2**20:8.1f} MiB/s  "
                f"{rate / baseline:6.1%} of sha256sum"
            )
    finally:
        if created is not None:
            created.unlink()


if __name__ == "__main__":
    main()

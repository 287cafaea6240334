"""How long `capture_environment()` takes (goal: under 1 second).

Three figures:
  first   the first capture in a fresh process that has already imported torch (cold
          importlib.metadata and NVML probing), as when `keel train` writes env.json;
  warm    later captures in the same process (median and max over --repeat);
  cli     a whole fresh `python` process running `keel env capture -o FILE`, interpreter start and
          `import torch` included (what a user waits for at the shell).

Usage: .venv/bin/python benchmarks/env_capture.py [--repeat 20] [--budget 1.0]
Exit status 1 when the first or warm figure exceeds the budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_CAPTURE = """
import time, json
import torch
from keel.guard.environment import capture_environment
start = time.perf_counter()
env = capture_environment()
print(json.dumps({"seconds": time.perf_counter() - start,
                  "distributions": len(env["distributions"])}))
"""
CLI = "from keel.cli.env import app; app()"


def first_capture() -> dict:
    output = subprocess.run(
        [sys.executable, "-c", FIRST_CAPTURE], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def warm_captures(repeat: int) -> list[float]:
    import torch  # noqa: F401 (imported before timing, as in a training process)

    from keel.guard.environment import capture_environment

    capture_environment()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        capture_environment()
        times.append(time.perf_counter() - start)
    return times


def cli_capture() -> float:
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / "env.json"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", CLI, "capture", "--output", str(target)],
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - start
        json.loads(target.read_text())
    return elapsed


def import_torch_only() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds")
    args = parser.parse_args()

    first = [first_capture() for _ in range(3)]
    warm = warm_captures(args.repeat)
    cli = [cli_capture() for _ in range(3)]
    torch_import = [import_torch_only() for _ in range(3)]
    results = {
        "python": sys.version.split()[0],
        "distributions": first[0]["distributions"],
        "first_capture_s_median": statistics.median(r["seconds"] for r in first),
        "warm_capture_s_median": statistics.median(warm),
        "warm_capture_s_max": max(warm),
        "cli_process_s_median": statistics.median(cli),
        "python_import_torch_s_median": statistics.median(torch_import),
    }
    for key, value in results.items():
        print(f"{key:32} {value:.4f}" if isinstance(value, float) else f"{key:32} {value}")
    over = max(results["first_capture_s_median"], results["warm_capture_s_max"]) > args.budget
    print(f"budget {args.budget:.2f}s: {'EXCEEDED' if over else 'met'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

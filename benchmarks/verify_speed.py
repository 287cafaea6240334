"""How long ``keel verify`` takes on a trained archive, in process and as a command.

    python benchmarks/verify_speed.py ARCHIVE [--repeats 3]

The issue's goal: under 5 seconds on the SST-2 example archive on 2 CPU cores. "command" includes
starting Python and importing torch, which is what a CI job pays.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from keel.guard.verify import verify_archive

    in_process, steps = [], {}
    for _ in range(args.repeats):
        started = time.perf_counter()
        report = verify_archive(args.archive)
        in_process.append(time.perf_counter() - started)
        steps = {check.name: check.seconds for check in report.checks}
        if not report.ok:
            sys.exit(f"verify failed: {report.failed}")
    command = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "keel.cli.main", "verify", args.archive, "--json"],
            check=True,
            capture_output=True,
        )
        command.append(time.perf_counter() - started)

    print(f"| measure | seconds (median of {args.repeats}) |")
    print("| --- | ---: |")
    print(f"| verify_archive() in process | {statistics.median(in_process):.2f} |")
    command_seconds = statistics.median(command)
    print(f"| `keel verify` command (incl. Python + torch start) | {command_seconds:.2f} |")
    for name, seconds in steps.items():
        print(f"| step {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()

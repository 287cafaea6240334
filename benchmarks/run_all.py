"""Run every benchmark in sequence and print their tables (figures go to benchmarks/README.md).

python benchmarks/run_all.py [--sst2 DIR] [--ud DIR] [--archive model.tar.gz]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    print(f"\n## {script} {' '.join(args)}\n", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", default="../shared/data/sst2")
    parser.add_argument("--ud", default="../shared/data/ud_en_ewt")
    parser.add_argument("--archive", default=None, help="an SST-2 archive for verify_speed")
    args = parser.parse_args()
    sst2_train = str(Path(args.sst2) / "train.tsv")
    run("data_pipeline.py", sst2_train)
    run("read_index.py", "--sst2", args.sst2, "--ud", args.ud)
    run("train_loop.py", "--data", sst2_train)
    run("tagging.py", "--data", str(Path(args.ud) / "en_ewt-ud-train.conllu"))
    run("env_capture.py")
    run("hashing.py")
    run("fingerprint.py", sst2_train)
    run("ddp.py", "--sst2", args.sst2)
    if args.archive:
        run("verify_speed.py", args.archive)


if __name__ == "__main__":
    main()

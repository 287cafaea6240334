"""Rebuild an archive in a second virtual environment that differs by one real dependency.

    python benchmarks/rebuild_second_env.py [--venv DIR] [--package numpy==2.3.5] [--out FILE]

Trains the bundled SST-2 sample here (this environment), creates a second venv with torch
2.13.0 (the local CPU wheel), keel, and one dependency at another version, runs
``keel rebuild`` there, and prints the report (JSON, and the markdown written to ``--out``):
what changed between the two environments, and the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, check=False, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / "keel-second-env"))
    parser.add_argument("--package", default="numpy==2.3.5")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="keel-rebuild-"))
    keel_here = str(Path(sys.executable).parent / "keel")
    env = {"OMP_NUM_THREADS": "1"}
    trained = run(
        keel_here,
        "train",
        str(REPO / "examples/sst2/sample_bilstm.jsonnet"),
        "-s",
        str(work / "original"),
        "--quiet",
        env=env,
    )
    if trained.returncode:
        sys.exit(trained.stderr)
    venv = Path(args.venv)
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"{REPO}[report]"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", args.package], check=True)
    rebuilt = run(
        str(venv / "bin" / "keel"),
        "rebuild",
        str(work / "original" / "model.tar.gz"),
        "-s",
        str(work / "rebuilt"),
        "--json",
        "--html",
        str(work / "rebuild.html"),
        env=env,
    )
    if rebuilt.returncode not in (0, 1):
        sys.exit(rebuilt.stderr)
    report = json.loads(rebuilt.stdout)
    print(json.dumps(report, indent=2))
    differences = (report.get("environment") or {}).get("differences", [])
    lines = [
        f"Second environment: a fresh venv with torch 2.13.0 (CPU), keel from this checkout, "
        f"and `{args.package}`; the original trained in keel's own venv.",
        "",
        "| severity | key | original | rebuild | reason |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {d['severity']} | `{d['key']}` | {d['old']} | {d['new']} | {d['reason']} |"
            for d in differences
            if d["severity"] != "info"
        ),
        "",
        f"Verdict: **{report['verdict']}**; weights bit-identical: "
        f"{report['weights_bit_identical']}; golden agreement "
        f"{report['golden'].get('agreement')}; validation agreement "
        f"{report['validation'].get('agreement')} (max |score difference| "
        f"{report['validation'].get('score_difference', {}).get('max')}).",
        "",
        *(f"- drift: {reason}" for reason in report["reasons"]),
        *(f"- cause: {cause}" for cause in report["causes"]),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

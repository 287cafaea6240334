"""keel is a library: its dependencies are ranges, so installing it never replaces the torch a
user (or the Makefile) installed first, and its licence is declared in SPDX form."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_packaging_dependencies_are_ranges_that_the_installed_torch_satisfies():
    requirements = [Requirement(text) for text in PROJECT["dependencies"]]
    assert not [r for r in requirements if any(s.operator == "==" for s in r.specifier)]
    [torch] = [r for r in requirements if r.name == "torch"]
    # pip keeps an installed distribution that satisfies the requirement: no reinstall.
    assert torch.specifier.contains(metadata.version("torch").split("+")[0])
    assert not torch.specifier.contains("3.0.0")


def test_packaging_python_and_licence_are_declared():
    assert PROJECT["requires-python"] == ">=3.11"
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text


@pytest.mark.slow
def test_packaging_pip_install_keeps_the_installed_torch(tmp_path) -> None:
    # What `pip install .` would do in this environment, which has torch 2.13.0 (the CPU
    # build) already: install keel, and never touch torch.
    import json
    import subprocess
    import sys

    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-build-isolation",
            "--quiet",
            "--report",
            str(report),
            str(Path(__file__).resolve().parents[1]),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installs = {
        item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]
    }
    assert "torch" not in installs and not any(name.startswith("nvidia-") for name in installs)
    assert "keel" in installs

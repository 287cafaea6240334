"""docs/ci/model-gate.yml works: every `run:` step, in order, on the bundled sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / "docs" / "ci" / "model-gate.yml"


def test_the_workflow_file_is_a_valid_github_actions_job() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = workflow["jobs"]["gate"]["steps"]
    assert [step.get("uses", "").split("@")[0] for step in steps if "uses" in step] == [
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
    ]
    runs = [step["run"] for step in steps if "run" in step]
    assert any("keel verify" in run and "--junit" in run for run in runs)
    assert any("keel rebuild" in run for run in runs)
    assert any("torch==2.13.0" in run for run in runs)  # never an unpinned torch


@pytest.mark.slow
def test_the_workflow_steps_run_on_the_sample(tmp_path) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = workflow["jobs"]["gate"]
    # The checkout: the files the steps read, in a fresh working directory.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    environment = {
        **os.environ,
        **{key: str(value) for key, value in job["env"].items()},
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "OMP_NUM_THREADS": "1",
    }
    ran = []
    for step in job["steps"]:
        if "run" not in step or step["name"] == "Install keel":  # installed already
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", step["run"]],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout}\n{result.stderr}"
        ran.append(step["name"])
    assert len(ran) == 5
    reports = tmp_path / "reports"
    suite = ElementTree.parse(reports / "verify.xml").getroot()
    assert suite.get("failures") == "0"
    assert {case.get("name") for case in suite.iter("testcase")} >= {"signature", "predictions"}
    assert "PASS" in (reports / "verify.html").read_text(encoding="utf-8")
    assert ">equivalent</div>" in (reports / "rebuild.html").read_text(encoding="utf-8")
    inspected = json.loads((reports / "inspect.json").read_text(encoding="utf-8"))
    assert inspected["signature"]["status"] == "not checked"  # signed; inspect given no key

"""keel verify and keel doctor as a pipeline runs them: exit codes, JSON and JUnit XML."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from keel.pipeline.train import train_model


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    from keel.common.params import load_config
    from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"})
    config["golden_sample_size"] = 32
    return train_model(config, tmp_path_factory.mktemp("v") / "run", quiet=True).archive_path


def keel(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_verify_passes_with_exit_0_and_writes_junit(archive, tmp_path) -> None:
    junit = tmp_path / "verify.xml"
    result = keel("verify", str(archive), "--json", "--junit", str(junit))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and [s["name"] for s in report["checks"]][:2] == [
        "integrity",
        "environment",
    ]
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "0" and len(suite.findall("testcase")) == len(report["checks"])


def test_cli_verify_tampered_archive_exits_1_naming_the_member(archive, tmp_path) -> None:
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == "config.json":
                data = data.replace(b'"dropout": 0.1', b'"dropout": 0.5')
            member.size = len(data)
            out.addfile(member, __import__("io").BytesIO(data))
    result = keel("verify", str(tampered), "--junit", str(tmp_path / "j.xml"))
    assert result.returncode == 1
    assert "config.json" in result.stdout and "FAIL" in result.stdout
    failures = ElementTree.parse(tmp_path / "j.xml").getroot().findall("testcase/failure")
    assert failures and "config.json" in failures[0].get("message")


def test_cli_verify_missing_archive_fails_integrity(tmp_path) -> None:
    result = keel("verify", str(tmp_path / "absent.tar.gz"), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["checks"][0]["reason"].startswith("[KA001]")


def test_cli_doctor_combines_env_check_verify_and_checklist(archive) -> None:
    result = keel("doctor", str(archive), "--json")
    report = json.loads(result.stdout)
    names = [check["name"] for check in report["checks"]]
    assert names[:2] == ["env check", "verify"]
    assert {
        "seeds set",
        "deterministic mode",
        "data hashed",
        "tokenizer fingerprinted",
        "environment exportable",
        "config pinned",
    } <= set(names)
    assert report["ok"] and result.returncode == 0, report

"""``--device``: parsing, the refusal of a GPU this machine lacks, and the CUDA path with a fake
CUDA runtime (no GPU is lent to the test machines)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from keel.cli.main import app
from keel.common import errors
from keel.common.devices import resolve_device
from keel.common.errors import ConfigurationError
from tests.conftest import SST2_SAMPLE
from tests.fixtures.hostile.corpus import _rehash, read_members, write_members

ARCHIVE = (
    __import__("pathlib").Path(__file__).parents[1] / "fixtures/archives/format2-classifier.tar.gz"
)


def test_devices_cpu_and_malformed():
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("gpu", "cpu:1", "cuda:x", ""):
        with pytest.raises(ConfigurationError, match="expected cpu, cuda or cuda:N"):
            resolve_device(bad)


def test_devices_cuda_path_with_a_fake_cuda_runtime(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigurationError, match="only 2 GPU"):
        resolve_device("cuda:2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    "args",
    [
        ["predict", str(ARCHIVE), "-"],
        ["evaluate", str(ARCHIVE), str(SST2_SAMPLE / "dev.tsv")],
        ["verify", str(ARCHIVE)],
    ],
    ids=["predict", "evaluate", "verify"],
)
def test_devices_cuda_without_a_gpu_is_a_clean_error(args):
    result = CliRunner().invoke(app, [*args, "--device", "cuda"], input="")
    assert result.exit_code == 2, result.output
    assert f"[{errors.BAD_VALUE}]" in result.output and "CUDA is not available" in result.output


def test_devices_verify_switches_to_the_cross_device_tolerance_and_says_so(tmp_path):
    import json

    from keel.guard.verify import CROSS_DEVICE_TOLERANCE, verify_archive

    members = read_members(ARCHIVE)
    files = {info.name: data for info, data in members}
    golden = json.loads(files["golden/predictions.json"])
    golden["device"] = "cuda"  # recorded on a GPU, replayed here on the CPU
    edited = [
        (info, json.dumps(golden).encode() if info.name == "golden/predictions.json" else data)
        for info, data in members
    ]
    archive = write_members(_rehash(edited), tmp_path / "gpu-made.tar.gz")
    step = verify_archive(archive, allow_env_drift=True, device="cpu").check("predictions")
    assert step.status == "pass", step.to_dict()
    assert step.details["tolerance"] == CROSS_DEVICE_TOLERANCE
    assert "cuda archive replayed on cpu" in step.reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_devices_trainer_cuda_device_uses_the_same_resolver_naming_its_config_key():
    from keel.training.trainer import _resolve_device

    assert _resolve_device(None) == torch.device("cpu")
    with pytest.raises(ConfigurationError, match="trainer.cuda_device cuda:0: CUDA is not"):
        _resolve_device(0)

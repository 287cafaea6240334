import importlib.metadata
import io
import json
import platform
import sys
import tarfile

import pytest
import torch

from keel.archive.manifest import Manifest
from keel.common import errors
from keel.common.errors import ArchiveError, GuardError
from keel.guard.environment import (
    ENV_VAR_ALLOWLIST,
    KEY_PACKAGES,
    SCHEMA_VERSION,
    _read_cpuinfo,
    capture_environment,
    load_environment,
    save_environment,
)
from keel.guard.gpu_check import DriverAnswer, GpuDevice, GpuProbes, TorchAnswer

EXPECTED_SECTIONS = {
    "kind": str,
    "schema_version": int,
    "captured_at": str,
    "python": dict,
    "platform": dict,
    "cpu": dict,
    "distributions": dict,
    "distribution_sources": dict,
    "key_packages": dict,
    "torch": dict,
    "gpu": dict,
    "locale": dict,
    "env_vars": dict,
}
EXPECTED_FIELDS = {
    "python": {"version", "implementation", "compiler", "build"},
    "platform": {"system", "release", "machine", "platform", "os", "libc"},
    "cpu": {"model", "architecture", "logical_cores", "flags"},
    "torch": {
        "version",
        "cuda",
        "hip",
        "git_version",
        "debug",
        "cudnn",
        "arch_list",
        "cuda_available",
        "cpu_capability",
        "mkl",
        "mkldnn",
        "openmp",
        "num_threads",
        "num_interop_threads",
        "default_dtype",
        "float32_matmul_precision",
        "deterministic_algorithms",
        "fp32_precision",
    },
    "gpu": {"available", "source", "driver_version", "cuda_driver_version", "devices"},
    "locale": {
        "lc_ctype",
        "lc_ctype_encoding",
        "preferred_encoding",
        "filesystem_encoding",
        "utf8_mode",
    },
}

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse4_1 sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16 rdrand

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse4_1
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 2000.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp sve sve2 bf16 i8mm
CPU implementer\t: 0x41
"""


def _fake_probes(driver=None, torch_answer=None):
    return GpuProbes(driver=lambda: driver, torch=lambda: torch_answer, numerics=lambda device: [])


def _tarball(path, members):
    """A tar.gz with (name, bytes | tarfile.TarInfo) members, written with the tarfile module."""
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members:
            if isinstance(content, tarfile.TarInfo):
                archive.addfile(content)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture(scope="module")
def env():
    return capture_environment()


def test_environment_capture_has_every_field(env):
    for section, kind in EXPECTED_SECTIONS.items():
        assert isinstance(env[section], kind), section
    for section, fields in EXPECTED_FIELDS.items():
        assert set(env[section]) == fields, section
    assert env["schema_version"] == SCHEMA_VERSION
    assert set(env["key_packages"]) == set(KEY_PACKAGES)


def test_environment_capture_describes_this_interpreter_and_platform(env):
    assert env["python"]["version"] == platform.python_version()
    assert env["python"]["implementation"] == platform.python_implementation()
    assert env["platform"]["system"] == platform.system()
    assert env["platform"]["machine"] == platform.machine()
    assert env["cpu"]["logical_cores"] >= 1
    assert env["locale"]["filesystem_encoding"] == sys.getfilesystemencoding()


def test_environment_capture_lists_installed_distributions(env):
    for name in ("torch", "numpy", "packaging", "typer"):
        assert env["distributions"][name] == importlib.metadata.version(name)
    assert env["key_packages"]["torch"] == torch.__version__
    assert list(env["distributions"]) == sorted(env["distributions"])


def test_environment_capture_records_torch_build(env):
    section = env["torch"]
    assert section["version"] == torch.__version__
    assert section["cuda"] == torch.version.cuda
    assert section["arch_list"] == torch.cuda.get_arch_list()
    assert section["default_dtype"] == "float32"
    assert section["num_threads"] == torch.get_num_threads()
    assert section["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_environment_capture_without_gpu_says_so(env):
    if env["gpu"]["available"]:
        pytest.skip("this machine has a GPU")
    assert env["gpu"]["devices"] == []
    assert env["torch"]["cuda_available"] is False


def test_environment_capture_is_json_round_trippable(env, tmp_path):
    path = save_environment(tmp_path, env)
    assert path.name == "env.json"
    assert load_environment(str(path)) == json.loads(json.dumps(env))
    assert load_environment(str(tmp_path)) == load_environment(str(path))


def test_environment_capture_records_only_allow_listed_variables(monkeypatch):
    monkeypatch.setenv("SECRET_API_TOKEN", "hunter2-do-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    captured = capture_environment()
    variables = captured["env_vars"]
    assert set(variables) <= set(ENV_VAR_ALLOWLIST)
    assert variables["PYTHONHASHSEED"] == "0"
    assert variables["OMP_NUM_THREADS"] == "3"
    assert variables["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    text = json.dumps(captured)
    assert "SECRET_API_TOKEN" not in text and "hunter2-do-not-leak" not in text
    assert "also-secret" not in text


def test_environment_cpuinfo_keeps_numerics_flags_of_first_cpu(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(X86_CPUINFO)
    model, flags = _read_cpuinfo(str(path))
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx512f", "avx512_bf16", "amx_bf16", "fma"} <= flags


def test_environment_cpuinfo_reads_arm_features(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(ARM_CPUINFO)
    model, flags = _read_cpuinfo(str(path))
    assert model is None
    assert {"asimd", "sve2", "bf16", "i8mm"} <= flags


def test_environment_cpuinfo_missing_file_gives_nothing(tmp_path):
    assert _read_cpuinfo(str(tmp_path / "absent")) == (None, set())


def test_environment_gpu_section_from_nvml_answers():
    driver = DriverAnswer(
        "nvml", "550.54.14", "12.4", (GpuDevice(0, "NVIDIA H100 80GB HBM3", (9, 0), 81559),)
    )
    gpu = capture_environment(probes=_fake_probes(driver=driver))["gpu"]
    assert gpu == {
        "available": True,
        "source": "nvml",
        "driver_version": "550.54.14",
        "cuda_driver_version": "12.4",
        "devices": [
            {
                "index": 0,
                "name": "NVIDIA H100 80GB HBM3",
                "compute_capability": "9.0",
                "memory_total_mb": 81559,
            }
        ],
    }


def test_environment_gpu_section_falls_back_to_torch_for_capability():
    driver = DriverAnswer("procfs", "535.104.05", None, (GpuDevice(0, "NVIDIA A100-SXM4-40GB"),))
    torch_answer = TorchAnswer(
        "2.13.0+cu126",
        "12.6",
        True,
        ("sm_80", "sm_90"),
        True,
        90100,
        (GpuDevice(0, "NVIDIA A100-SXM4-40GB", (8, 0), 40326),),
        driver_cuda_version="12.2",
    )
    gpu = capture_environment(probes=_fake_probes(driver, torch_answer))["gpu"]
    assert gpu["source"] == "procfs"
    assert gpu["cuda_driver_version"] == "12.2"
    assert gpu["devices"][0]["compute_capability"] == "8.0"
    assert gpu["devices"][0]["memory_total_mb"] == 40326


def test_environment_load_current_captures_now():
    loaded = load_environment("current")
    assert loaded["distributions"]["torch"] == torch.__version__


def test_environment_load_reads_archive_manifest_without_extracting(env, tmp_path):
    manifest = {"format_version": 1, "environment": env}
    archive = _tarball(
        tmp_path / "model.tar.gz",
        [
            ("manifest.json", json.dumps(manifest).encode()),
            ("weights.safetensors", b"\0" * 64),
        ],
    )
    assert load_environment(str(archive)) == json.loads(json.dumps(env))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tar.gz"]


def test_environment_load_reads_archive_written_by_keel_archive(env, tmp_path):
    from keel.archive.archive import write_archive

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "config.json").write_text("{}")
    destination = write_archive(staging, tmp_path / "model.tar.gz", Manifest(environment=env))
    assert load_environment(str(destination))["distributions"] == env["distributions"]


def test_environment_load_refuses_linked_manifest(tmp_path):
    link = tarfile.TarInfo("manifest.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tarball(tmp_path / "model.tar.gz", [("manifest.json", link)])
    with pytest.raises(ArchiveError) as caught:
        load_environment(str(archive))
    assert caught.value.code == errors.ARCHIVE_UNSAFE_MEMBER


def test_environment_load_archive_without_manifest(tmp_path):
    archive = _tarball(tmp_path / "model.tar.gz", [("config.json", b"{}")])
    with pytest.raises(ArchiveError) as caught:
        load_environment(str(archive))
    assert caught.value.code == errors.ARCHIVE_MISSING_MEMBER


def test_environment_load_archive_manifest_without_environment(tmp_path):
    archive = _tarball(tmp_path / "model.tar.gz", [("manifest.json", b'{"format_version": 1}')])
    with pytest.raises(GuardError) as caught:
        load_environment(str(archive))
    assert caught.value.code == errors.BAD_ENV_DOCUMENT
    assert "environment" in caught.value.message


def test_environment_load_truncated_archive_is_corrupt(env, tmp_path):
    archive = _tarball(
        tmp_path / "model.tar.gz",
        [
            ("manifest.json", json.dumps({"environment": env}).encode() * 50),
        ],
    )
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError) as caught:
        load_environment(str(archive))
    assert caught.value.code == errors.ARCHIVE_CORRUPT


def test_environment_load_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "env.json"
    path.write_text('{\n  "schema_version": 1,\n  oops\n}')
    with pytest.raises(GuardError) as caught:
        load_environment(str(path))
    assert caught.value.code == errors.BAD_ENV_DOCUMENT
    assert f"{path}:3:3" in caught.value.message


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([1, 2], "expected an environment document"),
        ({"distributions": {}}, "schema_version"),
        ({"schema_version": SCHEMA_VERSION + 1, "distributions": {}}, "newer keel"),
        ({"schema_version": 1, "distributions": {"torch": 2}}, "distributions"),
        ({"schema_version": 1, "distributions": {}, "gpu": "none"}, "gpu: expected an object"),
    ],
)
def test_environment_load_rejects_bad_documents(tmp_path, document, fragment):
    path = tmp_path / "env.json"
    path.write_text(json.dumps(document))
    with pytest.raises(GuardError) as caught:
        load_environment(str(path))
    assert caught.value.code == errors.BAD_ENV_DOCUMENT
    assert fragment in caught.value.message


def test_environment_load_missing_source(tmp_path):
    with pytest.raises(GuardError) as caught:
        load_environment(str(tmp_path / "nope.json"))
    assert caught.value.code == errors.BAD_ENV_DOCUMENT
    with pytest.raises(GuardError, match="no env.json"):
        load_environment(str(tmp_path))


def test_environment_gpu_section_from_torch_when_driver_is_silent():
    torch_answer = TorchAnswer(
        "2.13.0+cu126",
        "12.6",
        True,
        ("sm_90",),
        True,
        91002,
        (GpuDevice(0, "NVIDIA H100 80GB HBM3", (9, 0), 81559),),
    )
    gpu = capture_environment(probes=_fake_probes(None, torch_answer))["gpu"]
    assert gpu["source"] == "torch" and gpu["available"] is True
    assert gpu["devices"][0]["compute_capability"] == "9.0"


def test_environment_gpu_section_does_not_pair_devices_when_counts_differ():
    driver = DriverAnswer(
        "procfs", "550.54.14", None, (GpuDevice(0, "NVIDIA A100"), GpuDevice(1, "NVIDIA T4"))
    )
    torch_answer = TorchAnswer(
        "2.13.0+cu126",
        "12.6",
        True,
        ("sm_75",),
        True,
        91002,
        (GpuDevice(0, "NVIDIA T4", (7, 5), 15360),),
    )
    gpu = capture_environment(probes=_fake_probes(driver, torch_answer))["gpu"]
    assert [d["name"] for d in gpu["devices"]] == ["NVIDIA A100", "NVIDIA T4"]
    assert [d["compute_capability"] for d in gpu["devices"]] == [None, None]


def test_environment_capture_records_per_backend_tf32_settings():
    matmul = torch.backends.cuda.matmul
    saved = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"  # the new API makes the legacy getter raise
        section = capture_environment()["torch"]
    finally:
        matmul.fp32_precision = saved
    assert section["fp32_precision"]["cuda_matmul"] == "tf32"
    assert section["float32_matmul_precision"] is None

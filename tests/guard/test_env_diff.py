import copy

import pytest

from keel.common import errors
from keel.guard.env_diff import (
    BREAKING,
    INFO,
    RISKY,
    RULES,
    Severity,
    diff_environments,
    distributions_providing,
)

# A hand-made training environment: every rule below is tested against a change to it.
TRAINING_ENV = {
    "kind": "keel-environment",
    "schema_version": 1,
    "captured_at": "2026-11-01T10:00:00+00:00",
    "python": {
        "version": "3.11.7",
        "implementation": "CPython",
        "compiler": "GCC 12.2.0",
        "build": ["main", "May  9 2026"],
    },
    "platform": {
        "system": "Linux",
        "release": "6.8.0",
        "machine": "x86_64",
        "platform": "Linux-6.8.0-x86_64-with-glibc2.36",
        "os": "Debian 12",
        "libc": "glibc 2.36",
    },
    "cpu": {
        "model": "Intel Xeon 8480+",
        "architecture": "x86_64",
        "logical_cores": 32,
        "flags": ["avx", "avx2", "avx512f", "fma"],
    },
    "distributions": {
        "keel": "0.1.0",
        "torch": "2.13.0+cu126",
        "numpy": "2.4.6",
        "tokenizers": "0.23.3",
        "transformers": "4.50.0",
        "safetensors": "0.8.0",
        "scipy": "1.16.0",
        "nvidia-cudnn-cu12": "9.10.2.21",
        "rich": "15.0.0",
        "my-keel-plugin": "1.2.0",
    },
    "distribution_sources": {},
    "key_packages": {"keel": "0.1.0", "torch": "2.13.0+cu126"},
    "torch": {
        "version": "2.13.0+cu126",
        "cuda": "12.6",
        "cudnn": 91002,
        "arch_list": ["sm_80", "sm_90"],
        "cuda_available": True,
        "cpu_capability": "AVX512",
        "num_threads": 16,
        "default_dtype": "float32",
        "float32_matmul_precision": "highest",
        "deterministic_algorithms": False,
        "fp32_precision": {"cuda_matmul": "ieee"},
    },
    "gpu": {
        "available": True,
        "source": "nvml",
        "driver_version": "560.35.03",
        "cuda_driver_version": "12.6",
        "devices": [
            {
                "index": 0,
                "name": "NVIDIA A100-SXM4-80GB",
                "compute_capability": "8.0",
                "memory_total_mb": 81920,
            }
        ],
    },
    "locale": {"lc_ctype": "en_US", "preferred_encoding": "UTF-8"},
    "env_vars": {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "8", "LANG": "C.UTF-8"},
}


def _changed(path, value):
    """A copy of TRAINING_ENV with the dotted ``path`` set to ``value`` (None deletes it)."""
    env = copy.deepcopy(TRAINING_ENV)
    *parents, last = path.split(".")
    node = env
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return env


# (dotted path, new value, key reported, expected severity); None as value removes the key.
CASES = [
    # torch: major breaks, minor is risky (kernels/defaults change, weights load), patch is info
    ("distributions.torch", "3.0.0+cu126", "distributions.torch", BREAKING),
    ("distributions.torch", "2.14.0+cu126", "distributions.torch", RISKY),
    ("distributions.torch", "2.12.1+cu126", "distributions.torch", RISKY),
    ("distributions.torch", "2.13.1+cu126", "distributions.torch", INFO),
    ("distributions.torch", "2.13.0+cpu", "distributions.torch", RISKY),  # CUDA build change
    ("distributions.torch", "2.13.0", "distributions.torch", RISKY),
    ("distributions.torch", None, "distributions.torch", BREAKING),
    # numpy: 1 -> 2 style major breaks the C ABI
    ("distributions.numpy", "3.0.0", "distributions.numpy", BREAKING),
    ("distributions.numpy", "2.5.0", "distributions.numpy", RISKY),
    ("distributions.numpy", "2.4.7", "distributions.numpy", INFO),
    # tokenization libraries: any non-patch change may change token ids
    ("distributions.tokenizers", "0.24.0", "distributions.tokenizers", BREAKING),
    ("distributions.tokenizers", "0.23.4", "distributions.tokenizers", RISKY),
    ("distributions.transformers", "4.51.0", "distributions.transformers", BREAKING),
    ("distributions.transformers", "5.0.0", "distributions.transformers", BREAKING),
    ("distributions.transformers", "4.50.1", "distributions.transformers", RISKY),
    ("distributions.transformers", None, "distributions.transformers", BREAKING),
    ("distributions.safetensors", "0.9.0", "distributions.safetensors", INFO),
    ("distributions.safetensors", "1.0.0", "distributions.safetensors", BREAKING),
    ("distributions.keel", "0.2.0", "distributions.keel", RISKY),
    ("distributions.keel", "1.0.0", "distributions.keel", BREAKING),
    # other numerics libraries: minor (and major) risky
    ("distributions.scipy", "1.17.0", "distributions.scipy", RISKY),
    ("distributions.scipy", "1.16.1", "distributions.scipy", INFO),
    ("distributions.nvidia-cudnn-cu12", "9.11.0.1", "distributions.nvidia-cudnn-cu12", RISKY),
    # unrelated packages
    ("distributions.rich", "16.0.0", "distributions.rich", INFO),
    ("distributions.rich", None, "distributions.rich", INFO),
    ("distributions.brand-new", "1.0", "distributions.brand-new", INFO),
    ("distributions.rich", "not a version!", "distributions.rich", INFO),
    # Python
    ("python.version", "3.12.1", "python.version", BREAKING),
    ("python.version", "3.11.9", "python.version", INFO),
    ("python.implementation", "PyPy", "python.implementation", BREAKING),
    ("python.compiler", "Clang 17", "python.compiler", INFO),
    # torch build and settings
    ("torch.cuda", "12.8", "torch.cuda", RISKY),
    ("torch.cuda", None, "torch.cuda", RISKY),
    ("torch.cudnn", 91100, "torch.cudnn", RISKY),
    ("torch.cpu_capability", "AVX2", "torch.cpu_capability", RISKY),
    ("torch.default_dtype", "float64", "torch.default_dtype", RISKY),
    ("torch.float32_matmul_precision", "high", "torch.float32_matmul_precision", RISKY),
    ("torch.fp32_precision.cuda_matmul", "tf32", "torch.fp32_precision.cuda_matmul", RISKY),
    ("torch.deterministic_algorithms", True, "torch.deterministic_algorithms", RISKY),
    ("torch.num_threads", 4, "torch.num_threads", INFO),
    ("torch.arch_list", ["sm_80"], "torch.arch_list.sm_90", INFO),
    # GPU and driver
    ("gpu.driver_version", "570.86.15", "gpu.driver_version", RISKY),
    ("gpu.cuda_driver_version", "12.8", "gpu.cuda_driver_version", RISKY),
    ("gpu.available", False, "gpu.available", RISKY),
    ("gpu.devices.0.name", "NVIDIA H100 80GB HBM3", "gpu.devices.0.name", RISKY),
    ("gpu.devices.0.compute_capability", "9.0", "gpu.devices.0.compute_capability", RISKY),
    ("gpu.devices.0.memory_total_mb", 40960, "gpu.devices.0.memory_total_mb", INFO),
    ("gpu.devices", [], "gpu.devices.0", INFO),
    # CPU and platform
    ("cpu.flags", ["avx", "avx2", "fma"], "cpu.flags.avx512f", RISKY),
    ("cpu.flags", ["avx", "avx2", "avx512f", "fma", "amx_bf16"], "cpu.flags.amx_bf16", RISKY),
    ("cpu.model", "AMD EPYC 9654", "cpu.model", INFO),
    ("cpu.logical_cores", 8, "cpu.logical_cores", INFO),
    ("platform.machine", "aarch64", "platform.machine", RISKY),
    ("platform.system", "Darwin", "platform.system", RISKY),
    ("platform.release", "6.9.1", "platform.release", INFO),
    ("platform.libc", "glibc 2.39", "platform.libc", INFO),
    # locale and variables
    ("locale.preferred_encoding", "ANSI_X3.4-1968", "locale.preferred_encoding", RISKY),
    ("locale.lc_ctype", "de_DE", "locale.lc_ctype", INFO),
    ("env_vars.PYTHONHASHSEED", "random", "env_vars.PYTHONHASHSEED", RISKY),
    ("env_vars.PYTHONHASHSEED", None, "env_vars.PYTHONHASHSEED", RISKY),
    ("env_vars.CUBLAS_WORKSPACE_CONFIG", ":4096:8", "env_vars.CUBLAS_WORKSPACE_CONFIG", RISKY),
    ("env_vars.NVIDIA_TF32_OVERRIDE", "0", "env_vars.NVIDIA_TF32_OVERRIDE", RISKY),
    ("env_vars.LANG", "C", "env_vars.LANG", RISKY),
    ("env_vars.OMP_NUM_THREADS", "1", "env_vars.OMP_NUM_THREADS", INFO),
    ("env_vars.TOKENIZERS_PARALLELISM", "false", "env_vars.TOKENIZERS_PARALLELISM", INFO),
    # a section a newer capture adds
    ("future_section", {"x": 1}, "future_section", INFO),
]


@pytest.mark.parametrize(
    ("path", "value", "key", "severity"), CASES, ids=[f"{c[0]}={c[1]}" for c in CASES]
)
def test_env_diff_classifies_hand_made_pair(path, value, key, severity):
    result = diff_environments(TRAINING_ENV, _changed(path, value))
    assert [(d.key, d.severity) for d in result.differences] == [(key, severity)]
    difference = result.differences[0]
    assert difference.reason, "every difference carries a reason"


def test_env_diff_identical_environments_have_no_differences():
    result = diff_environments(TRAINING_ENV, copy.deepcopy(TRAINING_ENV))
    assert result.differences == []
    assert not result.fails("info")
    assert result.code() is None


def test_env_diff_ignores_capture_bookkeeping():
    other = _changed("captured_at", "2027-01-01T00:00:00+00:00")
    other["key_packages"]["torch"] = "9.9.9"
    other["distribution_sources"] = {"keel": {"kind": "editable"}}
    assert diff_environments(TRAINING_ENV, other).differences == []


def test_env_diff_torch_reason_names_both_minor_and_build_change():
    result = diff_environments(TRAINING_ENV, _changed("distributions.torch", "2.14.0+cpu"))
    (difference,) = result.differences
    assert difference.severity is RISKY
    assert "minor releases" in difference.reason and "build variant" in difference.reason


def test_env_diff_tokenization_change_is_info_when_model_does_not_use_it():
    changed = _changed("distributions.transformers", "4.51.0")
    (difference,) = diff_environments(TRAINING_ENV, changed, required_distributions=[]).differences
    assert difference.severity is INFO
    used = diff_environments(TRAINING_ENV, changed, required_distributions=["transformers"])
    assert used.differences[0].severity is BREAKING


def test_env_diff_missing_required_component_package_is_breaking():
    changed = _changed("distributions.my-keel-plugin", None)
    (unknown,) = diff_environments(TRAINING_ENV, changed).differences
    assert unknown.severity is INFO
    (required,) = diff_environments(
        TRAINING_ENV, changed, required_distributions=["My_Keel.Plugin"]
    ).differences
    assert required.severity is BREAKING
    assert "registered component" in required.reason


def test_env_diff_required_package_versions_follow_semver():
    required = ["my-keel-plugin"]
    for version, severity in (("2.0.0", BREAKING), ("1.3.0", RISKY), ("1.2.1", INFO)):
        changed = _changed("distributions.my-keel-plugin", version)
        (difference,) = diff_environments(TRAINING_ENV, changed, required).differences
        assert difference.severity is severity, version


def test_env_diff_orders_by_severity_and_summarises():
    other = _changed("distributions.torch", "3.0.0+cu126")
    other["distributions"]["rich"] = "16.0.0"
    other["gpu"]["driver_version"] = "570.86.15"
    result = diff_environments(TRAINING_ENV, other, a_label="train", b_label="serve")
    assert [d.severity for d in result.differences] == [BREAKING, RISKY, INFO]
    assert result.has(BREAKING) and result.has("risky") and result.has("info")
    assert result.code() == errors.ENV_BREAKING
    document = result.to_dict()
    assert document["a"] == "train" and document["b"] == "serve"
    assert document["summary"] == {"breaking": 1, "risky": 1, "info": 1}
    assert document["differences"][0] == {
        "severity": "breaking",
        "key": "distributions.torch",
        "old": "2.13.0+cu126",
        "new": "3.0.0+cu126",
        "reason": result.differences[0].reason,
    }


def test_env_diff_fail_on_levels():
    risky_only = diff_environments(TRAINING_ENV, _changed("torch.cuda", "12.8"))
    assert not risky_only.fails()
    assert risky_only.fails("risky")
    assert risky_only.code() is None
    assert risky_only.code("risky") == errors.ENV_RISKY
    info_only = diff_environments(TRAINING_ENV, _changed("cpu.model", "other"))
    assert not info_only.fails("risky") and info_only.fails(Severity.INFO)


def test_env_diff_absent_values_serialise_as_null():
    result = diff_environments(TRAINING_ENV, _changed("distributions.torch", None))
    assert result.to_dict()["differences"][0]["new"] is None
    assert "(absent)" not in result.differences[0].reason
    assert "not installed" in result.differences[0].reason


def test_env_diff_whole_missing_section_is_one_difference():
    other = _changed("torch", None)
    assert diff_environments(TRAINING_ENV, other).differences == []  # distributions.torch stays
    other = _changed("locale", None)
    (difference,) = diff_environments(TRAINING_ENV, other).differences
    assert difference.key == "locale"


def test_env_diff_rules_table_ends_with_a_catch_all():
    assert RULES[-1].pattern == "*"
    patterns = [rule.pattern for rule in RULES]
    assert len(patterns) == len(set(patterns)), "a pattern listed twice would never be reached"


def test_env_diff_distributions_providing_maps_modules_to_distributions():
    assert distributions_providing(["keel.guard.env_diff", "numpy.linalg", "no_such_mod"]) == [
        "keel",
        "numpy",
    ]

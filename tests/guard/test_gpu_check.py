"""The GPU check. No GPU exists on the machines these tests run on, so the CUDA paths are driven
by fake probe answers (the one place keel allows fakes); the CPU path runs for real."""

import os
from dataclasses import replace

import pytest

from keel.common import errors
from keel.common.errors import GuardError
from keel.guard.gpu_check import (
    DEFAULT_TOLERANCE,
    DriverAnswer,
    GpuDevice,
    GpuProbes,
    NumericsAnswer,
    Status,
    TorchAnswer,
    _probe_procfs,
    check_gpu_stack,
    kernel_support,
    real_probes,
    run_numerics,
)

A100 = GpuDevice(0, "NVIDIA A100-SXM4-80GB", (8, 0), 81920)
RTX_5090 = GpuDevice(0, "NVIDIA GeForce RTX 5090", (12, 0), 32607)
NVML_OK = DriverAnswer("nvml", "560.35.03", "12.6", (A100,))
CUDA_TORCH = TorchAnswer(
    version="2.13.0+cu126",
    cuda_version="12.6",
    cuda_available=True,
    arch_list=("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
    cudnn_available=True,
    cudnn_version=91002,
    devices=(A100,),
)
CPU_TORCH = TorchAnswer(version="2.13.0+cpu", cuda_version=None, cuda_available=False)
# Differences a float32 matmul/LSTM really shows against its reference (seen on this CPU).
GOOD_DIFF = 1e-6
BAD_DIFF = 3e-2


def numerics(cuda_diff=GOOD_DIFF, cuda_error=None):
    def answer(device):
        diff = GOOD_DIFF if device == "cpu" else cuda_diff
        error = None if device == "cpu" else cuda_error
        return [
            NumericsAnswer(name, device, None if error else diff, 1.0, error)
            for name in ("matmul", "lstm")
        ]

    return answer


def probes(driver=NVML_OK, torch=CUDA_TORCH, cuda_diff=GOOD_DIFF, cuda_error=None):
    return GpuProbes(
        driver=lambda: driver, torch=lambda: torch, numerics=numerics(cuda_diff, cuda_error)
    )


def statuses(report):
    return {item.name: item.status for item in report.items}


def test_gpu_check_healthy_gpu_passes_every_check():
    report = check_gpu_stack(probes())
    assert report.ok and report.gpu_present
    assert set(statuses(report).values()) == {Status.PASS}
    assert {
        "driver",
        "cudnn",
        "arch cuda:0",
        "numerics matmul cuda:0",
        "numerics lstm cuda:0",
        "numerics matmul cpu",
        "numerics lstm cpu",
    } <= set(statuses(report))
    assert report.code is None


def test_gpu_check_cpu_only_torch_with_gpu_present_fails_with_install_hint():
    report = check_gpu_stack(probes(torch=CPU_TORCH))
    assert not report.ok
    (failure,) = report.failures
    assert failure.name == "torch-cuda-build"
    assert "CPU-only build" in failure.reason and "A100" in failure.reason
    assert "download.pytorch.org/whl" in failure.fix and "CUDA <= 12.6" in failure.fix
    assert statuses(report)["numerics matmul cpu"] is Status.PASS


def test_gpu_check_driver_older_than_torch_cuda_major_fails():
    old = DriverAnswer("nvml", "470.256.02", "11.4", (A100,))
    report = check_gpu_stack(probes(driver=old, torch=CUDA_TORCH))
    assert statuses(report)["driver"] is Status.FAIL
    driver_item = next(item for item in report.failures if item.name == "driver")
    assert "11.4" in driver_item.reason and "12.6" in driver_item.reason
    assert "525.60.13" in driver_item.fix


def test_gpu_check_driver_older_minor_warns_about_minor_version_compatibility():
    older_minor = DriverAnswer("nvml", "535.104.05", "12.2", (A100,))
    report = check_gpu_stack(probes(driver=older_minor))
    assert statuses(report)["driver"] is Status.PASS
    assert report.ok


def test_gpu_check_what_could_not_be_checked_is_not_checked_and_fails_the_verdict():
    unknown = DriverAnswer("procfs", None, None, (GpuDevice(0, "NVIDIA A100-SXM4-80GB"),))
    report = check_gpu_stack(probes(driver=unknown))
    assert statuses(report)["driver"] is Status.NOT_CHECKED
    assert not report.ok and [item.name for item in report.failures] == ["driver"]
    allowed = report.to_report()
    allowed.allow_unchecked(["driver"])
    assert allowed.ok and allowed.escapes[0]["allowed_by"] == "--allow-unchecked driver"


def test_gpu_check_driver_version_table_without_nvml():
    procfs = DriverAnswer("procfs", "470.82.01", None, (GpuDevice(0, "NVIDIA A100-SXM4-80GB"),))
    report = check_gpu_stack(probes(driver=procfs))
    assert statuses(report)["driver"] is Status.FAIL
    recent = DriverAnswer("procfs", "550.54.14", None, (GpuDevice(0, "NVIDIA A100-SXM4-80GB"),))
    assert statuses(check_gpu_stack(probes(driver=recent)))["driver"] is Status.PASS


def test_gpu_check_device_without_kernels_fails_like_no_kernel_image():
    blackwell = replace(CUDA_TORCH, devices=(RTX_5090,))
    driver = DriverAnswer("nvml", "575.51.03", "12.9", (RTX_5090,))
    report = check_gpu_stack(probes(driver=driver, torch=blackwell))
    failure = next(item for item in report.failures if item.name == "arch cuda:0")
    assert "no kernel image is available" in failure.reason
    assert "12.0" in failure.reason and "sm_120" in failure.fix
    assert not any(
        name.endswith("cuda:0") and name.startswith("numerics") for name in statuses(report)
    ), "numerics are skipped on a device without kernels"


def test_gpu_check_cudnn_unavailable_fails():
    no_cudnn = replace(CUDA_TORCH, cudnn_available=False, cudnn_version=None)
    report = check_gpu_stack(probes(torch=no_cudnn))
    assert statuses(report)["cudnn"] is Status.FAIL
    assert [item.name for item in report.failures] == ["cudnn"]


def test_gpu_check_gpu_cpu_mismatch_beyond_tolerance_fails():
    report = check_gpu_stack(probes(cuda_diff=BAD_DIFF))
    names = [item.name for item in report.failures]
    assert names == ["numerics matmul cuda:0", "numerics lstm cuda:0"]
    assert "tolerance" in report.failures[0].reason


def test_gpu_check_kernel_error_during_numerics_fails():
    message = "CUDA error: no kernel image is available for execution on the device"
    report = check_gpu_stack(probes(cuda_error=message))
    assert message in report.failures[0].reason


def test_gpu_check_cuda_unusable_fails():
    broken = replace(
        CUDA_TORCH, cuda_available=False, devices=(), cuda_error="CUDA driver initialization failed"
    )
    report = check_gpu_stack(probes(torch=broken))
    failure = next(item for item in report.failures if item.name == "cuda-init")
    assert "initialization failed" in failure.reason


def test_gpu_check_without_gpu_checks_the_cpu_path():
    report = check_gpu_stack(probes(driver=None, torch=CPU_TORCH))
    assert report.ok and not report.gpu_present
    assert statuses(report)["gpu"] is Status.SKIPPED
    assert "No NVIDIA GPU" in next(i.reason for i in report.items if i.name == "gpu")
    assert statuses(report)["numerics lstm cpu"] is Status.PASS


def test_gpu_check_broken_cpu_numerics_fail():
    bad_cpu = GpuProbes(
        driver=lambda: None,
        torch=lambda: CPU_TORCH,
        numerics=lambda device: [NumericsAnswer("matmul", device, 0.5, 2.0)],
    )
    report = check_gpu_stack(bad_cpu)
    assert [item.name for item in report.failures] == ["numerics matmul cpu"]


def test_gpu_check_without_torch_fails():
    report = check_gpu_stack(probes(driver=None, torch=None))
    assert [item.name for item in report.failures] == ["torch"]


def test_gpu_check_report_serialises_and_raises_with_code():
    report = check_gpu_stack(probes(torch=CPU_TORCH))
    document = report.to_dict()
    assert document["ok"] is False and document["code"] == errors.GPU_CHECK_FAILED
    assert {"name", "status", "reason", "fix", "allowed_by"} <= set(document["checks"][0])
    with pytest.raises(GuardError) as caught:
        report.raise_for_failures()
    assert caught.value.code == errors.GPU_CHECK_FAILED
    check_gpu_stack(probes()).raise_for_failures()


@pytest.mark.parametrize(
    ("capability", "arch_list", "expected"),
    [
        ((8, 0), ["sm_80", "sm_90"], "binary"),
        ((8, 6), ["sm_80"], "binary"),  # same major, newer minor runs the sm_80 cubin
        ((8, 0), ["sm_86"], "none"),  # an older minor cannot
        ((9, 0), ["sm_90a"], "binary"),
        ((10, 0), ["sm_90a"], "none"),  # arch-specific targets never carry forward
        ((12, 0), ["sm_80", "sm_90", "compute_90"], "ptx"),
        ((7, 5), ["sm_80", "compute_80"], "none"),
        ((12, 0), ["sm_100", "sm_120"], "binary"),
        ((8, 0), [], "none"),
    ],
)
def test_gpu_check_kernel_support_rules(capability, arch_list, expected):
    assert kernel_support(capability, arch_list) == expected


def test_gpu_check_real_cpu_numerics_match_float64_reference():
    answers = run_numerics("cpu")
    assert [answer.name for answer in answers] == ["matmul", "lstm"]
    for answer in answers:
        assert answer.error is None
        assert answer.relative_diff() <= DEFAULT_TOLERANCE


def test_gpu_check_real_probes_on_this_machine():
    report = check_gpu_stack(real_probes())
    assert report.items[0].name == "torch"
    if not report.gpu_present:
        assert report.ok, report.to_dict()


def test_gpu_check_procfs_probe_reads_driver_and_models(tmp_path):
    (tmp_path / "version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    gpu = tmp_path / "gpus" / "0000:17:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 16\n")
    answer = _probe_procfs(str(tmp_path))
    assert answer.driver_version == "550.54.14"
    assert answer.devices == (GpuDevice(0, "NVIDIA H100 80GB HBM3"),)
    assert _probe_procfs(os.fspath(tmp_path / "absent")) is None


def test_gpu_check_numerics_restore_the_callers_tf32_settings():
    import torch

    matmul = torch.backends.cuda.matmul
    saved = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"
        run_numerics("cpu")
        assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision = saved


def test_gpu_check_rocm_build_skips_cuda_specific_checks():
    mi300 = GpuDevice(0, "AMD Instinct MI300X", (9, 4), 196592)
    rocm = TorchAnswer("2.13.0+rocm6.4", None, True, devices=(mi300,), hip_version="6.4")
    report = check_gpu_stack(probes(driver=None, torch=rocm))
    assert report.ok
    assert statuses(report)["rocm"] is Status.SKIPPED
    assert statuses(report)["numerics lstm cuda:0"] is Status.PASS

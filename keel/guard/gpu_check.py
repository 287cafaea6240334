"""``keel env check``: is this machine's GPU stack able to run keel's models, and run them right?

Every question the check asks of the hardware goes through :class:`GpuProbes`, a small bundle of
callables (driver/NVML answers, torch answers, a numerics comparison). :func:`real_probes` asks the
machine; tests hand in fakes because CUDA failure modes cannot be produced on a machine without a
GPU. The decision logic in :func:`check_gpu_stack` is the same either way.
"""

from __future__ import annotations

import contextlib
import glob
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from keel.common import errors
from keel.common.errors import GuardError
from keel.guard.results import CheckResult, Report, Status

# Oldest Linux driver that runs any toolkit of a CUDA major version, thanks to CUDA's minor
# version compatibility (NVIDIA's CUDA compatibility guide, table "minor version compatibility").
MIN_DRIVER_FOR_CUDA_MAJOR: dict[int, str] = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

# Relative tolerance for float32 results against their reference (CPU float64 for the CPU path,
# CPU float32 for the GPU path). TF32 is switched off during the check, so honest hardware sits
# near 1e-6; 1e-4 leaves room for different summation orders while catching broken kernels.
DEFAULT_TOLERANCE = 1e-4


# -- what the probes answer ----------------------------------------------------------------------


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as the driver or torch describes it."""

    index: int
    name: str
    compute_capability: tuple[int, int] | None = None
    memory_total_mb: int | None = None

    def to_dict(self) -> dict[str, Any]:
        capability = self.compute_capability
        return {
            "index": self.index,
            "name": self.name,
            "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
            "memory_total_mb": self.memory_total_mb,
        }


@dataclass(frozen=True)
class DriverAnswer:
    """The NVIDIA driver's view: from NVML, or from /proc/driver/nvidia when NVML is absent."""

    source: str
    driver_version: str | None
    cuda_driver_version: str | None  # newest CUDA the driver supports, e.g. "12.4"
    devices: tuple[GpuDevice, ...] = ()


@dataclass(frozen=True)
class TorchAnswer:
    """What the installed torch build says about CUDA."""

    version: str
    cuda_version: str | None  # CUDA toolkit torch was built with; None for CPU-only builds
    cuda_available: bool
    arch_list: tuple[str, ...] = ()
    cudnn_available: bool = False
    cudnn_version: int | None = None
    devices: tuple[GpuDevice, ...] = ()
    driver_cuda_version: str | None = None
    cuda_error: str | None = None  # why torch.cuda.is_available() is False, when known
    hip_version: str | None = None  # ROCm builds answer torch.cuda.* through HIP


@dataclass(frozen=True)
class NumericsAnswer:
    """One small computation compared with its reference on one device."""

    name: str
    device: str
    max_abs_diff: float | None
    scale: float = 1.0
    error: str | None = None

    def relative_diff(self) -> float | None:
        if self.max_abs_diff is None:
            return None
        return self.max_abs_diff / max(1.0, self.scale)


@dataclass(frozen=True)
class GpuProbes:
    """The questions the check asks the machine; swap them for fakes in tests."""

    driver: Callable[[], DriverAnswer | None]
    torch: Callable[[], TorchAnswer | None]
    numerics: Callable[[str], list[NumericsAnswer]]


# -- the report ----------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """Everything ``keel env check`` found, in the guard's result vocabulary (``pass``,
    ``fail``, ``not_checked``, ``skipped``). ``ok`` is False when any item fails the verdict."""

    gpu_present: bool
    items: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [item for item in self.items if item.blocks]

    @property
    def code(self) -> str | None:
        return None if self.ok else errors.GPU_CHECK_FAILED

    def add(self, name: str, status: Status, message: str, fix: str | None = None) -> None:
        self.items.append(CheckResult(name, status, message, fix=fix))

    def to_report(self) -> Report:
        """The items as a guard report (rendered by the CLI as table, JSON or JUnit)."""
        return Report("env check", "this machine", self.items)

    def summary(self) -> CheckResult:
        """The whole check as one line of another report (``keel doctor``)."""
        if self.ok:
            where = "GPU stack" if self.gpu_present else "no GPU; CPU path"
            passed = sum(item.status == Status.PASS for item in self.items)
            return CheckResult("env check", Status.PASS, f"{where}: {passed} checks passed")
        reason = "; ".join(f"{item.name} {item.status}: {item.reason}" for item in self.failures)
        return CheckResult("env check", Status.FAIL, reason)

    def to_dict(self) -> dict[str, Any]:
        document = self.to_report().to_dict()
        document.update({"code": self.code, "gpu_present": self.gpu_present})
        return document

    def raise_for_failures(self) -> None:
        """Raise a GuardError (KG003) that lists every failure and its fix."""
        if self.ok:
            return
        lines = [
            f"{item.name}: {item.reason}" + (f" Fix: {item.fix}" if item.fix else "")
            for item in self.failures
        ]
        raise GuardError(
            "GPU check failed:\n  - " + "\n  - ".join(lines), code=errors.GPU_CHECK_FAILED
        )


# -- the decisions -------------------------------------------------------------------------------


def check_gpu_stack(
    probes: GpuProbes | None = None, *, tolerance: float = DEFAULT_TOLERANCE
) -> CheckReport:
    """Check the GPU stack (or, without a GPU, the CPU path) and say what to fix."""
    probes = probes or real_probes()
    torch_answer = probes.torch()
    driver = probes.driver()
    driver_devices = driver.devices if driver else ()
    gpu_present = bool(driver_devices) or bool(torch_answer and torch_answer.cuda_available)
    report = CheckReport(gpu_present=gpu_present)

    if torch_answer is None:
        report.add(
            "torch",
            Status.FAIL,
            "torch cannot be imported.",
            "Install the torch version keel pins (see pyproject.toml).",
        )
        return report
    report.add(
        "torch",
        Status.PASS,
        f"torch {torch_answer.version}, built with "
        + (f"CUDA {torch_answer.cuda_version}" if torch_answer.cuda_version else "no CUDA")
        + ".",
    )

    if not gpu_present:
        report.add(
            "gpu",
            Status.SKIPPED,
            "No NVIDIA GPU found (NVML and /proc/driver/nvidia report none and torch sees "
            "none); checking the CPU path only.",
        )
    else:
        _check_gpu(report, probes, torch_answer, driver, tolerance)
    _check_numerics(report, probes, "cpu", tolerance)
    return report


def _check_gpu(
    report: CheckReport,
    probes: GpuProbes,
    torch_answer: TorchAnswer,
    driver: DriverAnswer | None,
    tolerance: float,
) -> None:
    devices = driver.devices if driver and driver.devices else torch_answer.devices
    names = ", ".join(sorted({device.name for device in devices})) or "unknown model"
    driver_text = (
        f"driver {driver.driver_version}"
        if driver and driver.driver_version
        else "driver version unknown"
    )
    report.add("gpu", Status.PASS, f"{len(devices)} GPU(s): {names}; {driver_text}.")

    if torch_answer.hip_version and torch_answer.cuda_available:
        report.add(
            "rocm",
            Status.SKIPPED,
            f"torch is a ROCm build (HIP {torch_answer.hip_version}); the driver, kernel-image "
            "and cuDNN checks are CUDA-specific and were skipped.",
        )
        for device in torch_answer.devices:
            _check_numerics(report, probes, f"cuda:{device.index}", tolerance)
        return

    if torch_answer.cuda_version is None:
        report.add(
            "torch-cuda-build",
            Status.FAIL,
            f"torch {torch_answer.version} is a CPU-only build but this machine has a GPU "
            f"({names}), so every model would silently run on the CPU.",
            f"Install a CUDA build of torch {_base_version(torch_answer.version)} from "
            "https://download.pytorch.org/whl/ (e.g. --index-url "
            "https://download.pytorch.org/whl/cu126), choosing a CUDA version the driver supports"
            + (
                f" (this driver supports CUDA <= {driver.cuda_driver_version})."
                if driver and driver.cuda_driver_version
                else "."
            ),
        )
        return

    driver_ok = _check_driver(report, torch_answer, driver)
    if not torch_answer.cuda_available:
        report.add(
            "cuda-init",
            Status.FAIL,
            f"torch {torch_answer.version} cannot use CUDA on this machine"
            + (f": {torch_answer.cuda_error}" if torch_answer.cuda_error else "."),
            "Check the driver installation (nvidia-smi must work), that CUDA_VISIBLE_DEVICES "
            "does not hide every GPU, and that the container has GPU access."
            if driver_ok
            else "Upgrade the driver (see driver check above).",
        )
        return

    if torch_answer.cudnn_available:
        report.add("cudnn", Status.PASS, f"cuDNN {torch_answer.cudnn_version} available.")
    else:
        report.add(
            "cudnn",
            Status.FAIL,
            "cuDNN is unavailable to torch, so LSTMs and convolutions fall back or fail.",
            "Reinstall torch from the official CUDA wheels (they bring nvidia-cudnn-cu*), or make "
            "the cuDNN library that matches torch's CUDA version loadable (LD_LIBRARY_PATH).",
        )

    runnable = []
    for device in torch_answer.devices or devices:
        if _check_arch(report, torch_answer, device):
            runnable.append(device)
    for device in runnable:
        _check_numerics(report, probes, f"cuda:{device.index}", tolerance)


def _check_driver(
    report: CheckReport, torch_answer: TorchAnswer, driver: DriverAnswer | None
) -> bool:
    needed = _major_minor(torch_answer.cuda_version)
    supported_text = (driver.cuda_driver_version if driver else None) or (
        torch_answer.driver_cuda_version
    )
    supported = _major_minor(supported_text)
    driver_version = driver.driver_version if driver else None
    if needed is None:
        return True
    fix = (
        f"Upgrade the NVIDIA driver to >= "
        f"{MIN_DRIVER_FOR_CUDA_MAJOR.get(needed[0], f'a release supporting CUDA {needed[0]}')} "
        f"(Linux), or install a torch build for the CUDA version the driver supports."
    )
    if supported is not None:
        if supported[0] < needed[0]:
            report.add(
                "driver",
                Status.FAIL,
                f"The driver ({driver_version or 'unknown version'}) supports CUDA up to "
                f"{supported_text}, older than the CUDA {torch_answer.cuda_version} torch was "
                "built with; CUDA calls will fail.",
                fix,
            )
            return False
        if supported < needed:
            report.add(
                "driver",
                Status.PASS,
                f"The driver supports CUDA up to {supported_text}; torch uses CUDA "
                f"{torch_answer.cuda_version}. This runs through CUDA minor version compatibility, "
                "but kernels that need PTX JIT compilation will fail.",
                fix,
            )
            return True
        report.add(
            "driver",
            Status.PASS,
            f"Driver supports CUDA {supported_text} >= torch's CUDA {torch_answer.cuda_version}.",
        )
        return True
    minimum = MIN_DRIVER_FOR_CUDA_MAJOR.get(needed[0])
    if driver_version and minimum and _version_tuple(driver_version) < _version_tuple(minimum):
        report.add(
            "driver",
            Status.FAIL,
            f"Driver {driver_version} is older than {minimum}, the oldest that runs CUDA "
            f"{needed[0]}.x (torch was built with CUDA {torch_answer.cuda_version}).",
            fix,
        )
        return False
    if driver_version and minimum:
        report.add(
            "driver",
            Status.PASS,
            f"Driver {driver_version} >= {minimum} (needed for CUDA {needed[0]}.x).",
        )
    else:
        report.add(
            "driver",
            Status.NOT_CHECKED,
            "Could not read the driver's supported CUDA version; install nvidia-ml-py "
            "(pip install 'keel[gpu]') for a precise check.",
        )
    return True


def _check_arch(report: CheckReport, torch_answer: TorchAnswer, device: GpuDevice) -> bool:
    capability = device.compute_capability
    name = f"arch cuda:{device.index}"
    if capability is None:
        report.add(
            name,
            Status.NOT_CHECKED,
            f"Compute capability of {device.name} unknown: kernel support could not be checked.",
        )
        return True
    verdict = kernel_support(capability, torch_answer.arch_list)
    cc = f"{capability[0]}.{capability[1]}"
    archs = " ".join(torch_answer.arch_list) or "(none)"
    if verdict == "binary":
        report.add(
            name,
            Status.PASS,
            f"{device.name} (sm_{capability[0]}{capability[1]}) has "
            f"compiled kernels in torch ({archs}).",
        )
        return True
    if verdict == "ptx":
        report.add(
            name,
            Status.PASS,
            f"{device.name} (compute capability {cc}) has no compiled kernels in torch "
            f"({archs}); kernels will be JIT-compiled from PTX (slow first run, needs a "
            "driver at least as new as torch's CUDA).",
            f"Install a torch build whose arch list includes sm_{capability[0]}{capability[1]}.",
        )
        return True
    report.add(
        name,
        Status.FAIL,
        f"{device.name} has compute capability {cc} but torch {torch_answer.version} carries "
        f"kernels only for {archs}: every CUDA op will fail with 'no kernel image is available "
        "for execution on the device'.",
        f"Install a torch build compiled for sm_{capability[0]}{capability[1]} (newer GPUs need "
        "newer CUDA wheels, e.g. cu128 for compute capability 12.0; older GPUs need older torch).",
    )
    return False


def kernel_support(capability: tuple[int, int], arch_list: tuple[str, ...] | list[str]) -> str:
    """ "binary" when a cubin runs on the device, "ptx" when only JIT from PTX can, else "none".

    A cubin built for sm_XY runs on devices of the same major X and minor >= Y; arch-specific
    targets (sm_90a) run only on exactly that capability. PTX (compute_XY) JIT-compiles for any
    capability >= XY.
    """
    major, minor = capability
    has_ptx = False
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+?)(\d)([af]?)", arch)
        if not match:
            continue
        kind, arch_major, arch_minor = match[1], int(match[2]), int(match[3])
        specific = bool(match[4])
        if (
            kind == "sm"
            and arch_major == major
            and (arch_minor == minor if specific else arch_minor <= minor)
        ):
            return "binary"
        if kind == "compute" and not specific and (arch_major, arch_minor) <= capability:
            has_ptx = True
    return "ptx" if has_ptx else "none"


def _check_numerics(report: CheckReport, probes: GpuProbes, device: str, tolerance: float) -> None:
    reference = "CPU float64" if device == "cpu" else "CPU"
    for answer in probes.numerics(device):
        name = f"numerics {answer.name} {device}"
        if answer.error is not None:
            report.add(
                name,
                Status.FAIL,
                f"{answer.name} on {device} failed: {answer.error}",
                "Run `keel env check` after fixing the failures above; if none, report the "
                "torch build and device.",
            )
            continue
        relative = answer.relative_diff()
        if relative is None or relative > tolerance:
            report.add(
                name,
                Status.FAIL,
                f"{answer.name} on {device} differs from the {reference} result by "
                f"{answer.max_abs_diff:.3g} (relative {relative:.3g} > tolerance {tolerance:g}): "
                "this device computes wrong results.",
                "Check for TF32/NVIDIA_TF32_OVERRIDE, a mismatched cuDNN/cuBLAS, or faulty "
                "hardware (nvidia-smi -q for ECC errors).",
            )
        else:
            report.add(
                name,
                Status.PASS,
                f"{answer.name} on {device} matches the {reference} result "
                f"(relative difference {relative:.2g} <= {tolerance:g}).",
            )


# -- the real probes -----------------------------------------------------------------------------


def real_probes() -> GpuProbes:
    """Probes that ask this machine: NVML (or /proc), the installed torch, and real kernels."""
    return GpuProbes(driver=probe_driver, torch=probe_torch, numerics=run_numerics)


def probe_driver() -> DriverAnswer | None:
    """The driver's answers from NVML (nvidia-ml-py), else /proc/driver/nvidia, else None."""
    return _probe_nvml() or _probe_procfs()


def _probe_nvml() -> DriverAnswer | None:
    try:
        import pynvml  # optional extra keel[gpu]; imported lazily because most hosts lack it
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound and friends: no driver on this host
        return None
    try:
        driver_version = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion()
            cuda_version = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        except Exception:
            cuda_version = None
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                capability = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
            except Exception:
                capability = None
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)
            devices.append(
                GpuDevice(index, _text(pynvml.nvmlDeviceGetName(handle)), capability, int(memory))
            )
        return DriverAnswer("nvml", driver_version, cuda_version, tuple(devices))
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _probe_procfs(root: str = "/proc/driver/nvidia") -> DriverAnswer | None:
    """Driver version and GPU models from the kernel module's /proc files (no NVML needed)."""
    try:
        with open(f"{root}/version", encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return None
    match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    devices = []
    for index, path in enumerate(sorted(glob.glob(f"{root}/gpus/*/information"))):
        try:
            with open(path, encoding="utf-8") as file:
                model = re.search(r"^Model:\s*(.+)$", file.read(), re.MULTILINE)
        except OSError:
            continue
        devices.append(GpuDevice(index, model[1].strip() if model else "NVIDIA GPU"))
    return DriverAnswer("procfs", match[1] if match else None, None, tuple(devices))


def probe_torch() -> TorchAnswer | None:
    """What the installed torch build and its CUDA runtime report."""
    try:
        import torch
    except ImportError:
        return None
    cuda_error = None
    try:
        available = torch.cuda.is_available()
    except Exception as error:  # a broken driver can raise instead of returning False
        available, cuda_error = False, str(error)
    devices = []
    if available:
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            devices.append(
                GpuDevice(
                    index,
                    properties.name,
                    (properties.major, properties.minor),
                    properties.total_memory // (1024 * 1024),
                )
            )
    driver_cuda = None
    get_driver_version = getattr(torch._C, "_cuda_getDriverVersion", None)
    if torch.version.cuda and get_driver_version is not None:
        with contextlib.suppress(Exception):
            value = int(get_driver_version())
            driver_cuda = f"{value // 1000}.{(value % 1000) // 10}" if value else None
    cudnn_available = bool(torch.backends.cudnn.is_available())
    return TorchAnswer(
        version=torch.__version__,
        cuda_version=torch.version.cuda,
        cuda_available=available,
        arch_list=tuple(torch.cuda.get_arch_list()),
        cudnn_available=cudnn_available,
        cudnn_version=torch.backends.cudnn.version() if cudnn_available else None,
        devices=tuple(devices),
        driver_cuda_version=driver_cuda,
        cuda_error=cuda_error,
        hip_version=getattr(torch.version, "hip", None),
    )


def run_numerics(device: str) -> list[NumericsAnswer]:
    """A 64x64 matmul and a 1-layer LSTM on ``device`` against a reference.

    On "cpu" the reference is float64 math (numpy for the LSTM equations), which catches broken
    BLAS/oneDNN; on a GPU the reference is the CPU float32 result, with TF32 off.
    """
    import numpy as np
    import torch

    generator = torch.Generator().manual_seed(1234)
    left = torch.randn(64, 64, generator=generator)
    right = torch.randn(64, 64, generator=generator)
    lstm = torch.nn.LSTM(input_size=8, hidden_size=16, batch_first=True)
    with torch.no_grad():
        for parameter in lstm.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    inputs = torch.randn(3, 7, 8, generator=generator)

    answers = []
    with _strict_fp32(), torch.no_grad():
        for name, compute, reference in (
            (
                "matmul",
                lambda dev: left.to(dev) @ right.to(dev),
                lambda: torch.from_numpy(left.double().numpy() @ right.double().numpy()),
            ),
            (
                "lstm",
                lambda dev: lstm.to(dev)(inputs.to(dev))[0],
                lambda: torch.from_numpy(_lstm_reference(lstm, inputs.double().numpy(), np)),
            ),
        ):
            try:
                expected = reference() if device == "cpu" else compute("cpu").double()
                got = compute(device).cpu().double()
                answers.append(
                    NumericsAnswer(
                        name,
                        device,
                        float((got - expected).abs().max()),
                        scale=float(expected.abs().max()),
                    )
                )
            except Exception as error:  # "no kernel image is available" surfaces here
                answers.append(NumericsAnswer(name, device, None, error=str(error).strip()))
            finally:
                lstm.to("cpu")
    return answers


def _lstm_reference(lstm: Any, inputs: Any, np: Any) -> Any:
    """The LSTM equations in float64 numpy, in torch's gate order (input, forget, cell, output)."""
    w_ih = lstm.weight_ih_l0.detach().double().numpy()
    w_hh = lstm.weight_hh_l0.detach().double().numpy()
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double().numpy()
    batch, steps, _ = inputs.shape
    hidden = np.zeros((batch, lstm.hidden_size))
    cell = np.zeros((batch, lstm.hidden_size))
    outputs = []
    for step in range(steps):
        gates = inputs[:, step] @ w_ih.T + hidden @ w_hh.T + bias
        i, f, g, o = np.split(gates, 4, axis=1)
        cell = _sigmoid(f, np) * cell + _sigmoid(i, np) * np.tanh(g)
        hidden = _sigmoid(o, np) * np.tanh(cell)
        outputs.append(hidden)
    return np.stack(outputs, axis=1)


def _sigmoid(x: Any, np: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


@contextlib.contextmanager
def _strict_fp32() -> Iterator[None]:
    """Turn TF32 off for the check (it would differ from the CPU by ~1e-3) and restore it after."""
    import torch

    cuda_matmul = torch.backends.cuda.matmul
    cudnn: Any = torch.backends.cudnn  # conv/rnn sub-backends exist from torch 2.9, unstubbed
    if hasattr(cuda_matmul, "fp32_precision"):
        targets = [cuda_matmul, cudnn.conv, cudnn.rnn]
        saved = [target.fp32_precision for target in targets]
        try:
            for target in targets:
                target.fp32_precision = "ieee"
            yield
        finally:
            for target, value in zip(targets, saved, strict=True):
                target.fp32_precision = value
    else:  # torch releases before the fp32_precision API
        saved_flags = (cuda_matmul.allow_tf32, cudnn.allow_tf32)
        try:
            cuda_matmul.allow_tf32, cudnn.allow_tf32 = False, False
            yield
        finally:
            cuda_matmul.allow_tf32, cudnn.allow_tf32 = saved_flags


# -- helpers -------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _major_minor(version: str | None) -> tuple[int, int] | None:
    if not version:
        return None
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _base_version(version: str) -> str:
    return version.split("+", 1)[0]

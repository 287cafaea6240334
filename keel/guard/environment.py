"""Capture the environment a model is trained or served in, as a versioned JSON document.

The document answers "what could make this machine compute differently?": Python, OS and libc,
CPU model and numerics-relevant flags, every installed distribution, torch's build, the GPUs and
driver, the locale, and an allow-list of environment variables (never any other variable, so
secrets cannot leak into archive manifests).

:func:`capture_environment` must stay under a second: no subprocesses on Linux, no imports
beyond torch (which keel needs anyway) and the optional NVML bindings.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import locale
import os
import platform
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from keel.archive.archive import read_manifest
from keel.archive.manifest import Manifest
from keel.common import errors
from keel.common.errors import GuardError
from keel.common.file_utils import atomic_write_json
from keel.common.filenames import ENV_FILE, MANIFEST_NAME
from keel.guard import gpu_check

if TYPE_CHECKING:
    from keel.guard.gpu_check import GpuProbes

SCHEMA_VERSION = 1
KIND = "keel-environment"
MANIFEST_KEY = "environment"

# Singled out in the document because they decide whether a model loads and computes the same.
KEY_PACKAGES = ("keel", "torch", "numpy", "tokenizers", "transformers", "safetensors")

# The only environment variables ever recorded: each changes numerics, determinism, kernel
# dispatch, tokenization or text decoding. Everything else (tokens, passwords, paths) stays out.
ENV_VAR_ALLOWLIST = (
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_LAUNCH_BLOCKING",
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "KMP_DETERMINISTIC_REDUCTION",
    "PYTHONHASHSEED",
    "PYTHONUTF8",
    "PYTHONIOENCODING",
    "TOKENIZERS_PARALLELISM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
)

# CPU features that change which vectorised kernels torch, oneDNN, MKL and numpy dispatch to.
_X86_FLAGS = (
    "sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512dq avx512cd avx512bw avx512vl avx512ifma "
    "avx512vbmi avx512_vnni avx512_bf16 avx512_fp16 avx_vnni amx_tile amx_bf16 amx_int8 amx_fp16"
)
_ARM64_FLAGS = "asimd asimdhp asimddp fphp sve sve2 bf16 i8mm svebf16 sme"  # cpuinfo "Features"
NUMERICS_CPU_FLAGS = frozenset(_X86_FLAGS.split() + _ARM64_FLAGS.split())


def capture_environment(*, probes: GpuProbes | None = None) -> dict[str, Any]:
    """The current environment as a JSON-able dict (see the module docstring for its contents).

    ``probes`` replaces the NVML/torch GPU questions (tests only; defaults to the real ones).
    """
    distributions, sources = _distributions()
    torch_section = _torch_section()
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "captured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "compiler": platform.python_compiler(),
            "build": list(platform.python_build()),
        },
        "platform": _platform_section(),
        "cpu": _cpu_section(),
        "distributions": distributions,
        "distribution_sources": sources,
        "key_packages": {name: distributions.get(name) for name in KEY_PACKAGES},
        "torch": torch_section,
        "gpu": _gpu_section(probes),
        "locale": _locale_section(),
        "env_vars": {name: os.environ[name] for name in ENV_VAR_ALLOWLIST if name in os.environ},
    }


def save_environment(path: str | os.PathLike[str], env: dict[str, Any] | None = None) -> Path:
    """Write ``env`` (default: a fresh capture) as JSON; a directory gets ``env.json`` inside."""
    target = Path(path)
    if target.is_dir():
        target = target / ENV_FILE
    atomic_write_json(target, env if env is not None else capture_environment())
    return target


def load_environment(source: str) -> dict[str, Any]:
    """An environment document from ``"current"``, an env JSON file, a serialization directory
    holding ``env.json``, or an archive (``model.tar.gz``: its manifest's ``environment``)."""
    if source == "current":
        return capture_environment()
    path = Path(source)
    if path.is_dir():
        env_path = path / ENV_FILE
        if not env_path.is_file():
            raise GuardError(
                f"{path}: directory has no {ENV_FILE}; expected a serialization "
                "directory written by `keel train`",
                code=errors.BAD_ENV_DOCUMENT,
            )
        return _validated(_parse_json(env_path.read_bytes(), str(env_path)), str(env_path))
    if not path.is_file():
        raise GuardError(
            f"{source}: no such file or directory; expected 'current', an env .json "
            "file, a serialization directory or a model.tar.gz",
            code=errors.BAD_ENV_DOCUMENT,
        )
    if _looks_like_archive(path):
        return _archive_environment(path, read_manifest(path))
    return _validated(_parse_json(path.read_bytes(), str(path)), str(path))


def required_distributions(source: str) -> list[str] | None:
    """The distributions the model of ``source`` depends on, when ``source`` is an archive
    (``Manifest.required_distributions``, the one answer verify uses too); None for any other
    source, which records no model."""
    path = Path(source)
    if source == "current" or not path.is_file() or not _looks_like_archive(path):
        return None
    return read_manifest(path).required_distributions()


def _looks_like_archive(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"  # gzip: keel archives are tar.gz


def _archive_environment(path: Path, manifest: Manifest) -> dict[str, Any]:
    if manifest.environment is None:
        raise GuardError(
            f"{path}:{MANIFEST_NAME}: manifest has no {MANIFEST_KEY!r} section; the "
            "archive was written without an environment capture",
            code=errors.BAD_ENV_DOCUMENT,
        )
    return _validated(manifest.environment, f"{path}:{MANIFEST_NAME}:{MANIFEST_KEY}")


def validate_environment(env: Any, where: str = "<environment>") -> dict[str, Any]:
    """``env`` itself when it is an environment document this keel can read, else GuardError."""
    return _validated(env, where)


# -- capture sections ----------------------------------------------------------------------------


def _distributions() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    versions: dict[str, str] = {}
    sources: dict[str, dict[str, str]] = {}
    for dist in importlib.metadata.distributions():
        raw_name, version = _name_and_version(dist)
        if not raw_name or version is None:
            continue
        name = canonicalize_name(raw_name)
        if name in versions:  # shadowed by an earlier sys.path entry, which is what imports
            continue
        versions[name] = version
        source = _direct_source(dist)
        if source:
            sources[name] = source
    return dict(sorted(versions.items())), dict(sorted(sources.items()))


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and Version from the metadata headers.

    Reading just the header block is ~10x faster than ``dist.metadata``, which runs the email
    parser over the whole file (long descriptions included) for every distribution.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line.strip():
            break  # end of the header block
        key, _, value = line.partition(":")
        if key == "Name":
            name = value.strip()
        elif key == "Version":
            version = value.strip()
        if name is not None and version is not None:
            break
    return name, version


def _direct_source(dist: importlib.metadata.Distribution) -> dict[str, str] | None:
    """How a distribution not from an index was installed (PEP 610), without its URL.

    URLs are left out on purpose: VCS and index URLs can embed credentials.
    """
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        direct = json.loads(text)
    except ValueError:
        return {"kind": "unknown"}
    if "vcs_info" in direct:
        vcs = direct["vcs_info"]
        return {
            "kind": "vcs",
            "vcs": str(vcs.get("vcs", "")),
            "commit": str(vcs.get("commit_id", "")),
        }
    if direct.get("dir_info", {}).get("editable"):
        return {"kind": "editable"}
    if "dir_info" in direct:
        return {"kind": "directory"}
    return {"kind": "archive"}


def _platform_section() -> dict[str, Any]:
    libc_name, libc_version = platform.libc_ver()
    os_name = None
    if sys.platform.startswith("linux"):
        try:
            os_name = platform.freedesktop_os_release().get("PRETTY_NAME")
        except OSError:
            os_name = None
    elif sys.platform == "darwin":
        os_name = f"macOS {platform.mac_ver()[0]}"
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "os": os_name,
        "libc": f"{libc_name} {libc_version}".strip() or None,
    }


def _cpu_section() -> dict[str, Any]:
    model, flags = _read_cpuinfo()
    if model is None:
        model = platform.processor() or None
    return {
        "model": model,
        "architecture": platform.machine(),
        "logical_cores": os.cpu_count(),
        "flags": sorted(flags & NUMERICS_CPU_FLAGS),
    }


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str | None, set[str]]:
    """Model name and feature flags of the first CPU listed in ``/proc/cpuinfo`` (Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read(256 * 1024)
    except OSError:
        return None, set()
    first = text.split("\n\n", 1)[0]
    model = re.search(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", first, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", first, re.MULTILINE)
    return (model[1].strip() if model else None), set(flags[1].split() if flags else ())


def _torch_section() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    backends = torch.backends
    cudnn_available = bool(backends.cudnn.is_available())
    section: dict[str, Any] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "git_version": getattr(torch.version, "git_version", None),
        "debug": bool(getattr(torch.version, "debug", False)),
        "cudnn": backends.cudnn.version() if cudnn_available else None,
        "arch_list": list(torch.cuda.get_arch_list()),
        "cuda_available": bool(torch.cuda.is_available()),
        "cpu_capability": backends.cpu.get_cpu_capability(),
        "mkl": bool(backends.mkl.is_available()),
        "mkldnn": bool(backends.mkldnn.is_available()),
        "openmp": bool(backends.openmp.is_available()),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "default_dtype": str(torch.get_default_dtype()).removeprefix("torch."),
        "float32_matmul_precision": _float32_matmul_precision(torch),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
    }
    if hasattr(backends, "fp32_precision"):
        section["fp32_precision"] = {
            name: getattr(backend, "fp32_precision", None)
            for name, backend in (
                ("generic", backends),
                ("cuda_matmul", backends.cuda.matmul),
                ("cudnn_conv", getattr(backends.cudnn, "conv", None)),
                ("cudnn_rnn", getattr(backends.cudnn, "rnn", None)),
                ("mkldnn_matmul", getattr(backends.mkldnn, "matmul", None)),
                ("mkldnn_conv", getattr(backends.mkldnn, "conv", None)),
                ("mkldnn_rnn", getattr(backends.mkldnn, "rnn", None)),
            )
        }
    else:  # torch releases before the fp32_precision API
        section["fp32_precision"] = {
            "cuda_matmul": "tf32" if backends.cuda.matmul.allow_tf32 else "ieee",
            "cudnn_conv": "tf32" if backends.cudnn.allow_tf32 else "ieee",
            "cudnn_rnn": "tf32" if backends.cudnn.allow_tf32 else "ieee",
        }
    return section


def _float32_matmul_precision(torch: Any) -> str | None:
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:  # set through the per-backend fp32_precision API: recorded there
        return None


def _gpu_section(probes: GpuProbes | None) -> dict[str, Any]:

    probes = probes or gpu_check.real_probes()
    driver = probes.driver()
    driver_devices = driver.devices if driver else ()
    torch_answer = None
    if not driver_devices or any(d.compute_capability is None for d in driver_devices):
        torch_answer = probes.torch()  # /proc has no compute capability; torch knows it
    torch_devices = torch_answer.devices if torch_answer else ()
    if driver and driver_devices:
        devices = _merge_devices(driver_devices, torch_devices)
        source: str | None = driver.source
    else:
        devices, source = torch_devices, ("torch" if torch_devices else None)
    cuda_driver = driver.cuda_driver_version if driver else None
    if cuda_driver is None and torch_answer is not None:
        cuda_driver = torch_answer.driver_cuda_version
    return {
        "available": bool(devices),
        "source": source,
        "driver_version": driver.driver_version if driver else None,
        "cuda_driver_version": cuda_driver,
        "devices": [device.to_dict() for device in devices],
    }


def _merge_devices(primary: tuple[Any, ...], secondary: tuple[Any, ...]) -> tuple[Any, ...]:
    """The driver's devices, completed with torch's compute capability and memory.

    Only when both list the same number of devices: CUDA_VISIBLE_DEVICES or CUDA_DEVICE_ORDER can
    otherwise make the same index name different GPUs.
    """
    from dataclasses import replace

    if len(primary) != len(secondary):
        return primary
    merged = []
    for device, other in zip(primary, secondary, strict=True):
        if device.compute_capability is None:
            device = replace(
                device,
                compute_capability=other.compute_capability,
                memory_total_mb=device.memory_total_mb or other.memory_total_mb,
            )
        merged.append(device)
    return tuple(merged)


def _locale_section() -> dict[str, Any]:
    try:
        language, encoding = locale.getlocale(locale.LC_CTYPE)
    except ValueError:  # a locale name Python cannot parse
        language, encoding = None, None
    return {
        "lc_ctype": language,
        "lc_ctype_encoding": encoding,
        "preferred_encoding": locale.getpreferredencoding(False),
        "filesystem_encoding": sys.getfilesystemencoding(),
        "utf8_mode": bool(sys.flags.utf8_mode),
    }


# -- loading -------------------------------------------------------------------------------------


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise GuardError(
            f"{where}: not UTF-8 text ({error.reason} at byte {error.start})",
            code=errors.BAD_ENV_DOCUMENT,
        ) from error
    except json.JSONDecodeError as error:
        raise GuardError(
            f"{where}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}",
            code=errors.BAD_ENV_DOCUMENT,
        ) from error


def _validated(env: Any, where: str) -> dict[str, Any]:
    if not isinstance(env, dict):
        raise GuardError(
            f"{where}: expected an environment document (a JSON object), found "
            f"{type(env).__name__}",
            code=errors.BAD_ENV_DOCUMENT,
        )
    version = env.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise GuardError(
            f"{where}: schema_version: expected an integer, found {version!r}; is "
            "this a file written by `keel env capture`?",
            code=errors.BAD_ENV_DOCUMENT,
        )
    if version > SCHEMA_VERSION:
        raise GuardError(
            f"{where}: schema_version {version} was written by a newer keel (this "
            f"one reads up to {SCHEMA_VERSION}); upgrade keel",
            code=errors.BAD_ENV_DOCUMENT,
        )
    distributions = env.get("distributions")
    if not isinstance(distributions, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in distributions.items()
    ):
        raise GuardError(
            f"{where}: distributions: expected an object mapping package names to version strings",
            code=errors.BAD_ENV_DOCUMENT,
        )
    for section in ("python", "platform", "cpu", "gpu", "locale", "env_vars"):
        if section in env and not isinstance(env[section], dict):
            raise GuardError(
                f"{where}: {section}: expected an object, found {type(env[section]).__name__}",
                code=errors.BAD_ENV_DOCUMENT,
            )
    return env

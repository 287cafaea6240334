"""Seeding, determinism, random-number-generator state capture and memory figures for training."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import resource
import sys
from collections.abc import Iterator
from typing import Any

import numpy
import torch

logger = logging.getLogger(__name__)

# AllenNLP's defaults, so a config that relies on them reproduces the same seeds.
DEFAULT_RANDOM_SEED = 13370
DEFAULT_NUMPY_SEED = 1337
DEFAULT_PYTORCH_SEED = 133


def prepare_environment(
    random_seed: int | None = DEFAULT_RANDOM_SEED,
    numpy_seed: int | None = DEFAULT_NUMPY_SEED,
    pytorch_seed: int | None = DEFAULT_PYTORCH_SEED,
    deterministic: bool = False,
) -> None:
    """Seed python, numpy and torch (a None seed leaves that generator alone).

    ``deterministic`` makes torch refuse non-deterministic kernels and pins cuDNN, so two runs of
    the same config on the same hardware and software produce bit-identical weights.
    """
    if random_seed is not None:
        random.seed(random_seed)
    if numpy_seed is not None:
        numpy.random.seed(numpy_seed)
    if pytorch_seed is not None:
        torch.manual_seed(pytorch_seed)  # seeds every CUDA device too
    set_deterministic(deterministic)


@contextlib.contextmanager
def deterministic_mode_restored() -> Iterator[None]:
    """Put torch's deterministic-algorithm and cuDNN switches back as they were on exit, so a
    training run inside a longer process (a test, a notebook, ``keel rebuild``) leaves the
    process as it found it."""
    algorithms = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def set_deterministic(enabled: bool) -> None:
    """Switch torch's deterministic algorithms and cuDNN's deterministic mode on or off."""
    if enabled and torch.cuda.is_available():
        # cuBLAS needs a fixed workspace to be deterministic; it reads this when CUDA starts.
        # Only where CUDA runs: elsewhere it changes nothing but the recorded environment.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def get_rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain values (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = numpy.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(numpy.asarray(keys, dtype=numpy.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``get_rng_state`` captured."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    saved = state["numpy"]
    numpy.random.set_state(
        (
            saved["kind"],
            saved["keys"].numpy().astype(numpy.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning(
                "the checkpoint holds RNG states for %d GPUs but %d are visible; "
                "GPU random numbers will differ from the interrupted run",
                len(cuda_states),
                torch.cuda.device_count(),
            )


def peak_cpu_memory_mb() -> float:
    """Peak resident memory of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_gpu_memory_mb() -> dict[int, float]:
    """Peak memory allocated by torch on each GPU in MiB (empty without CUDA)."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {}
    return {
        device: torch.cuda.max_memory_allocated(device) / (1024 * 1024)
        for device in range(torch.cuda.device_count())
    }

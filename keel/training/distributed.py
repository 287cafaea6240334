"""Training on several processes with PyTorch's own engine: ``torch.distributed`` (gloo on CPU,
nccl on CUDA), DistributedDataParallel, processes started by torchrun.

keel never starts processes of its own making: ``keel train`` under ``torchrun`` reads the rank
and world size torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...), and
``keel train --nproc-per-node N`` asks torch's elastic launcher (what torchrun runs) to start
them. What the processes share goes through collectives with a timeout, so one that dies or
stalls ends the job within ``timeout_s`` instead of hanging it.
"""

from __future__ import annotations

import datetime
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import ConfigIssue, ConfigurationError, TrainingError
from keel.metrics.metric import Metric

BACKENDS = ("gloo", "nccl")
DEFAULT_TIMEOUT_S = 600
#: what torchrun sets in every process it starts
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class DistributedConfig:
    """The config's ``distributed`` section (AllenNLP's name and keys).

    ``cuda_devices``: one process per listed GPU on each node (backend nccl); without it,
    ``num_processes`` CPU processes per node (backend gloo). ``num_nodes`` > 1 needs each node
    started by torchrun with the same rendezvous (see the README). ``timeout_s`` bounds every
    collective: a rank that died or stalls ends the job after at most this long.
    """

    def __init__(
        self,
        cuda_devices: list[int] | None = None,
        num_processes: Annotated[int, Positive] | None = None,
        num_nodes: Annotated[int, Positive] = 1,
        backend: str | None = None,
        timeout_s: Annotated[int, Positive] = DEFAULT_TIMEOUT_S,
    ) -> None:
        issues = []
        if backend is not None and backend not in BACKENDS:
            issues.append(
                ConfigIssue(
                    errors.BAD_VALUE,
                    "backend",
                    "is not a torch.distributed backend keel supports",
                    expected=" or ".join(BACKENDS),
                    found=backend,
                )
            )
        if cuda_devices is not None and num_processes is not None:
            issues.append(
                ConfigIssue(
                    errors.BAD_VALUE,
                    "num_processes",
                    "cannot be set together with cuda_devices (one process per device)",
                    found=num_processes,
                )
            )
        if cuda_devices is not None and backend == "gloo" and not cuda_devices:
            issues.append(ConfigIssue(errors.BAD_VALUE, "cuda_devices", "is empty", found=[]))
        if issues:
            raise ConfigurationError(issues)
        self.cuda_devices = list(cuda_devices) if cuda_devices is not None else None
        self.num_processes = num_processes
        self.num_nodes = num_nodes
        self.backend = backend
        self.timeout_s = timeout_s

    @property
    def processes_per_node(self) -> int:
        if self.cuda_devices is not None:
            return len(self.cuda_devices)
        return self.num_processes or 1


@dataclass
class DistributedContext:
    """This process's place in a torch.distributed job, and the collectives keel uses."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    timeout_s: int

    @property
    def is_primary(self) -> bool:
        """Rank 0: the one process that writes checkpoints, metrics and the archive."""
        return self.rank == 0

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over the ranks, in float64."""
        device = self.device if self.backend == "nccl" else torch.device("cpu")
        tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(value) for value in tensor.tolist()]

    def barrier(self) -> None:
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index or 0])
        else:
            dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun (or torch's elastic launcher)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def init_distributed(config: DistributedConfig | None = None) -> DistributedContext | None:
    """Join the torch.distributed job torchrun started this process in; None when it did not.

    The backend is the config's, else nccl when this node has CUDA devices for its processes,
    else gloo. Idempotent: a process group already set up is reused.
    """
    if not launched_by_torchrun():
        return None
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    timeout_s = config.timeout_s if config is not None else DEFAULT_TIMEOUT_S
    backend = config.backend if config is not None else None
    wants_cuda = config is not None and config.cuda_devices is not None
    if wants_cuda and not torch.cuda.is_available():
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_VALUE,
                    "distributed.cuda_devices",
                    "names GPUs, but this machine has no usable one (torch.cuda.is_available() "
                    "is False)",
                    found=config.cuda_devices if config else None,
                    suggestion="num_processes (CPU processes, backend gloo)",
                )
            ]
        )
    if backend is None:
        backend = "nccl" if wants_cuda else "gloo"
    device = torch.device("cpu")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.BAD_VALUE,
                        "distributed.backend",
                        "nccl needs CUDA, and this machine has no usable GPU",
                        found="nccl",
                        suggestion="gloo",
                    )
                ]
            )
        devices = config.cuda_devices if config and config.cuda_devices else None
        index = devices[local_rank % len(devices)] if devices else local_rank
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=device if backend == "nccl" else None,
        )
    return DistributedContext(rank, world_size, local_rank, backend, device, timeout_s)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def metrics_of(model: torch.nn.Module) -> list[Metric]:
    """The metrics a model accumulates, in a fixed order (its attributes, dicts and lists)."""
    found: list[Metric] = []
    for _, value in sorted(vars(model).items()):
        items = (
            [value[key] for key in sorted(value)]
            if isinstance(value, dict)
            else list(value)
            if isinstance(value, list | tuple)
            else [value]
        )
        found.extend(item for item in items if isinstance(item, Metric))
    return found


def reduce_metrics(model: torch.nn.Module, context: DistributedContext) -> None:
    """Replace every metric's statistics on every rank by their sum over the ranks, so the
    metric reports what one process would report on all of the data."""
    metrics = metrics_of(model)
    gathered = context.all_gather([metric.state() for metric in metrics])
    for index, metric in enumerate(metrics):
        metric.load_state(type(metric).add_states([states[index] for states in gathered]))


def metrics_without_statistics(model: torch.nn.Module) -> list[str]:
    """Metrics that declare no ``statistics``: they cannot be reduced across ranks."""
    return [type(metric).__name__ for metric in metrics_of(model) if not type(metric).statistics]


def launch_local(nproc_per_node: int, args: Sequence[str], *, run_id: str | None = None) -> None:
    """Run ``python -m keel.cli.main ARGS`` as ``nproc_per_node`` ranks on this machine with
    torch's elastic launcher (what ``torchrun --standalone`` runs), and wait for them.

    When a rank fails (an error, or killed), the launcher stops the others at once; this raises
    a TrainingError (``KT008``) naming the first rank that failed and how.
    """
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc_per_node,
        run_id=run_id or f"keel-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "keel.cli.main", *args)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        how = (
            f"killed by {failure.signal_name()}"
            if failure.exitcode < 0
            else f"exit status {failure.exitcode}"
        )
        raise TrainingError(
            f"rank {rank} (local rank {failure.local_rank}, pid {failure.pid}) failed first "
            f"({how}); the launcher stopped the other {nproc_per_node - 1} rank(s). Its own "
            "message, if it wrote one, is above; after fixing the cause, resume with --recover",
            code=errors.RANK_FAILED,
        ) from error

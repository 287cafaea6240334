"""The cluster gate: before the first step of a distributed run, every rank shows what it runs
on and what it read, and the job starts only when they are alike.

Each rank captures its environment, its tokenizer fingerprint and the sha256 and preprocessing
digest of every data file it read; the ranks exchange them (all-gather) and compare each rank
with rank 0 under ``keel env diff``'s rules. A breaking difference (keel, torch, CUDA runtime,
tokenizers, transformers used by the model; a data file's bytes; its preprocessing; the
tokenizer) stops every rank with the same report, naming rank, host and difference; a risky one
is logged and recorded in the archive's manifest with every node's environment.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from keel.archive.manifest import Manifest
from keel.common import errors
from keel.common.errors import TrainingError
from keel.common.file_utils import canonical_json
from keel.guard.env_diff import BREAKING, RISKY, diff_environments
from keel.guard.environment import capture_environment
from keel.guard.results import FAIL, NOT_CHECKED, PASS, CheckResult
from keel.training.distributed import (
    DistributedConfig,
    DistributedContext,
    init_distributed,
    launched_by_torchrun,
    shutdown_distributed,
)

logger = logging.getLogger(__name__)


@dataclass
class ClusterReport:
    """How the ranks of a job differ from rank 0."""

    world_size: int
    backend: str
    breaking: list[str] = field(default_factory=list)
    risky: list[str] = field(default_factory=list)
    #: distinct environments, each with the ranks and hosts that run it
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def to_manifest(self) -> dict[str, Any]:
        return {
            "world_size": self.world_size,
            "backend": self.backend,
            "nodes": self.nodes,
            "risky_differences": self.risky,
        }


def rank_facts(rank: int, manifest: Manifest) -> dict[str, Any]:
    """What this rank runs on and read: compared across ranks before training starts."""
    tokenizer = manifest.tokenizer_fingerprint or {}
    return {
        "rank": rank,
        "host": socket.gethostname(),
        "environment": capture_environment(),
        "tokenizer": tokenizer.get("digest"),
        "data": {role: record.sha256 for role, record in sorted(manifest.data_files.items())},
        "preprocessing": {
            role: fingerprint.get("digest")
            for role, fingerprint in sorted(manifest.preprocessing_fingerprints.items())
        },
    }


def compare_ranks(
    facts: Sequence[Mapping[str, Any]],
    required_distributions: list[str],
    *,
    backend: str = "gloo",
) -> ClusterReport:
    """Every rank against rank 0 (``facts`` in rank order, from ``rank_facts``)."""
    report = ClusterReport(len(facts), backend)
    reference = facts[0]
    for other in facts[1:]:
        where = f"rank {other['rank']} on {other['host']}"
        diff = diff_environments(
            reference["environment"],
            other["environment"],
            required_distributions=required_distributions,
            a_label="rank 0",
            b_label=f"rank {other['rank']}",
        )
        for difference in diff.by_severity(BREAKING):
            report.breaking.append(
                f"{where}: {difference.key} {_show(difference.old)} -> "
                f"{_show(difference.new)} (rank 0 has the first): {difference.reason}"
            )
        for difference in diff.by_severity(RISKY):
            report.risky.append(
                f"{where}: {difference.key} {_show(difference.old)} -> "
                f"{_show(difference.new)}: {difference.reason}"
            )
        if other["tokenizer"] != reference["tokenizer"]:
            report.breaking.append(
                f"{where}: the tokenizer fingerprint {_short(other['tokenizer'])} differs from "
                f"rank 0's {_short(reference['tokenizer'])}: the same text tokenizes differently"
            )
        for section, what in (("data", "sha256"), ("preprocessing", "preprocessing digest")):
            mine, theirs = reference[section], other[section]
            for role in sorted(set(mine) | set(theirs)):
                if mine.get(role) != theirs.get(role):
                    report.breaking.append(
                        f"{where}: the {role} data's {what} {_short(theirs.get(role))} differs "
                        f"from rank 0's {_short(mine.get(role))}"
                    )
    report.nodes = _distinct_environments(facts)
    return report


def cluster_gate(context: DistributedContext, manifest: Manifest) -> ClusterReport:
    """Exchange every rank's facts and stop every rank (the same TrainingError, ``KT007``) on a
    breaking difference; log the risky ones. Called by every rank, before the first step."""
    facts = context.all_gather(rank_facts(context.rank, manifest))
    report = compare_ranks(facts, manifest.required_distributions(), backend=context.backend)
    if report.breaking:
        raise TrainingError(
            f"the {context.world_size} ranks of this job are not alike; training did not start "
            f"({len(report.breaking)} breaking difference(s)):\n  " + "\n  ".join(report.breaking),
            code=errors.CLUSTER_MISMATCH,
        )
    for risk in report.risky:
        logger.warning("cluster: %s", risk)
    return report


def _distinct_environments(facts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for item in facts:
        environment = {
            key: value for key, value in item["environment"].items() if key != "captured_at"
        }
        key = canonical_json(environment)
        group = groups.setdefault(
            key, {"ranks": [], "hosts": [], "environment": item["environment"]}
        )
        group["ranks"].append(item["rank"])
        if item["host"] not in group["hosts"]:
            group["hosts"].append(item["host"])
    return list(groups.values())


def _short(value: Any) -> str:
    return str(value)[:16] if value is not None else "none"


def _show(value: Any) -> str:
    return "absent" if value is None else str(value)


def check_distributed() -> CheckResult:
    """One all-reduce across the ranks of the torchrun job this process belongs to: the
    backend, the world size and whether the sum came back exact. ``not_checked`` outside a
    torchrun job (a check that could not check is not a pass)."""
    if not launched_by_torchrun():
        return CheckResult(
            "distributed",
            NOT_CHECKED,
            "not started by torchrun, so there are no ranks to reach: run it as "
            "`torchrun --nproc-per-node N -m keel.cli.main env check --distributed` (on every "
            "node of a multi-node job)",
        )
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    cuda = list(range(torch.cuda.device_count())) if backend == "nccl" else None
    context = init_distributed(DistributedConfig(backend=backend, cuda_devices=cuda))
    assert context is not None
    try:
        device = context.device if backend == "nccl" else torch.device("cpu")
        value = torch.tensor([float(context.rank + 1)], dtype=torch.float64, device=device)
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        expected = context.world_size * (context.world_size + 1) / 2
        result = float(value.item())
        hosts = context.all_gather(socket.gethostname())
    finally:
        shutdown_distributed()
    distinct_hosts = sorted(set(hosts))
    details = {
        "backend": backend,
        "world_size": context.world_size,
        "rank": context.rank,
        "result": result,
        "expected": expected,
        "exact": result == expected,
        "hosts": distinct_hosts,
    }
    where = f"{context.world_size} ranks on {len(distinct_hosts)} host(s), backend {backend}"
    if result != expected:
        return CheckResult(
            "distributed",
            FAIL,
            f"all-reduce over {where} returned {result}, expected {expected}",
            details,
        )
    return CheckResult(
        "distributed", PASS, f"all-reduce over {where} is exact ({result:g})", details
    )

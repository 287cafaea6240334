"""Distributed training, for real: torch.distributed with gloo on loopback, 2 processes.

Fast tests check the parts in one process (sharding, metric sums, the cluster comparison);
the slow ones start real ranks with ``keel train --nproc-per-node 2`` (torch's elastic launcher,
as torchrun) and compare with a single-process run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from keel.archive.archive import opened_archive, read_manifest
from keel.common.weights import read_weights
from keel.data.data_loaders.multiprocess_data_loader import MultiProcessDataLoader
from keel.data.dataset_readers.tsv import TsvReader
from keel.data.samplers.bucket_batch_sampler import BucketBatchSampler
from keel.data.vocabulary import Vocabulary
from keel.guard.cluster import compare_ranks
from keel.guard.environment import capture_environment
from keel.metrics.categorical_accuracy import CategoricalAccuracy
from keel.metrics.fbeta_measure import FBetaMeasure
from keel.metrics.span_based_f1 import SpanBasedF1Measure
from tests.conftest import REPO, SST2_SAMPLE

CONFIG = """
local batch_size = std.parseInt(std.extVar('batch_size'));
local epochs = std.parseInt(std.extVar('epochs'));
{
  dataset_reader: { type: 'tsv', max_instances: 150 },
  validation_dataset_reader: { type: 'tsv', max_instances: 61 },
  train_data_path: 'DATA/train.tsv',
  validation_data_path: 'DATA/dev.tsv',
  model: {
    type: 'basic_classifier',
    text_field_embedder: { token_embedders: { tokens: { type: 'embedding', embedding_dim: 8 } } },
    seq2vec_encoder: { type: 'lstm', input_size: 8, hidden_size: 8, bidirectional: true },
  },
  data_loader: { batch_sampler: { type: 'bucket', batch_size: batch_size } },
  trainer: {
    optimizer: { type: 'adam', lr: 0.01 },
    num_epochs: epochs,
    validation_metric: '+accuracy',
    grad_norm: 1.0,
  },
  golden_sample_size: 16,
}
""".replace("DATA", str(SST2_SAMPLE))

# Loaded into every rank with --include-package: plants faults on the rank named by the
# environment, as a broken node, a different install or a killed process would.
PROBE = """
import os
import signal

from keel.guard import cluster
from keel.training.trainer import GradientDescentTrainer

_rank = os.environ.get("RANK")
if _rank is not None and _rank == os.environ.get("KEEL_PROBE_RANK"):
    _kill_epoch = os.environ.get("KEEL_PROBE_KILL_EPOCH")
    if _kill_epoch is not None:
        _train_epoch = GradientDescentTrainer._train_epoch

        def _dies(self, epoch):
            if epoch == int(_kill_epoch):
                os.kill(os.getpid(), signal.SIGKILL)
            return _train_epoch(self, epoch)

        GradientDescentTrainer._train_epoch = _dies
    _plant = os.environ.get("KEEL_PROBE_PLANT")
    if _plant is not None:
        _capture = cluster.capture_environment

        def _planted():
            environment = _capture()
            name, version = _plant.split("=")
            environment["distributions"][name] = version
            return environment

        cluster.capture_environment = _planted
"""


# -- one process --------------------------------------------------------------------------------


def _instances(count: int):
    reader = TsvReader(max_instances=count)
    instances = list(reader.read(str(SST2_SAMPLE / "train.tsv")))
    vocab = Vocabulary.from_instances(instances)
    return instances, vocab


@pytest.mark.parametrize("sampler", [None, "bucket"])
@pytest.mark.parametrize("count", [37, 40, 3])
def test_sharded_loaders_see_every_instance_exactly_once_per_epoch(sampler, count) -> None:
    instances, vocab = _instances(count)
    world = 2

    def loader(batch_size: int) -> MultiProcessDataLoader:
        if sampler:
            made = MultiProcessDataLoader(
                instances, batch_sampler=BucketBatchSampler(batch_size), seed=7
            )
        else:
            made = MultiProcessDataLoader(instances, batch_size=batch_size, shuffle=True, seed=7)
        made.index_with(vocab)
        return made

    single = loader(8)  # the same global batches in one process
    ranks = [loader(4) for _ in range(world)]
    for rank, rank_loader in enumerate(ranks):
        rank_loader.shard(rank, world)
    for epoch in range(3):
        global_batches = single.batch_indices(epoch)
        assert [r.batch_indices(epoch) for r in ranks] == [global_batches] * world
        seen: Counter[int] = Counter()
        lengths = []
        for rank_loader in ranks:
            rank_loader.set_epoch(epoch)
            yielded = 0
            shares = list(rank_loader._shares(global_batches))
            for (indices, mine, total), batch in zip(shares, rank_loader, strict=True):
                assert rank_loader.batch_share == (mine, total)
                assert len(batch["label"]) == max(mine, 1)
                if mine:
                    seen.update(indices)
                yielded += 1
            lengths.append(yielded)
        assert seen == Counter(range(count)), f"epoch {epoch}: an instance missing or repeated"
        assert lengths == [len(single)] * world  # every rank takes the same number of steps


def test_shard_order_depends_on_seed_epoch_and_world_size_only() -> None:
    instances, vocab = _instances(30)

    def order(world: int, epoch: int, seed: int = 3) -> list[list[int]]:
        made = MultiProcessDataLoader(instances, batch_size=4, shuffle=True, seed=seed)
        made.index_with(vocab)
        made.shard(0, world)
        return made.batch_indices(epoch)

    assert order(2, 1) == order(2, 1)
    assert order(2, 1) != order(2, 2)
    assert order(2, 1) != order(2, 1, seed=4)
    assert [len(batch) for batch in order(2, 0)][:3] == [8, 8, 8]
    assert [len(batch) for batch in order(3, 0)] == [12, 12, 6]


def test_metric_statistics_add_up_to_the_single_process_value() -> None:
    torch.manual_seed(0)
    scores = torch.randn(20, 5)
    gold = torch.randint(0, 5, (20,))
    whole, halves = CategoricalAccuracy(), [CategoricalAccuracy(), CategoricalAccuracy()]
    whole(scores, gold)
    halves[0](scores[:13], gold[:13])
    halves[1](scores[13:], gold[13:])
    merged = CategoricalAccuracy()
    merged.load_state(CategoricalAccuracy.add_states([half.state() for half in halves]))
    assert merged.get_metric() == whole.get_metric()

    whole_f, parts = FBetaMeasure(), [FBetaMeasure(), FBetaMeasure()]
    whole_f(scores, gold)
    parts[0](scores[:7], gold[:7])  # the other process saw nothing at all
    merged_f = FBetaMeasure()
    merged_f.load_state(
        FBetaMeasure.add_states([parts[1].state(), parts[0].state()])
    )  # an empty state first
    part_rest = FBetaMeasure()
    part_rest(scores[7:], gold[7:])
    merged_f.load_state(FBetaMeasure.add_states([parts[0].state(), part_rest.state()]))
    assert merged_f.get_metric() == pytest.approx(whole_f.get_metric())


def test_span_f1_statistics_add_up() -> None:
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["O", "B-PER", "I-PER", "B-LOC"], "labels")
    tags = torch.tensor([[0, 1, 2, 0, 3], [1, 0, 3, 3, 0]])
    predicted = torch.tensor([[0, 1, 2, 0, 0], [1, 0, 3, 0, 0]])
    whole = SpanBasedF1Measure(vocab)
    whole(predicted, tags)
    first, second = SpanBasedF1Measure(vocab), SpanBasedF1Measure(vocab)
    first(predicted[:1], tags[:1])
    second(predicted[1:], tags[1:])
    merged = SpanBasedF1Measure(vocab)
    merged.load_state(SpanBasedF1Measure.add_states([first.state(), second.state()]))
    assert merged.get_metric() == whole.get_metric()


def _facts(rank: int, **changes) -> dict:
    facts = {
        "rank": rank,
        "host": f"node{rank}",
        "environment": capture_environment(),
        "tokenizer": "t" * 64,
        "data": {"train": "a" * 64, "validation": "b" * 64},
        "preprocessing": {"train": "c" * 64, "validation": "d" * 64},
    }
    for key, value in changes.items():
        if key == "distributions":
            facts["environment"]["distributions"].update(value)
        else:
            facts[key] = value
    return facts


def test_cluster_comparison_names_rank_host_and_every_breaking_difference() -> None:
    report = compare_ranks(
        [
            _facts(0),
            _facts(1),
            _facts(
                2,
                tokenizer="u" * 64,
                data={"train": "a" * 64, "validation": "e" * 64},
                preprocessing={"train": "f" * 64, "validation": "d" * 64},
                distributions={"keel": "9.0.0"},
            ),
        ],
        ["keel"],
    )
    text = "\n".join(report.breaking)
    assert len(report.breaking) == 4, text
    assert all(line.startswith("rank 2 on node2: ") for line in report.breaking)
    assert "distributions.keel 0.1.0 -> 9.0.0" in text
    assert "tokenizer fingerprint" in text
    assert "the validation data's sha256 eeeeeeeeeeeeeeee differs" in text
    assert "the train data's preprocessing digest" in text
    assert [node["ranks"] for node in report.nodes] == [[0, 1], [2]]


def test_cluster_comparison_records_risky_differences_without_stopping() -> None:
    torch_version = capture_environment()["distributions"]["torch"]
    major, minor = torch_version.split(".")[:2]
    newer = f"{major}.{int(minor) + 1}.0"
    report = compare_ranks([_facts(0), _facts(1, distributions={"torch": newer})], ["keel"])
    assert report.breaking == []
    assert len(report.risky) == 1 and f"-> {newer}" in report.risky[0]
    assert report.to_manifest()["risky_differences"] == report.risky


# -- real ranks ---------------------------------------------------------------------------------


def keel(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "config.jsonnet"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("probe")
    (root / "keel_ddp_probe").mkdir()
    (root / "keel_ddp_probe" / "__init__.py").write_text(PROBE, encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join([str(root), str(REPO)])}


def train(config_path, directory, batch_size, *extra, epochs=2, env=None):
    return keel(
        "train",
        str(config_path),
        "-s",
        str(directory),
        "--ext-var",
        f"batch_size={batch_size}",
        "--ext-var",
        f"epochs={epochs}",
        "--no-cache",
        "--quiet",
        *extra,
        env=env,
    )


def weights(directory: Path) -> dict[str, torch.Tensor]:
    with opened_archive(directory / "model.tar.gz") as (root, _):
        return read_weights(root / "weights.safetensors")


@pytest.mark.slow
def test_two_ranks_train_like_one_process_with_the_same_effective_batch(
    config_path, tmp_path
) -> None:
    single = train(config_path, tmp_path / "single", 16)
    assert single.returncode == 0, single.stderr
    ddp = train(config_path, tmp_path / "ddp", 8, "--nproc-per-node", "2")
    assert ddp.returncode == 0, ddp.stderr
    one, two = weights(tmp_path / "single"), weights(tmp_path / "ddp")
    assert one.keys() == two.keys()
    # Not bit-identical: DDP adds the two ranks' partial gradients (each a sum over 8
    # instances, weighted by its share), one process sums 16 at once; float addition in another
    # order differs in the last bits (about 1e-8 here), which Adam carries forward.
    for key in one:
        assert torch.allclose(one[key], two[key], rtol=0, atol=1e-5), key
    metrics_one = json.loads((tmp_path / "single" / "metrics.json").read_text())
    metrics_two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    # Validation ran on both ranks, metrics summed over them: the same counts as one process.
    assert metrics_two["validation_accuracy"] == metrics_one["validation_accuracy"]
    assert metrics_two["training_accuracy"] == metrics_one["training_accuracy"]
    assert metrics_two["validation_loss"] == pytest.approx(metrics_one["validation_loss"], abs=1e-6)
    assert metrics_two["training_loss"] == pytest.approx(metrics_one["training_loss"], abs=1e-6)
    manifest = read_manifest(tmp_path / "ddp" / "model.tar.gz")
    assert manifest.distributed is not None
    assert manifest.distributed["world_size"] == 2 and manifest.distributed["backend"] == "gloo"
    assert [node["ranks"] for node in manifest.distributed["nodes"]] == [[0, 1]]
    assert read_manifest(tmp_path / "single" / "model.tar.gz").distributed is None
    # Rank 0 alone wrote: one set of files, no stray rank-1 output.
    names = sorted(path.name for path in (tmp_path / "ddp").iterdir())
    assert names == sorted(path.name for path in (tmp_path / "single").iterdir())
    assert keel("verify", str(tmp_path / "ddp" / "model.tar.gz")).returncode == 0


@pytest.mark.slow
def test_a_planted_breaking_difference_on_rank_1_stops_every_rank(
    config_path, probe, tmp_path
) -> None:
    started = time.monotonic()
    result = train(
        config_path,
        tmp_path / "run",
        8,
        "--nproc-per-node",
        "2",
        "--include-package",
        "keel_ddp_probe",
        env={**probe, "KEEL_PROBE_RANK": "1", "KEEL_PROBE_PLANT": "keel=9.0.0"},
    )
    assert result.returncode == 2
    assert "the 2 ranks of this job are not alike; training did not start" in result.stderr
    assert "rank 1 on " in result.stderr and "distributions.keel 0.1.0 -> 9.0.0" in result.stderr
    assert "[KT007]" in result.stderr and "[KT008]" in result.stderr
    assert time.monotonic() - started < 120
    assert not (tmp_path / "run").exists()  # nothing half-made left behind


@pytest.mark.slow
def test_a_risky_difference_is_logged_and_recorded(config_path, probe, tmp_path) -> None:
    torch_version = capture_environment()["distributions"]["torch"]
    major, minor = torch_version.split(".")[:2]
    result = train(
        config_path,
        tmp_path / "run",
        8,
        "--nproc-per-node",
        "2",
        "--include-package",
        "keel_ddp_probe",
        epochs=1,
        env={**probe, "KEEL_PROBE_RANK": "1", "KEEL_PROBE_PLANT": f"torch={major}.{minor}.99"},
    )
    assert result.returncode == 0, result.stderr
    distributed = read_manifest(tmp_path / "run" / "model.tar.gz").distributed
    assert distributed is not None
    assert any("distributions.torch" in line for line in distributed["risky_differences"])
    assert len(distributed["nodes"]) == 2  # two distinct environments, each with its rank
    assert "cluster: rank 1 on" in (tmp_path / "run" / "out.log").read_text()


@pytest.mark.slow
def test_killing_rank_1_ends_the_job_and_recover_resumes_bit_identical(
    config_path, probe, tmp_path
) -> None:
    reference = train(config_path, tmp_path / "reference", 8, "--nproc-per-node", "2", epochs=3)
    assert reference.returncode == 0, reference.stderr

    started = time.monotonic()
    killed = train(
        config_path,
        tmp_path / "run",
        8,
        "--nproc-per-node",
        "2",
        "--include-package",
        "keel_ddp_probe",
        epochs=3,
        env={**probe, "KEEL_PROBE_RANK": "1", "KEEL_PROBE_KILL_EPOCH": "2"},
    )
    elapsed = time.monotonic() - started
    assert killed.returncode == 2
    assert "rank 1 (local rank 1" in killed.stderr and "killed by SIGKILL" in killed.stderr
    assert elapsed < 120, f"the job took {elapsed:.0f}s to end after rank 1 died"
    assert not (tmp_path / "run" / "model.tar.gz").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())  # epochs 0, 1

    # The same world size is required to resume.
    single = train(config_path, tmp_path / "run", 8, "--recover", epochs=3)
    assert single.returncode == 2 and "run of 2 process(es)" in single.stderr

    resumed = train(
        config_path, tmp_path / "run", 8, "--nproc-per-node", "2", "--recover", epochs=3, env=probe
    )
    assert resumed.returncode == 0, resumed.stderr
    expected, got = weights(tmp_path / "reference"), weights(tmp_path / "run")
    assert all(torch.equal(expected[key], got[key]) for key in expected)


@pytest.mark.slow
def test_env_check_distributed_all_reduce_across_two_ranks() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "keel.cli.main",
            "env",
            "check",
            "--distributed",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # rank 0 alone prints
    check = next(item for item in report["checks"] if item["name"] == "distributed")
    assert check["status"] == "pass"
    assert check["details"]["world_size"] == 2 and check["details"]["backend"] == "gloo"
    assert check["details"]["exact"] is True and check["details"]["result"] == 3.0


def test_env_check_distributed_outside_torchrun_is_not_checked() -> None:
    result = keel("env", "check", "--distributed", "--json")
    assert result.returncode == 1
    check = next(
        item for item in json.loads(result.stdout)["checks"] if item["name"] == "distributed"
    )
    assert check["status"] == "not_checked" and "torchrun" in check["reason"]
    allowed = keel("env", "check", "--distributed", "--allow-unchecked", "distributed")
    assert allowed.returncode == 0


def test_distributed_section_errors_name_the_key() -> None:
    from keel.common.errors import ConfigurationError
    from keel.common.from_params import validate
    from keel.training.distributed import DistributedConfig

    with pytest.raises(ConfigurationError, match="backend"):
        DistributedConfig(backend="mpi")
    with pytest.raises(ConfigurationError, match="num_processes"):
        DistributedConfig(cuda_devices=[0], num_processes=2)
    issues = validate(DistributedConfig, {"num_processes": 0, "timeout_s": -1}).issues
    assert {issue.path for issue in issues} == {"num_processes", "timeout_s"}
    assert DistributedConfig(cuda_devices=[0, 1]).processes_per_node == 2
    assert DistributedConfig(num_processes=3).processes_per_node == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without GPU")
def test_nccl_or_cuda_devices_without_a_gpu_are_refused_before_any_collective(monkeypatch) -> None:
    from keel.common.errors import ConfigurationError
    from keel.training.distributed import DistributedConfig, init_distributed

    for name, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="distributed.cuda_devices"):
        init_distributed(DistributedConfig(cuda_devices=[0]))
    with pytest.raises(ConfigurationError, match="nccl needs CUDA"):
        init_distributed(DistributedConfig(backend="nccl"))
    assert not torch.distributed.is_initialized()


def test_a_loader_that_cannot_shard_is_refused_by_name() -> None:
    from keel.data.data_loaders.data_loader import DataLoader

    class Fixed(DataLoader):
        pass

    with pytest.raises(NotImplementedError, match="Fixed cannot shard"):
        Fixed().shard(0, 2)

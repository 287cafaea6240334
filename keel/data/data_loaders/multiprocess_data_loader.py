"""``multiprocess`` (alias ``simple``): in-process batching with seeded, resumable shuffling."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any

import numpy as np
import torch

from keel.common import errors
from keel.common.constraints import Positive, Supplied
from keel.common.errors import ConfigIssue, ConfigurationError, KeelError
from keel.data.batch import PackedInstances, collate
from keel.data.data_loaders.data_loader import DataLoader
from keel.data.instance import Instance, index_instances
from keel.data.samplers.batch_sampler import BatchSampler
from keel.data.vocabulary import Vocabulary


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator whose stream depends only on ``(seed, epoch)``, well mixed across both."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, epoch]).generate_state(2)
    generator = torch.Generator()
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


@DataLoader.register("simple")
@DataLoader.register("multiprocess")
class MultiProcessDataLoader(DataLoader):
    """Batches ``instances`` (supplied at run time) in this process.

    Keeps AllenNLP's name so configs carry over, but never forks: collation is bulk numpy work
    and not worth a worker pool. Each iteration is one epoch; its order depends only on
    ``(seed, epoch)``. ``set_epoch(e)`` picks the epoch; otherwise each iteration advances it.
    """

    def __init__(
        self,
        instances: Annotated[Iterable[Instance], Supplied],
        batch_size: Annotated[int, Positive] = 1,
        shuffle: bool = False,
        batch_sampler: BatchSampler | None = None,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        issues = []
        if batch_size < 1:
            issues.append(
                ConfigIssue(errors.BAD_VALUE, "batch_size", "must be at least 1", found=batch_size)
            )
        if batch_sampler is not None:
            for name, value, default in (
                ("batch_size", batch_size, 1),
                ("shuffle", shuffle, False),
                ("drop_last", drop_last, False),
            ):
                if value != default:
                    issues.append(
                        ConfigIssue(
                            errors.BAD_VALUE,
                            name,
                            "cannot be set together with batch_sampler; set it on the sampler",
                            found=value,
                        )
                    )
        if issues:
            raise ConfigurationError(issues)
        self.instances: Sequence[Instance] = (
            instances if isinstance(instances, Sequence) else list(instances)
        )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.batch_sampler = batch_sampler
        self.drop_last = drop_last
        self.seed = seed
        self.vocab: Vocabulary | None = None
        self._epoch = 0
        self._prepared = False
        self._packed: PackedInstances | None = None
        self._rank, self._world_size = 0, 1
        self.batch_share = (0, 0)

    def index_with(self, vocab: Vocabulary, packed: PackedInstances | None = None) -> None:
        if packed is not None and len(packed) != len(self.instances):
            raise KeelError(
                f"index_with: {len(packed)} packed instances for a loader of {len(self.instances)}"
            )
        self.vocab = vocab
        self._packed = packed
        self._prepared = packed is not None

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def shard(self, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise KeelError(f"shard: rank {rank} is not in 0..{world_size - 1}")
        sampler = self.batch_sampler
        if (
            world_size > 1
            and sampler is not None
            and not isinstance(getattr(sampler, "batch_size", None), int)
        ):
            raise KeelError(
                f"{type(self.batch_sampler).__name__} has no batch_size, so its batches "
                "cannot be scaled to the number of processes"
            )
        self._rank, self._world_size = rank, world_size

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will produce."""
        return self._epoch

    def _prepare(self) -> None:
        """Index and pack the instances, once per vocabulary: packing makes batches cheap."""
        if self._prepared:
            return
        if self.vocab is None:
            raise KeelError("call index_with(vocab) before iterating over the data loader")
        self._packed = PackedInstances.build(self.instances, self.vocab)
        if self._packed is None:
            # Instances of mixed shapes: index them and collate batch by batch.
            index_instances(self.instances, self.vocab)
        self._prepared = True

    def batch_indices(self, epoch: int | None = None) -> list[list[int]]:
        """The batches of ``epoch`` (default: the next one) as index lists; when sharded, the
        global batches (``batch_size * world_size`` instances each) every process shares."""
        generator = epoch_generator(self.seed, self._epoch if epoch is None else epoch)
        world = self._world_size
        if self.batch_sampler is not None:
            sampler = self.batch_sampler
            if world > 1:
                sampler = copy.copy(sampler)
                sampler.batch_size *= world  # type: ignore[attr-defined]
            return sampler.get_batch_indices(self.instances, generator)
        count = len(self.instances)
        size = self.batch_size * world
        if self.shuffle:
            order = torch.randperm(count, generator=generator).tolist()
        else:
            order = list(range(count))
        batches = [order[i : i + size] for i in range(0, count, size)]
        if self.drop_last and batches and len(batches[-1]) < size:
            batches.pop()
        return batches

    def _shares(self, batches: list[list[int]]) -> Iterator[tuple[list[int], int, int]]:
        """Per global batch: this process's indices, its count, the batch's count."""
        world, rank = self._world_size, self._rank
        for batch in batches:
            if world == 1:
                yield batch, len(batch), len(batch)
                continue
            # Near-equal contiguous slices, the first ones one longer when it does not divide.
            base, extra = divmod(len(batch), world)
            start = rank * base + min(rank, extra)
            piece = batch[start : start + base + (1 if rank < extra else 0)]
            yield (piece or batch[:1]), len(piece), len(batch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._prepare()
        batches = self.batch_indices()
        self._epoch += 1
        packed = self._packed
        instances = self.instances
        for indices, mine, total in self._shares(batches):
            self.batch_share = (mine, total)
            if packed is not None:
                yield packed.take(indices)
            else:
                yield collate([instances[i] for i in indices])

    def iter_instances(self) -> Iterator[Instance]:
        return iter(self.instances)

    def __len__(self) -> int:
        world = self._world_size
        if self.batch_sampler is not None:
            if world == 1:
                return self.batch_sampler.get_num_batches(self.instances)
            sampler = copy.copy(self.batch_sampler)
            sampler.batch_size *= world  # type: ignore[attr-defined]
            return sampler.get_num_batches(self.instances)
        size = self.batch_size * world
        if self.drop_last:
            return len(self.instances) // size
        return math.ceil(len(self.instances) / size)

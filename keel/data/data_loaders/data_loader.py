"""The ``DataLoader`` base class."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keel.common.registry import Registrable
from keel.data.batch import PackedInstances
from keel.data.vocabulary import Vocabulary


class DataLoader(Registrable):
    """Yields batches (dicts of tensors) over instances, epoch after epoch."""

    default_implementation = "multiprocess"

    def index_with(self, vocab: Vocabulary, packed: PackedInstances | None = None) -> None:
        """Use ``vocab`` to index the instances before batching.

        ``packed``: the loader's instances already packed with ``vocab`` (training packs them
        once to fingerprint them); a loader may batch from it instead of packing again.
        """
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration produce epoch ``epoch``'s batch order."""
        raise NotImplementedError

    def shard(self, rank: int, world_size: int) -> None:
        """Yield only process ``rank``'s share of each batch from now on (distributed training).

        Every process computes the same global batches (``batch_size * world_size`` instances,
        in an order that depends only on the seed, the epoch and ``world_size``) and takes the
        ``rank``-th of ``world_size`` near-equal slices of each, so an epoch sees every instance
        exactly once across processes and every process yields the same number of batches.
        ``batch_share`` then tells, for the batch just yielded, ``(instances of this process,
        instances of the global batch)``; a process whose slice is empty gets one instance of
        the batch with a share of 0 (it must still take part in the gradient exchange).
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot shard its batches across processes"
        )

    batch_share: tuple[int, int] = (0, 0)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

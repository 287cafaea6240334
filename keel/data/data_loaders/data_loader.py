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

    def __iter__(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

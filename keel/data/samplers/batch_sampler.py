"""The ``BatchSampler`` base class: which instances go together in each batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from keel.common.registry import Registrable
from keel.data.instance import Instance


class BatchSampler(Registrable):
    """Groups instance indices into batches; randomness comes only from the given generator."""

    def get_batch_indices(
        self, instances: Sequence[Instance], generator: torch.Generator
    ) -> list[list[int]]:
        """The batches of one epoch, as lists of indices into ``instances``."""
        raise NotImplementedError

    def get_num_batches(self, instances: Sequence[Instance]) -> int:
        raise NotImplementedError

    def get_batch_size(self) -> int | None:
        return None

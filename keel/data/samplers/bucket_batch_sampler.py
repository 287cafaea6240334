"""``bucket``: batches of similar length, to waste little on padding."""

from __future__ import annotations

import math
from collections.abc import Sequence, Sized
from typing import Annotated, cast

import numpy as np
import torch

from keel.common import errors
from keel.common.constraints import NonNegative, Positive
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.samplers.batch_sampler import BatchSampler


@BatchSampler.register("bucket")
class BucketBatchSampler(BatchSampler):
    """Sort by length (with multiplicative ``padding_noise``), cut into batches, shuffle batches.

    ``sorting_keys`` names the fields whose lengths sort the instances (in order, as tie
    breakers); by default, every ``TextField`` of the first instance.
    """

    def __init__(
        self,
        batch_size: Annotated[int, Positive],
        sorting_keys: list[str] | None = None,
        padding_noise: Annotated[float, NonNegative] = 0.1,
        drop_last: bool = False,
        shuffle: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.BAD_VALUE, "batch_size", "must be at least 1", found=batch_size
                    )
                ]
            )
        if not 0 <= padding_noise < 1:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.BAD_VALUE, "padding_noise", "must be in [0, 1)", found=padding_noise
                    )
                ]
            )
        self.batch_size = batch_size
        self.sorting_keys = sorting_keys
        self.padding_noise = padding_noise
        self.drop_last = drop_last
        self.shuffle = shuffle

    def _keys(self, instances: Sequence[Instance]) -> list[str]:
        if self.sorting_keys:
            return self.sorting_keys
        keys = [name for name, field in instances[0].fields.items() if isinstance(field, TextField)]
        if not keys:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.MISSING_KEY,
                        "sorting_keys",
                        "instances have no TextField to sort by; name the fields to sort by",
                    )
                ]
            )
        return keys

    def _lengths(self, instances: Sequence[Instance]) -> np.ndarray:
        keys = self._keys(instances)
        lengths = np.empty((len(instances), len(keys)), dtype=np.float64)
        for column, key in enumerate(keys):
            try:
                lengths[:, column] = [
                    len(cast(Sized, instance.fields[key])) for instance in instances
                ]
            except KeyError:
                raise ConfigurationError(
                    [ConfigIssue(errors.BAD_VALUE, "sorting_keys", f"no field {key!r}", found=key)]
                ) from None
            except TypeError:
                raise ConfigurationError(
                    [
                        ConfigIssue(
                            errors.BAD_VALUE,
                            "sorting_keys",
                            f"field {key!r} has no length to sort by",
                            found=key,
                        )
                    ]
                ) from None
        return lengths

    def get_batch_indices(
        self, instances: Sequence[Instance], generator: torch.Generator
    ) -> list[list[int]]:
        if not instances:
            return []
        lengths = self._lengths(instances)
        if self.padding_noise:
            noise = torch.rand(lengths.shape, generator=generator, dtype=torch.float64).numpy()
            lengths = lengths * (1.0 + (2.0 * noise - 1.0) * self.padding_noise)
        # lexsort sorts by its last key first; the index as the final tie breaker keeps it stable.
        order = np.lexsort([np.arange(len(instances)), *lengths.T[::-1]])
        batches = [
            order[start : start + self.batch_size].tolist()
            for start in range(0, len(order), self.batch_size)
        ]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            permutation = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[i] for i in permutation]
        return batches

    def get_num_batches(self, instances: Sequence[Instance]) -> int:
        if self.drop_last:
            return len(instances) // self.batch_size
        return math.ceil(len(instances) / self.batch_size)

    def get_batch_size(self) -> int | None:
        return self.batch_size

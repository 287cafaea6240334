import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.data.fields import LabelField, MetadataField, TextField
from keel.data.instance import Instance
from keel.data.samplers import BatchSampler, BucketBatchSampler
from keel.data.tokenizers import Token


def _instances(lengths: list[int]) -> list[Instance]:
    return [
        Instance(
            {
                "tokens": TextField([Token("x")] * n, {}),
                "label": LabelField(0, skip_indexing=True),
            }
        )
        for n in lengths
    ]


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


LENGTHS = [5, 1, 9, 3, 7, 2, 8, 4, 6]


def test_bucket_without_noise_groups_by_length():
    sampler = BucketBatchSampler(batch_size=3, padding_noise=0.0, shuffle=False)
    batches = sampler.get_batch_indices(_instances(LENGTHS), _generator())
    assert [[LENGTHS[i] for i in batch] for batch in batches] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_bucket_covers_every_instance_once_and_is_seeded():
    instances = _instances(LENGTHS * 5)
    sampler = BucketBatchSampler(batch_size=4)
    first = sampler.get_batch_indices(instances, _generator(1))
    assert sorted(i for batch in first for i in batch) == list(range(len(instances)))
    assert first == sampler.get_batch_indices(instances, _generator(1))
    assert first != sampler.get_batch_indices(instances, _generator(2))
    assert sampler.get_num_batches(instances) == len(first) == 12


def test_bucket_drop_last_and_sorting_keys():
    instances = _instances(LENGTHS)
    sampler = BucketBatchSampler(batch_size=4, drop_last=True, sorting_keys=["tokens"])
    batches = sampler.get_batch_indices(instances, _generator())
    assert len(batches) == sampler.get_num_batches(instances) == 2
    assert all(len(batch) == 4 for batch in batches)


def test_bucket_configuration_errors():
    with pytest.raises(ConfigurationError, match="batch_size"):
        BucketBatchSampler(batch_size=0)
    with pytest.raises(ConfigurationError, match="padding_noise"):
        BucketBatchSampler(batch_size=2, padding_noise=1.5)
    sampler = BucketBatchSampler(batch_size=2, sorting_keys=["nope"])
    with pytest.raises(ConfigurationError, match="no field 'nope'"):
        sampler.get_batch_indices(_instances([1, 2]), _generator())
    no_text = [Instance({"m": MetadataField(1)})]
    with pytest.raises(ConfigurationError, match="no TextField"):
        BucketBatchSampler(batch_size=2).get_batch_indices(no_text, _generator())


def test_bucket_is_registered():
    assert BatchSampler.by_name("bucket") is BucketBatchSampler

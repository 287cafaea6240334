from pathlib import Path

import pytest
import torch

from keel.common.errors import ConfigurationError, KeelError
from keel.data.batch import collate
from keel.data.data_loaders import DataLoader, MultiProcessDataLoader
from keel.data.data_loaders.multiprocess_data_loader import epoch_generator
from keel.data.fields import LabelField, MetadataField, TextField
from keel.data.instance import Instance, index_instances
from keel.data.samplers import BucketBatchSampler
from keel.data.token_indexers import SingleIdTokenIndexer
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary

INDEXERS = {"tokens": SingleIdTokenIndexer()}


def _instances(count: int = 10) -> list[Instance]:
    return [
        Instance(
            {
                "tokens": TextField([Token(f"w{j}") for j in range(1 + i % 4)], INDEXERS),
                "label": LabelField("even" if i % 2 == 0 else "odd"),
                "metadata": MetadataField(i),
            }
        )
        for i in range(count)
    ]


def _loader(**kwargs) -> MultiProcessDataLoader:
    instances = _instances()
    loader = MultiProcessDataLoader(instances, **kwargs)
    loader.index_with(Vocabulary.from_instances(instances))
    return loader


def _epoch_ids(loader) -> list[list[int]]:
    return [batch["metadata"] for batch in loader]


def test_loader_batches_in_order_without_shuffle():
    loader = _loader(batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b["metadata"] for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0]["tokens"]["tokens"]["tokens"].shape == (4, 4)
    assert batches[0]["tokens"]["tokens"]["mask"].sum(dim=1).tolist() == [1, 2, 3, 4]
    assert batches[0]["label"].dtype == torch.long


def test_loader_drop_last():
    loader = _loader(batch_size=4, drop_last=True)
    assert len(loader) == 2 == len(list(loader))


def test_loader_shuffle_depends_only_on_seed_and_epoch():
    loader = _loader(batch_size=3, shuffle=True, seed=7)
    epoch0, epoch1 = _epoch_ids(loader), _epoch_ids(loader)
    assert epoch0 != epoch1  # iterating advances the epoch
    assert sorted(sum(epoch0, [])) == list(range(10))
    resumed = _loader(batch_size=3, shuffle=True, seed=7)
    resumed.set_epoch(1)
    assert _epoch_ids(resumed) == epoch1
    resumed.set_epoch(0)
    assert _epoch_ids(resumed) == epoch0
    other_seed = _loader(batch_size=3, shuffle=True, seed=8)
    assert _epoch_ids(other_seed) != epoch0


def test_epoch_generator_mixes_seed_and_epoch():
    draws = {
        (seed, epoch): torch.randint(0, 2**62, (1,), generator=epoch_generator(seed, epoch)).item()
        for seed in range(3)
        for epoch in range(3)
    }
    assert len(set(draws.values())) == 9
    assert draws[(1, 2)] == torch.randint(0, 2**62, (1,), generator=epoch_generator(1, 2)).item()


def test_loader_with_bucket_sampler():
    sampler = BucketBatchSampler(batch_size=4, padding_noise=0.0, shuffle=False)
    loader = _loader(batch_sampler=sampler)
    assert len(loader) == 3
    widths = [b["tokens"]["tokens"]["tokens"].shape[1] for b in loader]
    assert widths == [2, 3, 4]


def test_loader_packed_batches_equal_collated_ones():
    instances = _instances()
    vocab = Vocabulary.from_instances(instances)
    loader = MultiProcessDataLoader(instances, batch_size=4, shuffle=True, seed=3)
    loader.index_with(vocab)
    loader.set_epoch(5)
    order = loader.batch_indices()
    batches = list(loader)
    index_instances(instances, vocab)
    for indices, batch in zip(order, batches, strict=True):
        expected = collate([instances[i] for i in indices])
        assert batch["metadata"] == expected["metadata"] == indices
        assert torch.equal(batch["label"], expected["label"])
        for key in ("tokens", "mask"):
            assert torch.equal(batch["tokens"]["tokens"][key], expected["tokens"]["tokens"][key])


def test_loader_batches_from_instances_packed_beforehand():
    from keel.data.batch import PackedInstances

    instances = _instances()
    vocab = Vocabulary.from_instances(instances)
    packed = PackedInstances.build(instances, vocab)
    given = MultiProcessDataLoader(instances, batch_size=3, shuffle=True, seed=1)
    given.index_with(vocab, packed=packed)
    own = MultiProcessDataLoader(instances, batch_size=3, shuffle=True, seed=1)
    own.index_with(vocab)
    for mine, theirs in zip(given, own, strict=True):
        assert mine["metadata"] == theirs["metadata"]
        assert torch.equal(mine["tokens"]["tokens"]["tokens"], theirs["tokens"]["tokens"]["tokens"])
    assert given._packed is packed
    with pytest.raises(KeelError, match="9 packed instances for a loader of 10"):
        given.index_with(vocab, packed=PackedInstances.build(instances[:9], vocab))


def test_loader_falls_back_to_collate_for_mixed_fields():
    instances = _instances(3) + [
        Instance({"tokens": TextField([Token("w0")], INDEXERS), "label": LabelField("odd")})
    ]
    loader = MultiProcessDataLoader(instances, batch_size=2)
    loader.index_with(Vocabulary.from_instances(instances))
    first = next(iter(loader))
    assert first["metadata"] == [0, 1]
    assert first["label"].tolist() == [0, 1]
    # The second batch mixes instances with and without metadata: that cannot be collated.
    loader.set_epoch(0)
    with pytest.raises(KeelError, match="lacks 'metadata'"):
        list(loader)


def test_loader_requires_a_vocabulary():
    loader = MultiProcessDataLoader(_instances(), batch_size=2)
    with pytest.raises(KeelError, match="index_with"):
        next(iter(loader))


def test_loader_rejects_conflicting_settings():
    sampler = BucketBatchSampler(batch_size=2)
    with pytest.raises(ConfigurationError) as info:
        MultiProcessDataLoader([], batch_size=3, shuffle=True, batch_sampler=sampler)
    assert {issue.path for issue in info.value.issues} == {"batch_size", "shuffle"}
    with pytest.raises(ConfigurationError, match="batch_size"):
        MultiProcessDataLoader([], batch_size=0)


def test_loader_accepts_any_iterable_and_is_registered_twice():
    loader = MultiProcessDataLoader(iter(_instances(3)), batch_size=2)
    assert len(loader.instances) == 3
    assert DataLoader.by_name("multiprocess") is MultiProcessDataLoader
    assert DataLoader.by_name("simple") is MultiProcessDataLoader
    assert DataLoader.default_implementation == "multiprocess"


SST2_SAMPLE = Path(__file__).parents[3] / "examples" / "data" / "sst2-sample" / "dev.tsv"


def test_loader_on_the_bundled_sample_matches_collate_with_buckets():
    from keel.data.dataset_readers import TsvReader

    reader = TsvReader(token_indexers={"tokens": SingleIdTokenIndexer()})
    instances = list(reader.read(SST2_SAMPLE))
    vocab = Vocabulary.from_instances(instances)
    sampler = BucketBatchSampler(batch_size=16)
    loader = MultiProcessDataLoader(instances, batch_sampler=sampler, seed=11)
    loader.index_with(vocab)
    order = loader.batch_indices()
    index_instances(instances, vocab)
    seen = []
    bucketed_cells = 0
    for indices, batch in zip(order, loader, strict=True):
        expected = collate([instances[i] for i in indices])
        assert torch.equal(batch["label"], expected["label"])
        assert torch.equal(
            batch["tokens"]["tokens"]["tokens"], expected["tokens"]["tokens"]["tokens"]
        )
        bucketed_cells += batch["tokens"]["tokens"]["mask"].numel()
        seen.extend(indices)
    assert sorted(seen) == list(range(872))
    shuffled = MultiProcessDataLoader(instances, batch_size=16, shuffle=True, seed=11)
    shuffled.index_with(vocab)
    shuffled_cells = sum(b["tokens"]["tokens"]["mask"].numel() for b in shuffled)
    real = sum(len(instance["tokens"]) for instance in instances)
    # Buckets of similar lengths waste far less on padding than random batches.
    assert bucketed_cells - real < 0.3 * (shuffled_cells - real)

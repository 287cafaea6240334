import numpy as np
import pytest
import torch

from keel.common.errors import KeelError
from keel.data.batch import PackedInstances, collate
from keel.data.fields import LabelField, MetadataField, SequenceLabelField, TextField
from keel.data.instance import Instance
from keel.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary

INDEXERS = {
    "tokens": SingleIdTokenIndexer(),
    "lower": SingleIdTokenIndexer(namespace="lower", lowercase_tokens=True),
    "chars": TokenCharactersIndexer(min_padding_length=3),
}


def _tagged(text: str, tags: str, label: str) -> Instance:
    tokens = TextField([Token(w) for w in text.split()], INDEXERS)
    return Instance(
        {
            "tokens": tokens,
            "tags": SequenceLabelField(tags.split(), tokens, "tags"),
            "label": LabelField(label),
            "metadata": MetadataField({"words": text.split()}),
        }
    )


def _data() -> list[Instance]:
    return [
        _tagged("The cat sat", "D N V", "a"),
        _tagged("Dogs", "N", "b"),
        _tagged("a dog ran off", "D N V P", "a"),
        _tagged("", "", "b"),
    ]


def _assert_same(left, right):
    if isinstance(left, dict):
        assert left.keys() == right.keys()
        for key in left:
            _assert_same(left[key], right[key])
    elif isinstance(left, torch.Tensor):
        assert left.dtype == right.dtype
        assert torch.equal(left, right)
    else:
        assert left == right


def test_collate_batches_every_field():
    instances = _data()
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    batch = collate(instances[:2])
    assert batch["tokens"]["tokens"]["tokens"].shape == (2, 3)
    assert batch["tokens"]["tokens"]["mask"].tolist() == [[True] * 3, [True, False, False]]
    assert batch["tokens"]["chars"]["token_characters"].shape == (2, 3, 4)
    assert batch["tags"].tolist() == [[1, 0, 2], [0, 0, 0]]
    assert batch["label"].tolist() == [0, 1]
    assert batch["metadata"] == [{"words": ["The", "cat", "sat"]}, {"words": ["Dogs"]}]


def test_collate_rejects_empty_and_mismatched_batches():
    with pytest.raises(KeelError, match="empty"):
        collate([])
    a = Instance({"x": LabelField("a")})
    b = Instance({"y": LabelField("a")})
    with pytest.raises(KeelError, match="lacks 'x'"):
        collate([a, b])
    c = Instance({"x": MetadataField(1)})
    with pytest.raises(KeelError, match="different types"):
        collate([a, c])


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 1], [2], [1, 3, 0]])
def test_packed_take_equals_collate(order):
    instances = _data()
    vocab = Vocabulary.from_instances(instances)
    packed = PackedInstances.build(instances, vocab)
    assert packed is not None and len(packed) == 4
    for instance in instances:
        instance.index_fields(vocab)
    _assert_same(packed.take(order), collate([instances[i] for i in order]))
    _assert_same(packed.take(np.array(order)), collate([instances[i] for i in order]))


def test_packed_with_unknown_tokens_and_separate_indexer_objects():
    train = [_tagged("a b", "D N", "a")]
    vocab = Vocabulary.from_instances(train)
    # Instances built with their own indexer dicts still pack (through the generic path).
    other = [
        Instance({"t": TextField([Token("a"), Token("zzz")], {"tokens": SingleIdTokenIndexer()})}),
        Instance({"t": TextField([Token("b")], {"tokens": SingleIdTokenIndexer()})}),
    ]
    packed = PackedInstances.build(other, vocab)
    assert packed.take([0, 1])["t"]["tokens"]["tokens"].tolist() == [[2, 1], [3, 0]]


def test_packed_is_none_for_mixed_instances():
    vocab = Vocabulary()
    mixed = [Instance({"x": MetadataField(1)}), Instance({"y": MetadataField(2)})]
    assert PackedInstances.build(mixed, vocab) is None
    typed = [Instance({"x": MetadataField(1)}), Instance({"x": LabelField(2, skip_indexing=True)})]
    assert PackedInstances.build(typed, vocab) is None
    assert PackedInstances.build([], vocab) is None

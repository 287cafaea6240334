import pytest
import torch

from keel.common import errors
from keel.common.errors import DataError
from keel.data.fields import LabelField
from keel.data.vocabulary import Vocabulary


def test_label_field_counts_indexes_and_batches():
    fields = [LabelField("pos"), LabelField("neg"), LabelField("pos")]
    counter: dict[str, dict[str, int]] = {}
    for field in fields:
        field.count_vocab_items(counter)
    assert counter == {"labels": {"pos": 2, "neg": 1}}
    vocab = Vocabulary(counter=counter)
    for field in fields:
        field.index(vocab)
    batch = LabelField.batch(fields)
    assert batch.dtype == torch.long
    assert batch.tolist() == [0, 1, 0]


def test_label_field_skip_indexing_takes_ints():
    field = LabelField(3, skip_indexing=True)
    counter: dict[str, dict[str, int]] = {}
    field.count_vocab_items(counter)
    assert counter == {}
    assert LabelField.batch([field]).tolist() == [3]


def test_label_field_rejects_wrong_label_types():
    with pytest.raises(TypeError, match="int label"):
        LabelField("3", skip_indexing=True)
    with pytest.raises(TypeError, match="must be a string"):
        LabelField(3)


def test_label_field_unseen_label_names_namespace_and_code():
    vocab = Vocabulary(counter={"labels": {"pos": 1}})
    with pytest.raises(DataError) as info:
        LabelField("neutral").index(vocab)
    assert info.value.code == errors.UNSEEN_LABEL
    assert "'neutral'" in str(info.value) and "'labels'" in str(info.value)


def test_label_field_index_many_matches_index():
    vocab = Vocabulary(counter={"labels": {"a": 1, "b": 1}, "other_labels": {"c": 1}})
    fields = [LabelField("b"), LabelField("c", "other_labels"), LabelField(5, skip_indexing=True)]
    LabelField.index_many(fields, vocab)
    assert [f.label_id for f in fields] == [1, 0, 5]

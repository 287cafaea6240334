import pytest
import torch

from keel.common.errors import KeelError
from keel.data.fields import TextField
from keel.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary


def _field(text: str, indexers) -> TextField:
    return TextField([Token(word) for word in text.split()], indexers)


def test_text_field_counts_indexes_and_batches():
    indexers = {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}
    fields = [_field("a bb a", indexers), _field("bb", indexers)]
    counter: dict[str, dict[str, int]] = {}
    for field in fields:
        field.count_vocab_items(counter)
    assert counter["tokens"] == {"a": 2, "bb": 2}
    assert counter["token_characters"] == {"a": 2, "b": 4}
    vocab = Vocabulary(counter=counter)
    for field in fields:
        field.index(vocab)
    batch = TextField.batch(fields)
    assert set(batch) == {"tokens", "chars"}
    assert batch["tokens"]["tokens"].tolist() == [[2, 3, 2], [3, 0, 0]]
    assert batch["tokens"]["mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["chars"]["token_characters"].shape == (2, 3, 2)
    # "b" (4) outranks "a" (2) in the character namespace.
    assert batch["chars"]["token_characters"][0].tolist() == [[3, 0], [2, 2], [3, 0]]
    assert batch["chars"]["mask"].dtype == torch.bool


def test_text_field_index_many_matches_index():
    indexers = {"tokens": SingleIdTokenIndexer()}
    vocab = Vocabulary(counter={"tokens": {"a": 1}})
    one, many = _field("a b", indexers), _field("a b", indexers)
    one.index(vocab)
    TextField.index_many([many], vocab)
    assert one.indexed == many.indexed == {"tokens": {"tokens": [2, 1]}}


def test_text_field_batch_before_index_is_an_error():
    field = _field("a", {"tokens": SingleIdTokenIndexer()})
    with pytest.raises(KeelError, match="not indexed"):
        TextField.batch([field])


def test_text_field_sequence_behaviour():
    field = _field("x y", {})
    assert len(field) == 2
    assert field[1].text == "y"
    assert [t.text for t in field] == ["x", "y"]
    assert field.human_readable_repr() == ["x", "y"]

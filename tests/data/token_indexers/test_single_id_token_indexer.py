import pytest
import torch

from keel.common import errors
from keel.common.errors import DataError
from keel.data.token_indexers import SingleIdTokenIndexer, TokenIndexer
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary


def _tokens(text: str) -> list[Token]:
    return [Token(word) for word in text.split()]


def test_single_id_counts_and_indexes():
    indexer = SingleIdTokenIndexer()
    counter: dict[str, dict[str, int]] = {}
    indexer.count_vocab_items(_tokens("a b a"), counter)
    assert counter == {"tokens": {"a": 2, "b": 1}}
    vocab = Vocabulary(counter=counter)
    assert indexer.tokens_to_indices(_tokens("b a zzz"), vocab) == {"tokens": [3, 2, 1]}


def test_single_id_lowercase_and_boundary_tokens():
    indexer = SingleIdTokenIndexer(
        namespace="words", lowercase_tokens=True, start_tokens=["<s>"], end_tokens=["</s>"]
    )
    counter: dict[str, dict[str, int]] = {}
    indexer.count_vocab_items(_tokens("A a"), counter)
    assert counter == {"words": {"<s>": 1, "a": 2, "</s>": 1}}
    vocab = Vocabulary(counter=counter)
    ids = indexer.tokens_to_indices(_tokens("A"), vocab)["tokens"]
    assert [vocab.get_token_from_index(i, "words") for i in ids] == ["<s>", "a", "</s>"]


def test_single_id_batch_tensors_pads_and_masks():
    batch = SingleIdTokenIndexer().batch_tensors([{"tokens": [5, 6]}, {"tokens": [7]}])
    assert batch["tokens"].dtype == torch.long
    assert batch["tokens"].tolist() == [[5, 6], [7, 0]]
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"].tolist() == [[True, True], [True, False]]


def test_single_id_unpadded_namespace_rejects_unknown_tokens():
    vocab = Vocabulary(counter={"tags": {"X": 1}})
    indexer = SingleIdTokenIndexer(namespace="tags")
    assert indexer.tokens_to_indices(_tokens("X"), vocab) == {"tokens": [0]}
    with pytest.raises(DataError) as info:
        indexer.tokens_to_indices(_tokens("X Y"), vocab)
    assert info.value.code == errors.UNSEEN_LABEL
    assert "'Y'" in str(info.value)


def test_single_id_batch_tokens_to_indices_matches_single():
    vocab = Vocabulary(counter={"tokens": {"a": 2, "b": 1}})
    lists = [_tokens("a b c"), [], _tokens("b")]
    for indexer in (SingleIdTokenIndexer(), SingleIdTokenIndexer(lowercase_tokens=True)):
        expected = [indexer.tokens_to_indices(tokens, vocab) for tokens in lists]
        assert indexer.batch_tokens_to_indices(lists, vocab) == expected


def test_single_id_is_the_registered_default():
    assert TokenIndexer.default_implementation == "single_id"
    assert TokenIndexer.by_name("single_id") is SingleIdTokenIndexer

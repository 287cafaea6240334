import numpy as np

from keel.data.token_indexers import TokenCharactersIndexer, TokenIndexer
from keel.data.tokenizers import CharacterTokenizer, Token
from keel.data.vocabulary import Vocabulary


def test_characters_counts_and_indexes():
    indexer = TokenCharactersIndexer()
    counter: dict[str, dict[str, int]] = {}
    indexer.count_vocab_items([Token("ab"), Token("b")], counter)
    assert counter == {"token_characters": {"a": 1, "b": 2}}
    vocab = Vocabulary(counter=counter)
    indexed = indexer.tokens_to_indices([Token("ba"), Token("z")], vocab)
    assert indexed == {"token_characters": [[2, 3], [1]]}


def test_characters_batch_tensors_respects_min_padding_length():
    indexer = TokenCharactersIndexer(min_padding_length=5)
    batch = indexer.batch_tensors(
        [{"token_characters": [[2, 3], [4]]}, {"token_characters": [[5, 6, 7]]}]
    )
    assert batch["token_characters"].shape == (2, 2, 5)
    assert batch["token_characters"][0].tolist() == [[2, 3, 0, 0, 0], [4, 0, 0, 0, 0]]
    assert batch["token_characters"][1].tolist() == [[5, 6, 7, 0, 0], [0, 0, 0, 0, 0]]
    assert batch["mask"].tolist() == [[True, True], [True, False]]


def test_characters_uses_its_character_tokenizer():
    indexer = TokenCharactersIndexer(
        namespace="chars", character_tokenizer=CharacterTokenizer(lowercase_characters=True)
    )
    counter: dict[str, dict[str, int]] = {}
    indexer.count_vocab_items([Token("Aa")], counter)
    assert counter == {"chars": {"a": 2}}


def test_characters_is_registered():
    assert TokenIndexer.by_name("characters") is TokenCharactersIndexer
    assert TokenCharactersIndexer().namespace == "token_characters"


def _packed_equals_batched(indexer, token_lists, vocab):
    import numpy as np
    import torch

    pack = indexer.pack(token_lists, vocab)
    for indices in ([0], [2, 0, 1], [1, 1], list(range(len(token_lists)))):
        taken = pack.take(np.array(indices))
        expected = indexer.batch_tensors(
            [indexer.tokens_to_indices(token_lists[i], vocab) for i in indices]
        )
        assert taken.keys() == expected.keys()
        for key in expected:
            assert torch.equal(taken[key], expected[key]), (key, indices)
    return pack


def test_characters_pack_batches_like_batch_tensors():
    token_lists = [
        [Token("Héllo"), Token(""), Token("x")],
        [],
        [Token("İstanbul"), Token("ZZ")],  # "İ".lower() is two code points
    ]
    vocab = Vocabulary(tokens_to_add={"token_characters": list("Hélox")})
    for indexer in (
        TokenCharactersIndexer(),
        TokenCharactersIndexer(min_padding_length=12),
        TokenCharactersIndexer(character_tokenizer=CharacterTokenizer(lowercase_characters=True)),
    ):
        pack = _packed_equals_batched(indexer, token_lists, vocab)
        assert "token_characters" in pack.columns()  # the vectorized pack
    # Start/end tokens take the general path, with the same batches.
    wrapped = TokenCharactersIndexer(character_tokenizer=CharacterTokenizer(start_tokens=["<s>"]))
    _packed_equals_batched(wrapped, token_lists, vocab)


def test_characters_pack_looks_up_every_code_point_like_the_vocabulary():
    # The pack looks characters up in a table by code point; the dict lookup is the reference.
    token_lists = [
        [Token("a😀b"), Token("\U0010ffff"), Token("\ud800x")],  # astral, the last, a surrogate
        [Token("\x00"), Token("Ω"), Token("@@UNKNOWN@@")],  # NUL, unseen, OOV's own text
        [],
    ]
    vocab = Vocabulary(tokens_to_add={"token_characters": ["a", "😀", "\x00", "x", "ab"]})
    pack = _packed_equals_batched(TokenCharactersIndexer(), token_lists, vocab)
    ids = pack.take(np.array([0]))["token_characters"][0].tolist()
    get = vocab.get_token_index
    assert ids[0] == [get("a", "token_characters"), get("😀", "token_characters"), 1]
    assert ids[1] == [1, 0, 0] and ids[2] == [1, get("x", "token_characters"), 0]
    # An empty character namespace: every character is OOV.
    _packed_equals_batched(TokenCharactersIndexer(), token_lists, Vocabulary())

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

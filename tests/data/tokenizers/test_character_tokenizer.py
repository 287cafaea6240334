from keel.data.tokenizers import CharacterTokenizer, Tokenizer


def test_character_tokenizer_splits_characters_with_offsets():
    tokens = CharacterTokenizer().tokenize("ab c")
    assert [t.text for t in tokens] == ["a", "b", " ", "c"]
    assert [t.idx for t in tokens] == [0, 1, 2, 3]
    assert [t.idx_end for t in tokens] == [1, 2, 3, 4]


def test_character_tokenizer_lowercase_and_boundary_tokens():
    tokenizer = CharacterTokenizer(
        lowercase_characters=True, start_tokens=["<s>"], end_tokens=["</s>"]
    )
    tokens = tokenizer.tokenize("Ab")
    assert [t.text for t in tokens] == ["<s>", "a", "b", "</s>"]
    assert tokens[0].idx is None and tokens[1].idx == 0
    assert tokenizer.split("Ab") == ["<s>", "a", "b", "</s>"]


def test_character_tokenizer_batch_matches_single():
    tokenizer = CharacterTokenizer()
    assert tokenizer.batch_tokenize(["ab", ""]) == [tokenizer.tokenize("ab"), []]


def test_character_tokenizer_is_registered():
    assert Tokenizer.by_name("character") is CharacterTokenizer

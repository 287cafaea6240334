from keel.data.tokenizers import Token, Tokenizer, WhitespaceTokenizer


def test_whitespace_tokenizer_splits_on_runs_of_whitespace():
    tokens = WhitespaceTokenizer().tokenize("  it 's\ta  charming\njourney . ")
    assert [t.text for t in tokens] == ["it", "'s", "a", "charming", "journey", "."]
    assert all(isinstance(t, Token) for t in tokens)


def test_whitespace_tokenizer_batch_matches_single():
    tokenizer = WhitespaceTokenizer()
    texts = ["a b", "", "  c  ", "d e f"]
    assert tokenizer.batch_tokenize(texts) == [tokenizer.tokenize(t) for t in texts]
    assert tokenizer.batch_tokenize([]) == []


def test_whitespace_tokenizer_is_the_registered_default():
    assert Tokenizer.default_implementation == "whitespace"
    assert Tokenizer.by_name("whitespace") is WhitespaceTokenizer


def test_whitespace_tokenizer_shares_one_token_per_word():
    tokenizer = WhitespaceTokenizer()
    first, second = tokenizer.batch_tokenize(["the cat", "the dog"])
    assert first[0] is second[0]
    assert tokenizer.tokenize("the")[0] is first[0]

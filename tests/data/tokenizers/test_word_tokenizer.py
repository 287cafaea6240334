import pytest

from keel.data.tokenizers import Tokenizer, WordTokenizer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("I don't know", ["I", "do", "n't", "know"]),
        ("It's what they'll do", ["It", "'s", "what", "they", "'ll", "do"]),
        ("can't won't", ["ca", "n't", "wo", "n't"]),
        ("O'Brien rock'n'roll", ["O'Brien", "rock'n'roll"]),
        ("a well-made film", ["a", "well-made", "film"]),
        ("3.14 and 1,000,000", ["3.14", "and", "1,000,000"]),
        ("the U.S. army", ["the", "U.S.", "army"]),
        ("wait... what?!", ["wait", "...", "what", "?", "!"]),
        ("``quoted'' -- -lrb- x -rrb-", ["``", "quoted", "''", "--", "-lrb-", "x", "-rrb-"]),
        ("naïve café", ["naïve", "café"]),
        ("", []),
    ],
)
def test_word_tokenizer_splits(text, expected):
    assert [t.text for t in WordTokenizer().tokenize(text)] == expected


def test_word_tokenizer_keeps_sst2_ptb_text_as_is():
    text = "it 's a charming and often affecting journey . "
    assert [t.text for t in WordTokenizer().tokenize(text)] == text.split()


def test_word_tokenizer_offsets_point_into_the_text():
    text = "Don't stop, Believin'!"
    for token in WordTokenizer().tokenize(text):
        assert text[token.idx : token.idx_end] == token.text


def test_word_tokenizer_lowercase_keeps_original_offsets():
    text = "The İstanbul Movie"
    tokens = WordTokenizer(lowercase=True).tokenize(text)
    assert [t.text for t in tokens] == ["the", "i̇stanbul", "movie"]
    assert [(t.idx, t.idx_end) for t in tokens] == [(0, 3), (4, 12), (13, 18)]


def test_word_tokenizer_batch_matches_single():
    tokenizer = WordTokenizer(lowercase=True)
    texts = ["A b, c.", "", "It's"]
    assert tokenizer.batch_tokenize(texts) == [tokenizer.tokenize(t) for t in texts]


def test_word_tokenizer_is_registered():
    assert Tokenizer.by_name("word") is WordTokenizer

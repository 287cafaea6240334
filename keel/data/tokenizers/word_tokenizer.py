"""``word``: a fast regular-expression word tokenizer (English-leaning, PTB-like)."""

from __future__ import annotations

import re

from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer

# Alternatives are tried in order at each position, so the specific forms come first.
_WORD_PATTERN = re.compile(
    r"""
    \w+(?=n't\b)                    # "do" of "don't": the clitic is its own token (PTB)
    | n't\b                         # "n't"
    | '(?:s|m|d|ll|re|ve)\b         # "'s", "'re", ... as separate tokens (PTB)
    | \d+(?:[.,]\d+)+               # numbers with separators: 3.14, 1,000,000
    | (?:[^\W\d_]\.){2,}            # abbreviations with dots: u.s., e.g.
    | -(?:lrb|rrb|lsb|rsb|lcb|rcb)-   # PTB bracket escapes: -lrb- -rrb-
    | \w+(?:-\w+|'(?!(?:s|m|d|ll|re|ve)\b)\w+)*  # words with inner hyphens/apostrophes
    | ([^\w\s])\1+                  # runs of one punctuation mark: ... -- `` '' !!
    | [^\w\s]                       # any other single symbol
    """,
    re.VERBOSE | re.IGNORECASE,
)


@Tokenizer.register("word")
class WordTokenizer(Tokenizer):
    """Splits words from punctuation with one compiled regex; tokens carry character offsets.

    Contractions split the Penn Treebank way (``don't`` -> ``do n't``, ``it's`` -> ``it 's``),
    so text tokenized this way matches PTB-tokenized corpora such as SST-2.
    """

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[Token]:
        token = Token
        if self.lowercase:
            # Lower-case each token, not the text: lower() may change lengths and break offsets.
            return [
                token(m.group().lower(), m.start(), m.end()) for m in _WORD_PATTERN.finditer(text)
            ]
        return [token(m.group(), m.start(), m.end()) for m in _WORD_PATTERN.finditer(text)]

    def batch_tokenize(self, texts: list[str]) -> list[list[Token]]:
        tokenize = self.tokenize
        return [tokenize(text) for text in texts]

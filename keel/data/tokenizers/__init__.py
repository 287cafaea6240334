"""Tokenizers: text -> ``Token`` lists (``whitespace``, ``word``, ``character``, ``spacy``)."""

from keel.data.tokenizers.character_tokenizer import CharacterTokenizer
from keel.data.tokenizers.pretrained_transformer_tokenizer import PretrainedTransformerTokenizer
from keel.data.tokenizers.spacy_tokenizer import SpacyTokenizer
from keel.data.tokenizers.token import SharedToken, Token
from keel.data.tokenizers.tokenizer import Tokenizer
from keel.data.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from keel.data.tokenizers.word_tokenizer import WordTokenizer

__all__ = [
    "PretrainedTransformerTokenizer",
    "CharacterTokenizer",
    "SharedToken",
    "SpacyTokenizer",
    "Token",
    "Tokenizer",
    "WhitespaceTokenizer",
    "WordTokenizer",
]

"""``whitespace``: split on runs of whitespace, for text that is already tokenized."""

from __future__ import annotations

from keel.data.tokenizers.token import Token, TokenCache
from keel.data.tokenizers.tokenizer import Tokenizer


@Tokenizer.register("whitespace")
class WhitespaceTokenizer(Tokenizer):
    """Splits on whitespace (``str.split``), as AllenNLP's ``whitespace`` tokenizer does.

    Tokens carry text only (no offsets: pre-tokenized input has no use for them), so each
    distinct word is one shared, read-only token (``SharedToken``) rather than one object per
    occurrence: reading a corpus then allocates a fraction of the objects.
    """

    def __init__(self) -> None:
        self._cache = TokenCache()

    def tokenize(self, text: str) -> list[Token]:
        return list(map(self._cache.__getitem__, text.split()))

    def batch_tokenize(self, texts: list[str]) -> list[list[Token]]:
        lookup = self._cache.__getitem__
        return [list(map(lookup, text.split())) for text in texts]

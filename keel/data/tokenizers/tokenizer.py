"""The ``Tokenizer`` base class."""

from __future__ import annotations

from keel.common.registry import Registrable
from keel.data.tokenizers.token import Token


class Tokenizer(Registrable):
    """Splits text into tokens. Subclasses override ``batch_tokenize`` when bulk is faster."""

    default_implementation = "whitespace"

    def tokenize(self, text: str) -> list[Token]:
        """The tokens of one text."""
        raise NotImplementedError

    def batch_tokenize(self, texts: list[str]) -> list[list[Token]]:
        """The tokens of each text, in order."""
        return [self.tokenize(text) for text in texts]

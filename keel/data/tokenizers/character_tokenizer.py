"""``character``: one token per character."""

from __future__ import annotations

from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer


@Tokenizer.register("character")
class CharacterTokenizer(Tokenizer):
    """Splits text into characters, optionally lower-cased and wrapped in start/end tokens."""

    def __init__(
        self,
        lowercase_characters: bool = False,
        start_tokens: list[str] | None = None,
        end_tokens: list[str] | None = None,
    ) -> None:
        self.lowercase_characters = lowercase_characters
        self.start_tokens = list(start_tokens or [])
        self.end_tokens = list(end_tokens or [])

    def split(self, text: str) -> list[str]:
        """The characters of ``text`` as plain strings, with start/end tokens: the fast path."""
        if self.lowercase_characters:
            text = text.lower()
        if self.start_tokens or self.end_tokens:
            return [*self.start_tokens, *text, *self.end_tokens]
        return list(text)

    def tokenize(self, text: str) -> list[Token]:
        source = text.lower() if self.lowercase_characters else text
        token = Token
        tokens = [token(s) for s in self.start_tokens]
        # lower() can change the length of a few characters (e.g. "İ"), so offsets come from
        # the original text only when the lengths agree.
        if len(source) == len(text):
            tokens.extend(token(char, i, i + 1) for i, char in enumerate(source))
        else:
            tokens.extend(token(char) for char in source)
        tokens.extend(token(s) for s in self.end_tokens)
        return tokens

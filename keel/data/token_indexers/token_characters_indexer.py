"""``characters``: a list of character ids per token, for character-level encoders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch

from keel.common.constraints import NonNegative
from keel.data.packing import NestedIds, Packed
from keel.data.token_indexers.padding import pad_2d
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.character_tokenizer import CharacterTokenizer
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


@TokenIndexer.register("characters")
class TokenCharactersIndexer(TokenIndexer):
    """Each token becomes the ids of its characters in ``namespace``; key ``"token_characters"``.

    ``min_padding_length`` pads the character dimension to at least that width, so a character
    CNN with wide filters never sees a shorter input.
    """

    vocabulary_keys = ("token_characters",)

    def __init__(
        self,
        namespace: str = "token_characters",
        character_tokenizer: Tokenizer | None = None,
        min_padding_length: Annotated[int, NonNegative] = 0,
    ) -> None:
        self.namespace = namespace
        self.character_tokenizer = character_tokenizer or CharacterTokenizer()
        self.min_padding_length = min_padding_length
        tokenizer = self.character_tokenizer
        if isinstance(tokenizer, CharacterTokenizer):
            self._split = tokenizer.split
        else:
            self._split = lambda text: [t.text for t in tokenizer.tokenize(text)]

    def count_vocab_items(self, tokens: list[Token], counter: dict[str, dict[str, int]]) -> None:
        counts = counter.setdefault(self.namespace, {})
        get = counts.get
        split = self._split
        for token in tokens:
            for char in split(token.text):
                counts[char] = get(char, 0) + 1

    def tokens_to_indices(self, tokens: list[Token], vocab: Vocabulary) -> dict[str, list[Any]]:
        get = vocab.get_token_to_index_vocabulary(self.namespace).get
        split = self._split
        if vocab.is_padded(self.namespace):
            return {
                "token_characters": [[get(c, 1) for c in split(token.text)] for token in tokens]
            }
        rows = [[get(c) for c in split(token.text)] for token in tokens]
        for token, row in zip(tokens, rows, strict=True):
            if None in row:
                chars = split(token.text)
                raise vocab.unseen_token_error(chars[row.index(None)], self.namespace)
        return {"token_characters": rows}

    def pack(
        self,
        token_lists: list[list[Token]],
        vocab: Vocabulary,
        texts: list[str] | None = None,
    ) -> Packed:
        tokenizer = self.character_tokenizer
        if (
            type(tokenizer) is not CharacterTokenizer
            or tokenizer.start_tokens
            or tokenizer.end_tokens
            or not vocab.is_padded(self.namespace)
        ):
            return super().pack(token_lists, vocab, texts)
        # Plain characters: one join of every token's text, looked up character by character
        # in C iterators, instead of a Python list per token.
        if texts is None:
            texts = [token.text for tokens in token_lists for token in tokens]
        if tokenizer.lowercase_characters:
            texts = list(map(str.lower, texts))
        flat = _character_ids("".join(texts), vocab.get_token_to_index_vocabulary(self.namespace))
        outer = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        inner = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        return _CharactersPack(NestedIds(outer, inner, flat), self.min_padding_length)

    def pack_from_columns(self, columns: Mapping[str, Any], count: int) -> Packed:
        # Whatever the character tokenizer, batching the ids is pad_2d, which NestedIds does.
        ids = columns.get("token_characters")
        if isinstance(ids, NestedIds) and len(columns) == 1:
            return _CharactersPack(ids, self.min_padding_length)
        return super().pack_from_columns(columns, count)

    def batch_tensors(self, indexed: list[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        padded, mask = pad_2d(
            [item["token_characters"] for item in indexed], min_inner=self.min_padding_length
        )
        return {"token_characters": torch.from_numpy(padded), "mask": torch.from_numpy(mask)}


class _CharactersPack:
    def __init__(self, ids: NestedIds, min_padding_length: int) -> None:
        self.ids = ids
        self.min_padding_length = min_padding_length

    def take(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        padded, mask = self.ids.take(indices, self.min_padding_length)
        return {"token_characters": torch.from_numpy(padded), "mask": torch.from_numpy(mask)}

    def columns(self) -> dict[str, NestedIds]:
        return {"token_characters": self.ids}


def _character_ids(text: str, mapping: Mapping[str, int]) -> np.ndarray:
    """The id of every character of ``text`` in ``mapping`` (1, the OOV id, where it has none),
    looked up by code point in one numpy gather instead of a dict lookup per character."""
    # Only one-character entries can match a character (the padding and OOV tokens cannot).
    entries = [(ord(key), index) for key, index in mapping.items() if len(key) == 1]
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    top = max((point for point, _ in entries), default=0) + 1
    table = np.ones(top + 1, dtype=np.int64)  # the last slot: any code point above the table
    if entries:
        keys, values = zip(*entries, strict=True)
        table[list(keys)] = values
    return table[np.minimum(points, top)]

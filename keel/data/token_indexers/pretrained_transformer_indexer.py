"""``pretrained_transformer`` and ``pretrained_transformer_mismatched``: word-piece ids for a
transformer, taken from the model directory's own tokenizer vocabulary.

The ids come from ``tokenizer.json``, not from keel's Vocabulary: ``count_vocab_items`` adds
nothing, so the vocabulary directory stays small and the ids cannot drift from the ones the
backbone was trained with. The ``namespace`` ("tags", as in AllenNLP) matches keel's
non-padded pattern, so statistics never read word-piece id 1 as "unknown".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from tokenizers import Encoding

from keel.common import errors
from keel.common.errors import DataError
from keel.data.token_indexers.padding import pad_1d, pad_2d
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.pretrained_transformer_tokenizer import (
    load_hf_tokenizer,
    local_model_dir,
    tokenizer_fingerprint_material,
)
from keel.data.tokenizers.token import Token

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


class _TransformerIndexerBase(TokenIndexer):
    """Loads the tokenizer once; both indexers read ids from its vocabulary."""

    kind: ClassVar[str]  # the registered name, part of the fingerprint material

    def __init__(self, model_name: str, namespace: str) -> None:
        self.model_name = model_name
        self.namespace = namespace
        self.model_dir = local_model_dir(model_name)
        self.tokenizer = load_hf_tokenizer(self.model_dir)
        self._fingerprint_material = tokenizer_fingerprint_material(
            self.model_dir, {"indexer": self.kind}
        )

    def count_vocab_items(self, tokens: list[Token], counter: dict[str, dict[str, int]]) -> None:
        """Nothing: the ids come from the model's tokenizer vocabulary, not keel's Vocabulary."""

    def fingerprint_material(self) -> bytes:
        """Stable bytes describing the word-piece vocabulary and normalisation this indexer uses."""
        return self._fingerprint_material


@TokenIndexer.register("pretrained_transformer")
class PretrainedTransformerIndexer(_TransformerIndexerBase):
    """Indexes word pieces (from the ``pretrained_transformer`` tokenizer) for a transformer.

    Uses each token's ``text_id``/``type_id`` when set, else looks the text up in the model's
    vocabulary (unknown pieces map to its unknown token). Batches to ``token_ids``,
    ``type_ids``, ``wordpiece_mask`` and ``mask`` (the same word-piece mask), padded with 0:
    padded positions are masked out, so the id there never matters.
    """

    kind = "pretrained_transformer"

    def __init__(self, model_name: str, namespace: str = "tags") -> None:
        super().__init__(model_name, namespace)
        self._vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        unk_token = getattr(self.tokenizer.model, "unk_token", None)
        self._unk_id = self._vocab.get(unk_token) if unk_token is not None else None

    def _lookup(self, text: str) -> int:
        text_id = self._vocab.get(text, self._unk_id)
        if text_id is None:
            raise DataError(
                f"word piece {text!r} is not in the vocabulary of {self.model_name} and its "
                "tokenizer has no unknown token; tokenize with the pretrained_transformer "
                "tokenizer of the same model",
                code=errors.BAD_VOCABULARY,
            )
        return text_id

    def tokens_to_indices(self, tokens: list[Token], vocab: Vocabulary) -> dict[str, list[Any]]:
        token_ids = [
            token.text_id if token.text_id is not None else self._lookup(token.text)
            for token in tokens
        ]
        type_ids = [token.type_id or 0 for token in tokens]
        return {"token_ids": token_ids, "type_ids": type_ids}

    def batch_tensors(self, indexed: list[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        token_ids, mask = pad_1d([item["token_ids"] for item in indexed])
        type_ids, _ = pad_1d([item["type_ids"] for item in indexed])
        mask_tensor = torch.from_numpy(mask)
        return {
            "token_ids": torch.from_numpy(token_ids),
            "type_ids": torch.from_numpy(type_ids),
            "wordpiece_mask": mask_tensor,
            "mask": mask_tensor,
        }


@TokenIndexer.register("pretrained_transformer_mismatched")
class PretrainedTransformerMismatchedIndexer(_TransformerIndexerBase):
    """Indexes *words* (e.g. from a tagging reader) as word pieces plus, per word, the inclusive
    ``[first, last]`` positions of its pieces, so a word-level model can run on a transformer.

    Words are split into pieces with the model's own tokenizer (special tokens added); a word that
    yields no piece (e.g. only control characters) gets offsets ``[-1, -1]`` and embeds as zeros.
    Batches to ``token_ids``, ``type_ids``, ``wordpiece_mask`` (B, pieces), ``offsets``
    (B, words, 2; ``-1`` for padding) and ``mask`` (B, words): the mask is word level, matching
    word-level tags.
    """

    kind = "pretrained_transformer_mismatched"

    def __init__(self, model_name: str, namespace: str = "tags") -> None:
        super().__init__(model_name, namespace)

    def tokens_to_indices(self, tokens: list[Token], vocab: Vocabulary) -> dict[str, list[Any]]:
        words = [token.text for token in tokens]
        encoding = self.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=True)
        return _mismatched_indices(encoding, len(words))

    def batch_tokens_to_indices(
        self, token_lists: list[list[Token]], vocab: Vocabulary
    ) -> list[dict[str, list[Any]]]:
        word_lists = [[token.text for token in tokens] for tokens in token_lists]
        encodings = self.tokenizer.encode_batch(
            word_lists, is_pretokenized=True, add_special_tokens=True
        )
        return [
            _mismatched_indices(encoding, len(words))
            for encoding, words in zip(encodings, word_lists, strict=True)
        ]

    def batch_tensors(self, indexed: list[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        token_ids, wordpiece_mask = pad_1d([item["token_ids"] for item in indexed])
        type_ids, _ = pad_1d([item["type_ids"] for item in indexed])
        offsets, mask = pad_2d([item["offsets"] for item in indexed], min_inner=2)
        offsets[~mask] = -1  # padded words select no piece, so they embed as zeros
        return {
            "token_ids": torch.from_numpy(token_ids),
            "type_ids": torch.from_numpy(type_ids),
            "wordpiece_mask": torch.from_numpy(wordpiece_mask),
            "offsets": torch.from_numpy(offsets),
            "mask": torch.from_numpy(mask),
        }


def _mismatched_indices(encoding: Encoding, word_count: int) -> dict[str, list[Any]]:
    offsets = [[-1, -1] for _ in range(word_count)]
    for position, word in enumerate(encoding.word_ids):
        if word is not None:
            span = offsets[word]
            if span[0] < 0:
                span[0] = position
            span[1] = position
    return {"token_ids": encoding.ids, "type_ids": encoding.type_ids, "offsets": offsets}

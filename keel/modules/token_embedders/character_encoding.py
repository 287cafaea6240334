"""``character_encoding``: a word vector from its characters (embed, then a seq2vec encoder)."""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch

from keel.common import errors
from keel.common.constraints import Positive, Probability, Supplied
from keel.common.errors import ConfigIssue, ConfigurationError, ModelError
from keel.data.vocabulary import Vocabulary
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder
from keel.modules.token_embedders.embedding import Embedding
from keel.modules.token_embedders.token_embedder import TokenEmbedder

CHARACTER_NAMESPACE = "token_characters"


class CharacterEmbedding(Embedding):
    """An ``embedding`` whose ``vocab_namespace`` defaults to ``token_characters``.

    It is what an ``embedding`` block under ``character_encoding`` builds when it names no
    ``type``, so the character table is sized by the character vocabulary, not the words'.
    Not registered: it is reached only through ``character_encoding``.
    """

    # No "type" means this class itself, not the base's default ``embedding``.
    default_implementation: ClassVar[str | None] = None

    def __init__(
        self,
        embedding_dim: Annotated[int, Positive],
        num_embeddings: Annotated[int, Positive] | None = None,
        vocab_namespace: str = CHARACTER_NAMESPACE,
        pretrained_file: str | None = None,
        trainable: bool = True,
        padding_index: int | None = 0,
        projection_dim: Annotated[int, Positive] | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        vocab: Annotated[Vocabulary, Supplied] | None = None,
    ) -> None:
        super().__init__(
            embedding_dim=embedding_dim,
            num_embeddings=num_embeddings,
            vocab_namespace=vocab_namespace,
            pretrained_file=pretrained_file,
            trainable=trainable,
            padding_index=padding_index,
            projection_dim=projection_dim,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
            vocab=vocab,
        )


@TokenEmbedder.register("character_encoding")
class TokenCharactersEncoder(TokenEmbedder):
    """Embeds each word's characters and encodes them to one vector with ``encoder`` (often
    ``cnn``), then applies ``dropout``. Pairs with the ``characters`` token indexer.

    The encoder runs once over all real words of the batch together; padding words are skipped
    and come out as zeros. The ``embedding`` reads the ``token_characters`` namespace unless it
    names another; naming ``tokens`` (the word vocabulary) is refused, since the table would
    then be sized by the words, not the characters.
    """

    def __init__(
        self,
        embedding: CharacterEmbedding | Embedding,
        encoder: Seq2VecEncoder,
        dropout: Annotated[float, Probability] = 0.0,
    ) -> None:
        super().__init__()
        _check_character_namespace(embedding)
        if embedding.get_output_dim() != encoder.get_input_dim():
            raise ModelError(
                f"character_encoding: the embedding outputs vectors of size "
                f"{embedding.get_output_dim()} but the encoder expects {encoder.get_input_dim()}",
                code=errors.SHAPE_MISMATCH,
            )
        self._embedding = embedding
        self._encoder = encoder
        self._dropout = torch.nn.Dropout(dropout) if dropout > 0 else None

    def get_output_dim(self) -> int:
        return self._encoder.get_output_dim()

    def forward(self, token_characters: torch.Tensor) -> torch.Tensor:
        """Character ids (B, T, C), 0 = padding -> word vectors (B, T, output_dim)."""
        batch, length, width = token_characters.shape
        flat = token_characters.reshape(batch * length, width)
        char_mask = flat != 0
        word_mask = char_mask.any(dim=1)
        output = flat.new_zeros((batch * length, self.get_output_dim()), dtype=torch.float)
        words = word_mask.nonzero(as_tuple=True)[0]
        if words.numel():
            encoded = self._encoder(self._embedding(flat[words]), char_mask[words])
            if self._dropout is not None:
                encoded = self._dropout(encoded)
            output = output.to(encoded.dtype).index_copy(0, words, encoded)
        return output.view(batch, length, -1)


def _check_character_namespace(embedding: Embedding) -> None:
    if embedding.vocab_namespace == "tokens":
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_VALUE,
                    "embedding.vocab_namespace",
                    "the character embedding reads the word vocabulary ('tokens'), so its table "
                    "would be sized by the words, not the characters",
                    expected=f"{CHARACTER_NAMESPACE!r} (the characters indexer's namespace), "
                    "or leave vocab_namespace out",
                    found="tokens",
                )
            ]
        )

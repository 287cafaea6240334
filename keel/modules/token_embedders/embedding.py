"""``embedding``: a trainable lookup table, optionally initialised from GloVe-format vectors."""

from __future__ import annotations

import gzip
import io
import logging
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from keel.common import errors
from keel.common.constraints import Positive, Supplied
from keel.common.errors import ConfigIssue, ConfigurationError, DataError
from keel.data.vocabulary import Vocabulary
from keel.modules.token_embedders.token_embedder import TokenEmbedder

logger = logging.getLogger(__name__)


@TokenEmbedder.register("embedding")
class Embedding(TokenEmbedder):
    """Looks up one vector per token id; row ``padding_index`` is all zeros and gets no gradient.

    ``num_embeddings`` defaults to the size of ``vocab_namespace`` in the vocabulary.
    ``pretrained_file`` (GloVe text format, optionally ``.gz``) initialises the rows of tokens it
    contains; the rest are drawn from a normal with the found vectors' mean and std.
    ``projection_dim`` adds a linear projection after the lookup.
    """

    def __init__(
        self,
        embedding_dim: Annotated[int, Positive],
        num_embeddings: Annotated[int, Positive] | None = None,
        vocab_namespace: str = "tokens",
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
        super().__init__()
        self.vocab_namespace = vocab_namespace
        if num_embeddings is None:
            if vocab is None:
                raise _needs_vocab("num_embeddings", "to size the table")
            num_embeddings = vocab.get_vocab_size(vocab_namespace)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_index = padding_index
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        # How many vocabulary tokens the pretrained file covered (None without a file).
        self.num_pretrained_found: int | None = None

        if pretrained_file is not None:
            if vocab is None:
                raise _needs_vocab("pretrained_file", "to match tokens to vectors")
            weight, found = read_pretrained_embeddings(
                pretrained_file, embedding_dim, vocab, vocab_namespace, num_embeddings
            )
            self.num_pretrained_found = found
        else:
            weight = torch.empty(num_embeddings, embedding_dim)
            torch.nn.init.xavier_uniform_(weight)
        if padding_index is not None:
            weight[padding_index].fill_(0.0)
        self.weight = torch.nn.Parameter(weight, requires_grad=trainable)

        self._projection: torch.nn.Linear | None = None
        if projection_dim is not None:
            self._projection = torch.nn.Linear(embedding_dim, projection_dim)
        self.output_dim = projection_dim or embedding_dim

    def get_output_dim(self) -> int:
        return self.output_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Ids of any shape (..., ) -> vectors (..., output_dim)."""
        embedded = torch.nn.functional.embedding(
            tokens,
            self.weight,
            padding_idx=self.padding_index,
            max_norm=self.max_norm,
            norm_type=self.norm_type,
            scale_grad_by_freq=self.scale_grad_by_freq,
            sparse=self.sparse,
        )
        if self._projection is not None:
            embedded = self._projection(embedded)
        return embedded


def read_pretrained_embeddings(
    path: str | Path,
    embedding_dim: int,
    vocab: Vocabulary,
    namespace: str = "tokens",
    num_embeddings: int | None = None,
) -> tuple[torch.Tensor, int]:
    """A (num_embeddings, embedding_dim) weight matrix from a GloVe-format text file, and how many
    of the namespace's tokens the file covered.

    Each line is a token and ``embedding_dim`` numbers, separated by single spaces (so tokens
    cannot contain spaces); a word2vec ``count dim`` header line is skipped. Only the vectors of
    tokens in the vocabulary are parsed, but every line's length is checked: a line with the
    wrong number of values raises a DataError naming the file and line.
    """
    path = str(path)
    token_to_index = vocab.get_token_to_index_vocabulary(namespace)
    if num_embeddings is None:
        num_embeddings = vocab.get_vocab_size(namespace)
    found_vectors: dict[int, np.ndarray] = {}
    with _open_text(path) as lines:
        try:
            _scan(lines, path, embedding_dim, token_to_index, num_embeddings, found_vectors)
        except (OSError, EOFError) as error:  # a truncated or corrupt .gz
            raise DataError(
                f"cannot read the pretrained embedding file ({error})", path=path
            ) from error
    found = len(found_vectors)
    total = len(token_to_index)
    if found:
        indices = torch.tensor(list(found_vectors), dtype=torch.long)
        vectors = torch.from_numpy(np.stack(list(found_vectors.values())))
        mean = vectors.mean().item()
        std = vectors.std().item() if vectors.numel() > 1 else 1.0
        weight = torch.empty(num_embeddings, embedding_dim).normal_(mean, std or 1.0)
        weight[indices] = vectors
        logger.info(
            "Found %d of %d %r tokens in %s; the rest start random", found, total, namespace, path
        )
    else:
        weight = torch.empty(num_embeddings, embedding_dim)
        torch.nn.init.xavier_uniform_(weight)
        logger.warning(
            "None of the %d %r tokens is in %s: check the file and the tokenizer's casing",
            total,
            namespace,
            path,
        )
    return weight, found


def remove_pretrained_files(config: Any) -> Any:
    """A copy of a (model) config with every ``pretrained_file`` key removed.

    Rebuilding a trained model must not need the vectors it started from (they may not exist on
    the machine that loads the archive); its weights come from the saved state instead.
    """
    if isinstance(config, dict):
        return {
            key: remove_pretrained_files(value)
            for key, value in config.items()
            if key != "pretrained_file"
        }
    if isinstance(config, list):
        return [remove_pretrained_files(item) for item in config]
    return config


def _scan(
    lines: io.TextIOBase,
    path: str,
    embedding_dim: int,
    token_to_index: dict[str, int],
    num_embeddings: int,
    found_vectors: dict[int, np.ndarray],
) -> None:
    for line_number, raw in enumerate(lines, start=1):
        line = raw.rstrip(" \r\n")
        if not line:
            continue
        spaces = line.count(" ")
        if spaces != embedding_dim:
            if line_number == 1 and _is_word2vec_header(line):
                continue
            raise DataError(
                f"expected a token and {embedding_dim} numbers (embedding_dim), found "
                f"{spaces} value{'s' if spaces != 1 else ''} after the token",
                path=path,
                line=line_number,
                excerpt=line[:80],
            )
        token, _, values = line.partition(" ")
        index = token_to_index.get(token)
        if index is None or index >= num_embeddings or index in found_vectors:
            continue
        try:
            found_vectors[index] = np.array(values.split(" "), dtype=np.float32)
        except ValueError as error:
            raise DataError(
                f"the values after the token are not all numbers ({error})",
                path=path,
                line=line_number,
                excerpt=line[:80],
            ) from error


def _open_text(path: str) -> io.TextIOBase:
    try:
        if path.endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as error:
        raise DataError(
            f"cannot open the pretrained embedding file ({error.strerror or error})",
            path=path,
            code=errors.DATA_NOT_FOUND,
        ) from error


def _is_word2vec_header(line: str) -> bool:
    fields = line.split(" ")
    return len(fields) == 2 and all(field.isdigit() for field in fields)


def _needs_vocab(parameter: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        [
            ConfigIssue(
                errors.MISSING_EXTRA,
                parameter,
                f"the embedding needs a vocabulary {why}; build it with extras={{'vocab': ...}}",
            )
        ]
    )

"""Shared machinery of the text classification readers: chunked, bulk-tokenized instances."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import DataError
from keel.data.dataset_readers.dataset_reader import (
    CHUNK_SIZE,
    MAX_LINE_BYTES,
    DatasetReader,
    default_token_indexers,
    existing_file,
)
from keel.data.fields.field import Field
from keel.data.fields.label_field import LabelField
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer
from keel.data.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from keel.data.util import gc_paused

#: one good line of a classification file: (line number, text, label, id or None)
Row = tuple[int, str, str | int | None, str | None]


class ClassificationReader(DatasetReader):
    """Base of readers whose instances are ``tokens`` (TextField) + optional ``label``.

    The text is split by ``tokenizer`` (default: whitespace) and indexed by ``token_indexers``
    (default: one ``single_id`` indexer named tokens). ``skip_label_indexing`` takes labels as
    integer class ids instead of names. ``max_sequence_length`` keeps the first that many tokens.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        token_indexers: dict[str, TokenIndexer] | None = None,
        skip_label_indexing: bool = False,
        max_sequence_length: int | None = None,
        max_instances: Annotated[int, Positive] | None = None,
        max_line_bytes: Annotated[int, Positive] = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(max_instances=max_instances, max_line_bytes=max_line_bytes)
        self.tokenizer = tokenizer if tokenizer is not None else WhitespaceTokenizer()
        self.token_indexers = default_token_indexers(token_indexers)
        self.skip_label_indexing = skip_label_indexing
        self.max_sequence_length = max_sequence_length

    def read(
        self, file_path: str | Path, on_error: Callable[[DataError], None] | None = None
    ) -> Iterator[Instance]:
        """Instances from ``file_path``. With ``on_error``, a bad line is passed to it and skipped
        instead of ending the read (a missing file, a bad header and an empty result still raise).
        """
        path = existing_file(file_path)
        rows = self._rows(str(path), on_error)
        return self._read_checked(path, self._instances_from_rows(rows))

    def _read(self, file_path: str) -> Iterator[Instance]:
        return self._instances_from_rows(self._rows(file_path, None))

    def _rows(self, file_path: str, on_error: Callable[[DataError], None] | None) -> Iterator[Row]:
        """``(line number, text, label, id)`` per good line (``id`` None when the data has
        none); a bad line goes to ``on_error``, or raises without."""
        raise NotImplementedError

    def text_to_instance(self, text: str, label: str | int | None = None) -> Instance:
        """An instance with ``tokens`` and, when ``label`` is given, ``label``."""
        return self._make_instance(self.tokenizer.tokenize(text), label)

    def read_records(self, file_path: str | Path) -> Iterator[dict[str, Any]]:
        """``{"text": ..., "label": ...}`` per row, up to ``max_instances``."""
        rows = self._rows(str(file_path), None)
        if self.max_instances is not None:
            rows = islice(rows, self.max_instances)
        for _, text, label, _ in rows:
            yield {"text": text, "label": label}

    def _make_instance(
        self,
        tokens: list[Token],
        label: str | int | None,
        line: int | None = None,
        source_id: str | None = None,
    ) -> Instance:
        if self.max_sequence_length is not None:
            tokens = tokens[: self.max_sequence_length]
        fields: dict[str, Field] = {"tokens": TextField(tokens, self.token_indexers)}
        if label is not None:
            fields["label"] = LabelField(label, skip_indexing=self.skip_label_indexing)
        return Instance(fields, line, source_id)

    def _label(self, raw: object, path: str, line: int, excerpt: str) -> str | int | None:
        """Normalise a label: str for vocabulary lookup, or int when ``skip_label_indexing``."""
        if raw is None:
            return None
        if self.skip_label_indexing:
            try:
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                return int(raw)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                raise DataError(
                    f"label {raw!r} is not an integer, but skip_label_indexing is true",
                    path=path,
                    line=line,
                    excerpt=excerpt,
                ) from None
        if isinstance(raw, (dict, list)):
            raise DataError(
                f"label must be a string or number, got {type(raw).__name__}",
                path=path,
                line=line,
                excerpt=excerpt,
            )
        return str(raw)

    def _instances_from_rows(self, rows: Iterable[Row]) -> Iterator[Instance]:
        """Instances for ``(line, text, label, id)`` rows, tokenizing ``CHUNK_SIZE`` texts per
        call."""
        rows = iter(rows)
        make = self._make_instance
        batch_tokenize = self.tokenizer.batch_tokenize
        # Never read past max_instances: a bad line after them must not fail the read.
        chunk_size = min(CHUNK_SIZE, self.max_instances or CHUNK_SIZE)
        while True:
            # Parsing, tokenizing and building a chunk allocate ~15 objects per row and no
            # cycles; collecting in between would rescan the growing data set again and again.
            with gc_paused():
                chunk = list(islice(rows, chunk_size))
                if not chunk:
                    break
                texts = [text for _, text, _, _ in chunk]
                tokenized = batch_tokenize(texts)
                instances = [
                    make(tokens, label, line, source_id)
                    for tokens, (line, _, label, source_id) in zip(tokenized, chunk, strict=True)
                ]
            yield from instances


def missing_key_error(
    key: str, path: str, line: int, excerpt: str, found: Iterable[str]
) -> DataError:
    return DataError(
        f"missing {key!r} (found: {', '.join(map(repr, found)) or 'nothing'})",
        path=path,
        line=line,
        excerpt=excerpt,
        code=errors.MISSING_COLUMN,
    )

"""``text_classification_json``: JSON lines ``{"text": ..., "label": ...}``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from keel.common.constraints import Positive
from keel.common.errors import DataError
from keel.data.dataset_readers.classification import ClassificationReader, Row, missing_key_error
from keel.data.dataset_readers.dataset_reader import (
    MAX_LINE_BYTES,
    DatasetReader,
    parse_json_object,
    read_lines,
)
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.tokenizer import Tokenizer


@DatasetReader.register("text_classification_json")
class TextClassificationJsonReader(ClassificationReader):
    """One JSON object per line with a text and an optional label; blank lines are skipped.

    The text is read from the key ``text_key`` and the label from ``label_key``; an ``id`` key,
    when present, is kept as the instance's id.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        token_indexers: dict[str, TokenIndexer] | None = None,
        skip_label_indexing: bool = False,
        max_sequence_length: int | None = None,
        text_key: str = "text",
        label_key: str = "label",
        max_instances: Annotated[int, Positive] | None = None,
        max_line_bytes: Annotated[int, Positive] = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(
            tokenizer=tokenizer,
            token_indexers=token_indexers,
            skip_label_indexing=skip_label_indexing,
            max_sequence_length=max_sequence_length,
            max_instances=max_instances,
            max_line_bytes=max_line_bytes,
        )
        self.text_key = text_key
        self.label_key = label_key

    def _rows(self, file_path: str, on_error: Callable[[DataError], None] | None) -> Iterator[Row]:
        for line_number, line in read_lines(file_path, on_error, self.max_line_bytes):
            if not line.strip():
                continue
            try:
                yield (line_number, *self._parse(line, file_path, line_number))
            except DataError as error:
                if on_error is None:
                    raise
                on_error(error)

    def _parse(
        self, line: str, file_path: str, line_number: int
    ) -> tuple[str, str | int | None, str | None]:
        text_key, label_key = self.text_key, self.label_key
        item = parse_json_object(line, file_path, line_number)
        raw_id = item.get("id")
        source_id = (
            str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        )
        text = item.get(text_key)
        if text is None:
            raise missing_key_error(text_key, file_path, line_number, line, item)
        if not isinstance(text, str):
            raise DataError(
                f"{text_key!r} must be a string, got {type(text).__name__}",
                path=file_path,
                line=line_number,
                excerpt=line,
            )
        label = self._label(item.get(label_key), file_path, line_number, line)
        return text, label, source_id

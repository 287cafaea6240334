"""``tsv``: delimited text with a header row, e.g. GLUE's SST-2 ``sentence\\tlabel`` files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import ConfigIssue, ConfigurationError, DataError
from keel.data.dataset_readers.classification import ClassificationReader, Row
from keel.data.dataset_readers.dataset_reader import MAX_LINE_BYTES, DatasetReader, read_lines
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.tokenizer import Tokenizer


@DatasetReader.register("tsv")
class TsvReader(ClassificationReader):
    """Reads ``text_column`` and ``label_column`` by header name from delimited text;
    ``id_column`` names a column of example ids (kept with each instance, written by
    ``keel evaluate --predictions-output-file``). With ``header`` false the file has no header
    line and the columns are given by position (0 for the first).

    Fields are split on ``delimiter`` with no quoting rules (GLUE's files have none). The text
    is stripped of surrounding whitespace: SST-2 sentences end with a space.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        token_indexers: dict[str, TokenIndexer] | None = None,
        text_column: str | int = "sentence",
        label_column: str | int = "label",
        id_column: str | int | None = None,
        delimiter: str = "\t",
        header: bool = True,
        skip_label_indexing: bool = False,
        max_sequence_length: int | None = None,
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
        if not delimiter:
            raise ValueError("delimiter must not be empty")
        columns = {"text_column": text_column, "label_column": label_column}
        if id_column is not None:
            columns["id_column"] = id_column
        issues = [
            ConfigIssue(
                errors.BAD_VALUE,
                name,
                "without a header, columns are given by position"
                if not header
                else "a column position must be 0 or more",
                expected="a column position (0, 1, ...)",
                found=value,
            )
            for name, value in columns.items()
            if (not header and not isinstance(value, int)) or (isinstance(value, int) and value < 0)
        ]
        if issues:
            raise ConfigurationError(issues)
        self.header = header
        self.text_column = text_column
        self.label_column = label_column
        self.id_column = id_column
        self.delimiter = delimiter

    def _rows(self, file_path: str, on_error: Callable[[DataError], None] | None) -> Iterator[Row]:
        delimiter = self.delimiter
        lines = read_lines(file_path, on_error, self.max_line_bytes)
        named = [self.text_column, self.label_column]
        if self.id_column is not None:
            named.append(self.id_column)
        if self.header:
            first = next(lines, None)
            if first is None:
                return  # empty file: read() reports it as having no instances
            if first[0] != 1:  # on_error skipped an undecodable header: nothing can be read
                raise DataError("the header line is not valid UTF-8", path=file_path, line=1)
            header_line = first[1]
            header = [name.strip() for name in header_line.split(delimiter)]
        else:
            header_line, header = "", []
        columns = []
        for name in named:
            if isinstance(name, int):
                columns.append(name)
                continue
            if name not in header:
                raise DataError(
                    f"the header has no column {name!r} (columns: "
                    f"{', '.join(map(repr, header))}; delimiter {delimiter!r})",
                    path=file_path,
                    line=1,
                    excerpt=header_line,
                    code=errors.MISSING_COLUMN,
                )
            columns.append(header.index(name))
        text_index, label_index = columns[:2]
        id_index = columns[2] if len(columns) > 2 else None
        needed = max(columns) + 1
        skip = self.skip_label_indexing
        for line_number, line in lines:
            if not line.strip():
                continue
            parts = line.split(delimiter)
            if len(parts) < needed:
                error = DataError(
                    f"{len(parts)} column(s), expected at least {needed} (header: "
                    f"{', '.join(map(repr, header))}; delimiter {delimiter!r})",
                    path=file_path,
                    line=line_number,
                    excerpt=line,
                    code=errors.MISSING_COLUMN,
                )
                if on_error is None:
                    raise error
                on_error(error)
                continue
            label: str | int | None = parts[label_index].strip()
            try:
                if skip:
                    label = self._label(label, file_path, line_number, line)
                elif not label:
                    raise DataError(
                        f"empty {self.label_column!r} column",
                        path=file_path,
                        line=line_number,
                        excerpt=line,
                        code=errors.MISSING_COLUMN,
                    )
            except DataError as error:
                if on_error is None:
                    raise
                on_error(error)
                continue
            source_id = parts[id_index].strip() if id_index is not None else None
            yield line_number, parts[text_index].strip(), label, source_id or None

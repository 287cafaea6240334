"""``conll2003``: the four-column CoNLL-2003 NER format (``word POS CHUNK NER`` per line)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import ConfigurationError, DataError
from keel.data import span_utils
from keel.data.dataset_readers.dataset_reader import MAX_LINE_BYTES, DatasetReader, TextRun
from keel.data.dataset_readers.sequence_tagging import (
    DeclinedBlock,
    OnError,
    Sentence,
    SentenceLines,
    TaggingReader,
)
from keel.data.token_indexers.token_indexer import TokenIndexer

_COLUMNS = {"pos": 1, "chunk": 2, "ner": 3}
# Chunk and NER columns are span tags; POS tags are not, so they are never converted.
_SPAN_COLUMNS = ("chunk", "ner")


@DatasetReader.register("conll2003")
class Conll2003DatasetReader(TaggingReader):
    """Sentences of a CoNLL-2003 file, tagged with the ``tag_label`` column (ner, pos or chunk).

    Sentences are separated by blank lines; ``-DOCSTART-`` lines separate documents.
    Chunk and NER tags are read in ``original_coding_scheme`` (the original release uses IOB1;
    many redistributed copies use BIO) and converted to ``coding_scheme``. ``feature_labels``
    adds other columns as extra fields ``<name>_tags`` in namespace ``<name>_tags``.

    ``convert_to_coding_scheme`` is AllenNLP 2.x's name for the target scheme (``coding_scheme``
    is 1.x's), accepted so configs of either version read unchanged; giving both with
    different values is an error.
    """

    def __init__(
        self,
        tag_label: str = "ner",
        coding_scheme: str = "IOB1",
        original_coding_scheme: str = "IOB1",
        convert_to_coding_scheme: str | None = None,
        feature_labels: list[str] | None = None,
        token_indexers: dict[str, TokenIndexer] | None = None,
        label_namespace: str = "labels",
        max_instances: Annotated[int, Positive] | None = None,
        max_line_bytes: Annotated[int, Positive] = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(token_indexers, label_namespace, max_instances, max_line_bytes)
        if convert_to_coding_scheme is not None:
            if coding_scheme not in ("IOB1", convert_to_coding_scheme):
                raise ConfigurationError(
                    f"coding_scheme {coding_scheme!r} and convert_to_coding_scheme "
                    f"{convert_to_coding_scheme!r} disagree; give one (the second is AllenNLP "
                    "2.x's name for the first)",
                    code=errors.BAD_VALUE,
                )
            coding_scheme = convert_to_coding_scheme
        for name, value in [("tag_label", tag_label)] + [
            ("feature_labels", label) for label in feature_labels or []
        ]:
            if value not in _COLUMNS:
                raise ConfigurationError(
                    f"{name} {value!r} is not a CoNLL-2003 column; expected one of ner, pos, chunk",
                    code=errors.BAD_VALUE,
                )
        for name, scheme in [
            ("coding_scheme", coding_scheme),
            ("original_coding_scheme", original_coding_scheme),
        ]:
            if scheme not in span_utils.SCHEMES:
                raise ConfigurationError(
                    f"{name} {scheme!r} is not a tag scheme; expected one of "
                    f"{', '.join(span_utils.SCHEMES)}",
                    code=errors.BAD_VALUE,
                )
        self.tag_label = tag_label
        self.coding_scheme = coding_scheme
        self.original_coding_scheme = original_coding_scheme
        self.feature_labels = list(feature_labels or [])

    def _sentences(self, file_path: str, on_error: OnError) -> Iterator[Sentence]:
        reader = SentenceLines(file_path, on_error, self.max_line_bytes)
        for line_numbers, rows in reader.blocks(_LineBlocks(reader), _split_run):
            yield from self._sentence(reader, line_numbers, rows)

    def _sentence(
        self, reader: SentenceLines, line_numbers: list[int], rows: list[list[str]]
    ) -> Iterator[Sentence]:
        """The sentence of one block's 4-column rows, if its tags convert."""
        columns = list(zip(*rows, strict=True))
        file_path = reader.file_path
        try:
            tags = self._column(columns, self.tag_label, file_path, line_numbers)
            features = {
                f"{label}_tags": (
                    f"{label}_tags",
                    self._column(columns, label, file_path, line_numbers),
                )
                for label in self.feature_labels
            }
        except DataError as error:
            reader.fail(error)
            reader.bad = False  # the sentence is dropped; the next one starts clean
            return
        yield Sentence(list(columns[0]), tags, features, line=line_numbers[0])

    def _column(
        self, columns: list[tuple[str, ...]], label: str, file_path: str, line_numbers: list[int]
    ) -> list[str]:
        values = list(columns[_COLUMNS[label]])
        if label not in _SPAN_COLUMNS or self.coding_scheme == self.original_coding_scheme:
            return values
        if values.count("O") == len(values):
            return values  # no span: the same in every scheme (most sentences of NER data)
        # Each distinct tag is checked once; the first bad one in the sentence is reported.
        for tag in sorted(set(values), key=values.index):
            try:
                span_utils.split_tag(tag)
            except span_utils.InvalidTagError as error:
                raise DataError(
                    f"{error} (converting {label} tags from {self.original_coding_scheme} "
                    f"to {self.coding_scheme})",
                    path=file_path,
                    line=line_numbers[values.index(tag)],
                    code=errors.BAD_DATA_LINE,
                ) from error
        return span_utils.convert_tags(values, self.original_coding_scheme, self.coding_scheme)


class _LineBlocks:
    """The CoNLL-2003 blocks one line at a time: ``feed`` each line, ``end`` at the end of the
    file; each gives a finished block's (line numbers, 4-column rows) or None. A block with a
    bad line is dropped. Blocks the fast path declines come here, and its results define
    what the fast path must match."""

    def __init__(self, reader: SentenceLines) -> None:
        self.reader = reader
        self.numbers: list[int] = []
        self.rows: list[list[str]] = []

    def feed(self, line_number: int, raw: str) -> tuple[list[int], list[list[str]]] | None:
        reader = self.reader
        line = raw.strip()
        if not line or line.startswith("-DOCSTART-"):
            return self.end()
        if reader.bad:
            return None
        parts = line.split()
        if len(parts) != 4:
            reader.fail(
                DataError(
                    f"{len(parts)} column(s), expected 4 (word POS chunk NER, separated by "
                    "whitespace)",
                    path=reader.file_path,
                    line=line_number,
                    excerpt=line,
                    code=errors.MISSING_COLUMN,
                )
            )
            return None
        self.numbers.append(line_number)
        self.rows.append(parts)
        return None

    def end(self) -> tuple[list[int], list[list[str]]] | None:
        """The block read so far (None if empty or bad); starts afresh."""
        block = (self.numbers, self.rows) if self.rows and not self.reader.bad else None
        self.numbers, self.rows, self.reader.bad = [], [], False
        return block


def _split_run(run: TextRun) -> Iterator[tuple[list[int], list[list[str]]] | DeclinedBlock]:
    """Each block of ``run`` split on whitespace in C calls: its (line numbers, 4-column rows),
    or, for a block with anything else (a -DOCSTART- line, a line of spaces, a bad line), its
    numbered lines for the line reader."""
    line = run.line
    for text in run.text.split("\n\n"):
        start, line = line, line + text.count("\n") + 2
        rows = text.split("\n")
        parts = list(map(str.split, rows))
        numbers = list(range(start, start + len(rows)))
        if set(map(len, parts)) == {4} and "-DOCSTART-" not in text:
            yield numbers, parts
        else:
            yield DeclinedBlock(list(zip(numbers, rows, strict=True)))

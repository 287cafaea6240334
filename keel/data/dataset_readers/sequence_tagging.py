"""``sequence_tagging``: AllenNLP's ``word###TAG`` lines; also the tagging readers' base class."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import DataError
from keel.data.dataset_readers.dataset_reader import (
    CHUNK_SIZE,
    MAX_LINE_BYTES,
    DatasetReader,
    TextRun,
    default_token_indexers,
    existing_file,
    read_lines,
    read_runs,
)
from keel.data.fields.field import Field
from keel.data.fields.metadata_field import MetadataField
from keel.data.fields.sequence_label_field import SequenceLabelField
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.token import Token, TokenCache
from keel.data.util import gc_paused

OnError = Callable[[DataError], None] | None

_text_of = attrgetter("text")


@dataclass
class Sentence:
    """One tagged sentence as read: words, tags, and extra tag columns by field name."""

    words: list[str]
    tags: list[str]
    features: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: the line of its first word
    line: int | None = None
    #: its id in the data (CoNLL-U ``# sent_id``), when there is one
    source_id: str | None = None


class TaggingReader(DatasetReader):
    """Base of the tagging readers: instances with ``tokens``, ``tags`` and ``metadata``.

    Subclasses implement ``_sentences``. With ``on_error``, ``read`` hands a bad line to it and
    skips the sentence that holds it instead of stopping. Words are indexed by
    ``token_indexers`` (default: one ``single_id`` indexer named tokens); tags go to the
    vocabulary namespace ``label_namespace``.
    """

    def __init__(
        self,
        token_indexers: dict[str, TokenIndexer] | None = None,
        label_namespace: str = "labels",
        max_instances: Annotated[int, Positive] | None = None,
        max_line_bytes: Annotated[int, Positive] = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(max_instances=max_instances, max_line_bytes=max_line_bytes)
        self.token_indexers = default_token_indexers(token_indexers)
        self.label_namespace = label_namespace
        # Words carry only their text, so each distinct word is one shared token.
        self._tokens = TokenCache()

    def read(self, file_path: str | Path, on_error: OnError = None) -> Iterator[Instance]:
        """Instances from ``file_path``; see the class docstring for ``on_error``."""
        path = existing_file(file_path)
        return self._read_checked(path, self._instances(self._sentences(str(path), on_error)))

    def _read(self, file_path: str) -> Iterator[Instance]:
        return self._instances(self._sentences(file_path, None))

    def read_records(self, file_path: str | Path) -> Iterator[dict[str, Any]]:
        """``{"tokens": [...], "tags": [...]}`` per sentence, up to ``max_instances``."""
        sentences = self._sentences(str(existing_file(file_path)), None)
        if self.max_instances is not None:
            sentences = islice(sentences, self.max_instances)
        for sentence in sentences:
            yield {"tokens": sentence.words, "tags": sentence.tags}

    def text_to_instance(self, tokens: list[str], tags: list[str] | None = None) -> Instance:
        """An instance of ``tokens`` (words) and, when given, one tag per word."""
        shared: list[Token] = list(map(self._tokens.__getitem__, tokens))
        text_field = TextField(shared, self.token_indexers)
        fields: dict[str, Field] = {
            "tokens": text_field,
            # The shared tokens' strings: one object per distinct word across the data set.
            "metadata": MetadataField({"words": list(map(_text_of, shared))}),
        }
        if tags is not None:
            fields["tags"] = SequenceLabelField(list(tags), text_field, self.label_namespace)
        return Instance(fields)

    def _instances(self, sentences: Iterator[Sentence]) -> Iterator[Instance]:
        # Never parse past max_instances: a bad line after them must not fail the read.
        chunk_size = min(CHUNK_SIZE, self.max_instances or CHUNK_SIZE)
        while True:
            # Parsing and building a chunk allocate ~10 objects per word and no cycles;
            # collecting in between would rescan the growing data set again and again.
            with gc_paused():
                chunk = [self._instance(sentence) for sentence in islice(sentences, chunk_size)]
            if not chunk:
                return
            yield from chunk

    def _instance(self, sentence: Sentence) -> Instance:
        instance = self.text_to_instance(sentence.words, sentence.tags)
        instance.source_line = sentence.line
        instance.source_id = sentence.source_id
        if sentence.features:
            text_field = instance.fields["tokens"]
            for name, (namespace, values) in sentence.features.items():
                instance.add_field(name, SequenceLabelField(values, text_field, namespace))  # type: ignore[arg-type]
        return instance

    def _sentences(self, file_path: str, on_error: OnError) -> Iterator[Sentence]:
        """The sentences of a file; a bad line raises, or goes to ``on_error``."""
        raise NotImplementedError


class SentenceLines:
    """Reads blank-line-separated blocks, dropping any block that had a bad line.

    ``fail(error)`` raises without ``on_error``; with it, reports and marks the block bad.
    """

    def __init__(
        self, file_path: str, on_error: OnError, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        self.file_path = file_path
        self.on_error = on_error
        self.max_line_bytes = max_line_bytes
        self.bad = False

    def fail(self, error: DataError) -> None:
        if self.on_error is None:
            raise error
        self.bad = True
        self.on_error(error)

    def lines(self) -> Iterator[tuple[int, str]]:
        return read_lines(
            self.file_path,
            self.fail if self.on_error is not None else None,
            self.max_line_bytes,
        )

    def runs(self) -> Iterator[TextRun | tuple[int, str]]:
        """The file as ``read_runs`` gives it, errors going to ``fail``."""
        return read_runs(
            self.file_path,
            self.fail if self.on_error is not None else None,
            self.max_line_bytes,
        )

    def blocks(
        self,
        parser: LineParser[Block],
        parse_run: Callable[[TextRun], Iterable[Block | DeclinedBlock]],
    ) -> Iterator[Block]:
        """The file's blocks: what ``parse_run`` makes of each run, and what ``parser`` makes
        of every line the runs leave to it (a block ``parse_run`` declined, or a stretch that
        ``read_runs`` gives line by line). The line parser defines the results; a reader's
        ``parse_run`` is its faster way to the same ones."""
        for item in self.runs():
            if not isinstance(item, TextRun):
                if (block := parser.feed(*item)) is not None:
                    yield block
                continue
            # A run ends at a blank line, so the line parser holds nothing across runs.
            for parsed in parse_run(item):
                if not isinstance(parsed, DeclinedBlock):
                    yield parsed
                    continue
                for line_number, line in parsed.lines:
                    if (block := parser.feed(line_number, line)) is not None:
                        yield block
                if (block := parser.end()) is not None:
                    yield block
        if (block := parser.end()) is not None:
            yield block


Block = TypeVar("Block")
_ParsedBlock = TypeVar("_ParsedBlock", covariant=True)


class LineParser(Protocol[_ParsedBlock]):
    """A reader's block format read one line at a time."""

    def feed(self, line_number: int, line: str) -> _ParsedBlock | None:
        """Take one line; the block it finishes (at a blank line), else None."""
        ...

    def end(self) -> _ParsedBlock | None:
        """The block read so far, if any and good; starts afresh."""
        ...


@dataclass(frozen=True, slots=True)
class DeclinedBlock:
    """A block of a run that a fast parse leaves to the line parser: its numbered lines."""

    lines: list[tuple[int, str]]


@DatasetReader.register("sequence_tagging")
class SequenceTaggingDatasetReader(TaggingReader):
    """One sentence per line: tokens separated by ``token_delimiter`` (None: any whitespace),
    each a word and its tag joined by ``word_tag_delimiter`` (``word###TAG``). The tag is what
    follows the last delimiter, so words may contain it. Blank lines are skipped.
    """

    def __init__(
        self,
        word_tag_delimiter: str = "###",
        token_delimiter: str | None = None,
        token_indexers: dict[str, TokenIndexer] | None = None,
        label_namespace: str = "labels",
        max_instances: Annotated[int, Positive] | None = None,
        max_line_bytes: Annotated[int, Positive] = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(token_indexers, label_namespace, max_instances, max_line_bytes)
        if not word_tag_delimiter:
            raise ValueError("word_tag_delimiter must not be empty")
        self.word_tag_delimiter = word_tag_delimiter
        self.token_delimiter = token_delimiter

    def _sentences(self, file_path: str, on_error: OnError) -> Iterator[Sentence]:
        delimiter = self.word_tag_delimiter
        reader = SentenceLines(file_path, on_error, self.max_line_bytes)
        for line_number, line in reader.lines():
            if not line.strip():
                continue
            words, tags = [], []
            for piece in line.split(self.token_delimiter):
                word, sep, tag = piece.rpartition(delimiter)
                if not sep or not word or not tag:
                    reader.fail(
                        DataError(
                            f"token {piece!r} is not word{delimiter}TAG "
                            f"(word_tag_delimiter={delimiter!r}, "
                            f"token_delimiter={self.token_delimiter!r})",
                            path=file_path,
                            line=line_number,
                            excerpt=line,
                            code=errors.BAD_DATA_LINE,
                        )
                    )
                    break
                words.append(word)
                tags.append(tag)
            else:
                yield Sentence(words, tags, line=line_number)

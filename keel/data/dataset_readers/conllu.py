"""``conllu``: Universal Dependencies CoNLL-U files, tagged with UPOS or XPOS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import numpy as np

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.dataset_reader import MAX_LINE_BYTES, DatasetReader, TextRun
from keel.data.dataset_readers.sequence_tagging import (
    DeclinedBlock,
    OnError,
    Sentence,
    SentenceLines,
    TaggingReader,
)
from keel.data.token_indexers.token_indexer import TokenIndexer

_TAG_COLUMNS = {"upos": 3, "xpos": 4}

# Bytes and limits of the run parse (_parse_run).
_NEWLINE, _TAB, _HASH, _DASH, _DOT, _SKIP = (ord(char) for char in "\n\t#-._")
_CONTROL_END = _NEWLINE + 1
_ZERO, _NINE = ord("0"), ord("9")
_SENT_ID = b"# sent_id = "
# Longer IDs (a sentence of a billion words) take the line parser.
_MAX_ID_DIGITS = 9
_MAX_ID_BYTES = 24
# Tags this long at most are shared (see _shared_fields): 7 bytes and a length fill 64 bits.
_SHARED_BYTES = 7


@DatasetReader.register("conllu")
class ConlluDatasetReader(TaggingReader):
    """One instance per sentence of syntactic words (FORM), tagged with ``tag_label``.

    Comment lines (``#``) are skipped, as are multiword-token ranges (``3-4``: their words follow
    as separate lines) and empty nodes (``8.1``: they exist only in the enhanced graph).
    Word ids must run 1, 2, 3, ... within a sentence; anything else is reported with its line.
    """

    def __init__(
        self,
        tag_label: str = "upos",
        token_indexers: dict[str, TokenIndexer] | None = None,
        label_namespace: str = "labels",
        max_instances: Annotated[int, Positive] | None = None,
        max_line_bytes: Annotated[int, Positive] = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(token_indexers, label_namespace, max_instances, max_line_bytes)
        if tag_label not in _TAG_COLUMNS:
            raise ConfigurationError(
                f"tag_label {tag_label!r} is not a CoNLL-U tag column; expected upos or xpos",
                code=errors.BAD_VALUE,
            )
        self.tag_label = tag_label

    def _sentences(self, file_path: str, on_error: OnError) -> Iterator[Sentence]:
        reader = SentenceLines(file_path, on_error, self.max_line_bytes)
        tag_column = _TAG_COLUMNS[self.tag_label]
        return reader.blocks(_LineParser(self, reader), lambda run: _parse_run(run, tag_column))

    def _problem(self, parts: list[str], expected_id: int) -> tuple[str, str] | None:
        """What is wrong with a word line (split on tabs), or None."""
        if len(parts) != 10:
            return (
                f"{len(parts)} tab-separated column(s), expected 10 (ID FORM LEMMA UPOS XPOS "
                "FEATS HEAD DEPREL DEPS MISC)",
                errors.MISSING_COLUMN,
            )
        word_id = parts[0]
        if "-" in word_id or "." in word_id:
            return None
        if not word_id.isdecimal() or int(word_id) != expected_id:
            return (
                f"word id {word_id!r} where {expected_id} was expected (ids count 1, 2, 3, ... "
                "per sentence; ranges n-m and empty nodes n.k are skipped)",
                errors.BAD_DATA_LINE,
            )
        if parts[_TAG_COLUMNS[self.tag_label]] == "_":
            return (
                f"this word has no {self.tag_label.upper()} tag ('_'); is the tag_label right "
                "for this treebank?",
                errors.MISSING_COLUMN,
            )
        return None


class _LineParser:
    """The CoNLL-U parse one line at a time: ``feed`` each line, ``end`` at the end of the file.

    Blocks the fast path declines and stretches ``read_runs`` gives as lines come here; its
    results define what the fast path must match.
    """

    def __init__(self, owner: ConlluDatasetReader, reader: SentenceLines) -> None:
        self.owner = owner
        self.reader = reader
        self.tag_column = _TAG_COLUMNS[owner.tag_label]
        self.words: list[str] = []
        self.tags: list[str] = []
        self.first = 0  # the line of the sentence's first word
        self.sentence_id: str | None = None

    def feed(self, line_number: int, line: str) -> Sentence | None:
        """Take one line; the finished sentence at a blank line, else None."""
        reader = self.reader
        if not line.strip():
            return self.end()
        if line.startswith("#"):
            self.sentence_id = _sentence_id(line) or self.sentence_id
            return None
        if reader.bad:
            return None
        parts = line.split("\t")
        word_id = parts[0]
        words = self.words
        if (
            len(parts) == 10
            and word_id.isdecimal()
            and int(word_id) == len(words) + 1
            and parts[self.tag_column] != "_"
        ):
            if not words:
                self.first = line_number
            words.append(parts[1])
            self.tags.append(parts[self.tag_column])
            return None
        problem = self.owner._problem(parts, len(words) + 1)
        if problem is not None:
            message, code = problem
            reader.fail(
                DataError(message, path=reader.file_path, line=line_number, excerpt=line, code=code)
            )
        # Otherwise a multiword-token range or an empty node: skipped.
        return None

    def end(self) -> Sentence | None:
        """The sentence read so far (None if none, or if it had a bad line); starts afresh."""
        sentence = None
        if self.words and not self.reader.bad:
            sentence = Sentence(self.words, self.tags, line=self.first, source_id=self.sentence_id)
        self.words, self.tags, self.reader.bad, self.sentence_id = [], [], False, None
        return sentence


def _sentence_id(comment: str) -> str | None:
    """The id a ``# sent_id = ...`` comment line gives, or None (another comment, or empty)."""
    key, _, value = comment[1:].partition("=")
    return (value.strip() or None) if key.strip() == "sent_id" else None


def _parse_run(run: TextRun, tag_column: int) -> Iterator[Sentence | DeclinedBlock]:
    """The blocks of ``run`` in order: a ``Sentence`` for each block the line parser would read
    without a complaint (nothing for a block with no words), or the block's numbered lines
    where it would not.

    Every line of the run is classified at once with numpy over its bytes (blank, comment,
    10-column word line, range or empty node, anything else), so no Python step runs per line;
    only the words and tags of good blocks become strings, in one decode each.
    """
    data = np.frombuffer(run.data, dtype=np.uint8)
    # One pass finds the newlines and tabs (and the rare other control bytes, dropped).
    controls = np.flatnonzero(data < _CONTROL_END)
    kinds = data[controls]
    ends, tabs = controls[kinds == _NEWLINE], controls[kinds == _TAB]
    if not run.data.endswith(b"\n"):
        ends = np.append(ends, len(data))
    starts = np.zeros_like(ends)
    starts[1:] = ends[:-1] + 1
    blank = ends == starts
    comment = ~blank & (data[np.minimum(starts, len(data) - 1)] == _HASH)
    # Each line's tabs: a word, range or empty-node line has exactly 9 (10 columns).
    first_tabs = np.searchsorted(tabs, starts)
    tab_counts = np.searchsorted(tabs, ends) - first_tabs
    columnar = np.flatnonzero(~blank & ~comment & (tab_counts == 9))
    column_tabs = first_tabs[columnar]
    # The ID column: all ASCII digits (a word), or holding "-" or "." (skipped). A longer ID
    # is neither here, so its block goes to the line parser.
    id_starts = starts[columnar]
    id_lengths = tabs[column_tabs] - id_starts
    digits, marks, values = _id_columns(data, id_starts, np.minimum(id_lengths, _MAX_ID_BYTES))
    short = id_lengths <= _MAX_ID_BYTES
    numeric = short & (digits == id_lengths) & (id_lengths > 0) & (id_lengths <= _MAX_ID_DIGITS)
    skipped = short & ~numeric & (marks > 0)
    words = columnar[numeric]
    word_tabs = column_tabs[numeric]  # the index of each word line's first tab
    # A good block's word ids count 1, 2, 3, ... (as numbers: "01" is 1, as for the line parser).
    block_of_line = np.cumsum(blank)
    word_blocks = block_of_line[words]
    block_firsts = np.flatnonzero(np.diff(word_blocks, prepend=-1))  # first word of each
    expected = np.arange(len(words)) + 1
    expected -= np.repeat(block_firsts, np.diff(block_firsts, append=len(words)))
    tag_starts = tabs[word_tabs + tag_column - 1] + 1
    tag_ends = tabs[word_tabs + tag_column]
    no_tag = (tag_ends - tag_starts == 1) & (data[np.minimum(tag_starts, len(data) - 1)] == _SKIP)
    bad_words = (values[numeric] != expected) | no_tag
    good = np.zeros(len(ends), dtype=bool)
    good[columnar[numeric | skipped]] = True
    good[words[bad_words]] = False
    blocks = int(block_of_line[-1]) + 1
    declined = np.zeros(blocks, dtype=bool)
    declined[block_of_line[~blank & ~comment & ~good]] = True
    kept = ~declined[word_blocks]
    counts = np.bincount(word_blocks[kept], minlength=blocks).tolist()
    kept_tabs = word_tabs[kept]
    forms = _fields(data, tabs[kept_tabs] + 1, tabs[kept_tabs + 1])
    tags = _shared_fields(data, tag_starts[kept], tag_ends[kept])
    # Word lines are in block order, so each block's first word is where its block begins
    # (a block without words points past them, at a 0 never used).
    first_words = np.append(words, 0)[np.searchsorted(word_blocks, np.arange(blocks))]
    sentence_ids = _sentence_ids(data, run.data, (starts, ends), comment, block_of_line)
    first_line = run.line
    position = 0
    for block, (refused, count, first_word) in enumerate(
        zip(declined.tolist(), counts, first_words.tolist(), strict=True)
    ):
        if refused:
            lines = range(*np.searchsorted(block_of_line, [block, block + 1]).tolist())
            yield DeclinedBlock(
                [
                    (first_line + index, run.data[starts[index] : ends[index]].decode("utf-8"))
                    for index in lines
                ]
            )
        elif count:
            yield Sentence(
                forms[position : position + count],
                tags[position : position + count],
                line=first_line + first_word,
                source_id=sentence_ids.get(block),
            )
            position += count


def _id_columns(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each ID column: how many ASCII digits it holds, how many "-" or ".", and the number
    its first ``_MAX_ID_DIGITS`` bytes spell (meaningful where they are all digits)."""
    digits = np.zeros(len(starts), dtype=np.int64)
    marks = np.zeros(len(starts), dtype=np.int64)
    values = np.zeros(len(starts), dtype=np.int64)
    for place in range(int(lengths.max(initial=0))):
        inside = lengths > place
        column = data[np.minimum(starts + place, len(data) - 1)]
        digits += inside & (column >= _ZERO) & (column <= _NINE)
        marks += inside & ((column == _DASH) | (column == _DOT))
        if place < _MAX_ID_DIGITS:
            values = np.where(inside, values * 10 + column.astype(np.int64) - _ZERO, values)
    return digits, marks, values


def _fields(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, separator: int = _TAB
) -> list[str]:
    """The byte ranges ``[start, end)`` of ``data`` as strings, decoded in one call.

    No range holds ``separator`` (a tab: they are columns; a newline: they are lines), so
    joining them with it and splitting the decoded text on it gives each back, however many
    bytes its characters take.
    """
    if not len(starts):
        return []
    sizes = ends - starts + 1  # each range and the separator after it
    offsets = np.cumsum(sizes) - sizes
    positions = np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()))
    joined = data[np.minimum(positions, len(data) - 1)]
    joined[offsets + sizes - 1] = separator
    return joined[:-1].tobytes().decode("utf-8").split(chr(separator))


def _shared_fields(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """``_fields`` for a column of few distinct values (tags): each distinct value is decoded
    once and shared by every occurrence, which saves memory and makes looking them up in the
    vocabulary cheap (the hash is computed once, and equal tags are the same object)."""
    lengths = ends - starts
    if not len(starts) or int(lengths.max()) > _SHARED_BYTES:
        return _fields(data, starts, ends)
    # Up to 7 bytes and the length, packed into one integer per value.
    keys = lengths.astype(np.uint64)
    for place in range(int(lengths.max())):
        byte = data[np.minimum(starts + place, len(data) - 1)].astype(np.uint64)
        keys |= np.where(lengths > place, byte, 0).astype(np.uint64) << np.uint64(8 * place + 8)
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    values = np.empty(len(distinct), dtype=object)
    values[:] = _fields(data, starts[first], ends[first])
    return values[inverse].tolist()


def _sentence_ids(
    data: np.ndarray,
    raw: bytes,
    line_bounds: tuple[np.ndarray, np.ndarray],
    comment: np.ndarray,
    block_of_line: np.ndarray,
) -> dict[int, str]:
    """Block -> its sentence id, as the line parser reads ``# sent_id = ...`` comments."""
    starts, ends = line_bounds
    # Usually every "sent_id" in the run opens a "# sent_id = " line: those are read at once.
    lines = np.flatnonzero(comment & (ends - starts >= len(_SENT_ID)))
    for place, byte in enumerate(_SENT_ID):
        lines = lines[data[starts[lines] + place] == byte]
    if raw.count(b"sent_id") == len(lines):
        values = _fields(data, starts[lines] + len(_SENT_ID), ends[lines], separator=_NEWLINE)
        sentence_ids = list(map(str.strip, values))
    else:  # anything else that might be a sent_id comment: each line read as the parser does
        found = [match.start() for match in re.finditer(b"sent_id", raw)]
        lines = np.unique(np.searchsorted(ends, np.array(found, dtype=np.int64)))
        lines = lines[comment[lines]]
        texts = _fields(data, starts[lines], ends[lines], separator=_NEWLINE)
        sentence_ids = [_sentence_id(text) or "" for text in texts]
    # In line order, so the last id of a block wins; an empty one does not count.
    return {
        block: sentence_id
        for block, sentence_id in zip(block_of_line[lines].tolist(), sentence_ids, strict=True)
        if sentence_id
    }

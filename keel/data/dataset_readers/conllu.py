"""``conllu``: Universal Dependencies CoNLL-U files, tagged with UPOS or XPOS."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from operator import itemgetter
from typing import Annotated

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.dataset_reader import MAX_LINE_BYTES, DatasetReader, TextRun
from keel.data.dataset_readers.sequence_tagging import (
    OnError,
    Sentence,
    SentenceLines,
    TaggingReader,
)
from keel.data.token_indexers.token_indexer import TokenIndexer

_TAG_COLUMNS = {"upos": 3, "xpos": 4}


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
        lines = _LineParser(self, reader)
        for item in reader.runs():
            if not isinstance(item, TextRun):
                if (sentence := lines.feed(*item)) is not None:
                    yield sentence
                continue
            # A run ends at a blank line, so the line parser holds nothing across runs.
            line = item.line
            for block in item.text.split("\n\n"):
                start, line = line, line + block.count("\n") + 2
                words = block.lstrip("\n")
                if not words:
                    continue
                start += len(block) - len(words)
                rows = words.rstrip("\n").split("\n")
                sentence = self._block_sentence(rows, start)
                if sentence is None:
                    # Anything unusual (a bad line, a blank line of spaces): line by line.
                    for offset, row in enumerate(rows):
                        if (sentence := lines.feed(start + offset, row)) is not None:
                            yield sentence
                    sentence = lines.end()
                if sentence is not None:
                    yield sentence
        if (sentence := lines.end()) is not None:
            yield sentence

    def _block_sentence(self, rows: list[str], first_line: int) -> Sentence | None:
        """The sentence of one block's ``rows`` when every row is a comment before the words,
        a well-formed word line or a skipped range or empty node; otherwise None, and the line
        parser takes the block. Same result as the line parser, with C string methods."""
        comments = 0
        while comments < len(rows) and rows[comments].startswith("#"):
            comments += 1
        tag_column = _TAG_COLUMNS[self.tag_label]
        parts = list(map(str.split, rows[comments:], repeat("\t"), repeat(tag_column + 1)))
        if not parts or set(map(len, parts)) != {tag_column + 2}:
            return None
        # What the split left unsplit must hold the remaining columns exactly.
        rest_tabs = 8 - tag_column
        tabs = list(map(str.count, map(itemgetter(tag_column + 1), parts), repeat("\t")))
        if tabs.count(rest_tabs) != len(tabs):
            return None
        first_word = 0
        ids = tuple(map(itemgetter(0), parts))
        if ids != _WORD_IDS[: len(ids)]:
            words_only = [part for part in parts if "-" not in part[0] and "." not in part[0]]
            if len(words_only) == len(parts):
                return None
            first_word = parts.index(words_only[0]) if words_only else 0
            parts = words_only
            ids = tuple(map(itemgetter(0), parts))
            if not parts or ids != _WORD_IDS[: len(ids)]:
                return None
        tags = list(map(itemgetter(tag_column), parts))
        if "_" in tags:
            return None
        return Sentence(
            list(map(itemgetter(1), parts)),
            tags,
            line=first_line + comments + first_word,
            source_id=_sentence_id(rows[:comments]),
        )

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
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id" and value.strip():
                self.sentence_id = value.strip()
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


def _sentence_id(comments: list[str]) -> str | None:
    """The last non-empty ``# sent_id = ...`` among ``comments``, as the line parser reads it."""
    sentence_id = None
    for comment in comments:
        key, _, value = comment[1:].partition("=")
        if key.strip() == "sent_id" and value.strip():
            sentence_id = value.strip()
    return sentence_id


# "1", "2", ...: a sentence's word ids in order (longer sentences take the line parser).
_WORD_IDS = tuple(str(number) for number in range(1, 1025))

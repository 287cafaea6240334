"""``conllu``: Universal Dependencies CoNLL-U files, tagged with UPOS or XPOS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from keel.common import errors
from keel.common.constraints import Positive
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.dataset_reader import MAX_LINE_BYTES, DatasetReader
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
        tag_column = _TAG_COLUMNS[self.tag_label]
        reader = SentenceLines(file_path, on_error, self.max_line_bytes)
        words: list[str] = []
        tags: list[str] = []
        first = 0  # the line of the sentence's first word
        sentence_id: str | None = None
        for line_number, line in reader.lines():
            if not line.strip():
                if words and not reader.bad:
                    yield Sentence(words, tags, line=first, source_id=sentence_id)
                words, tags, reader.bad, sentence_id = [], [], False, None
                continue
            if line.startswith("#"):
                key, _, value = line[1:].partition("=")
                if key.strip() == "sent_id" and value.strip():
                    sentence_id = value.strip()
                continue
            if reader.bad:
                continue
            parts = line.split("\t")
            word_id = parts[0]
            if (
                len(parts) == 10
                and word_id.isdecimal()
                and int(word_id) == len(words) + 1
                and parts[tag_column] != "_"
            ):
                if not words:
                    first = line_number
                words.append(parts[1])
                tags.append(parts[tag_column])
                continue
            problem = self._problem(parts, len(words) + 1)
            if problem is not None:
                message, code = problem
                reader.fail(
                    DataError(message, path=file_path, line=line_number, excerpt=line, code=code)
                )
            # Otherwise a multiword-token range or an empty node: skipped.
        if words and not reader.bad:
            yield Sentence(words, tags, line=first, source_id=sentence_id)

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

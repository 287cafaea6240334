"""``conllu``: Universal Dependencies CoNLL-U files, tagged with UPOS or XPOS."""

from __future__ import annotations

from collections.abc import Iterator

from keel.common import errors
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.dataset_readers.sequence_tagging import TaggingReader
from keel.data.instance import Instance
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
        max_instances: int | None = None,
    ) -> None:
        super().__init__(token_indexers, label_namespace, max_instances)
        if tag_label not in _TAG_COLUMNS:
            raise ConfigurationError(
                f"tag_label {tag_label!r} is not a CoNLL-U tag column; expected upos or xpos",
                code=errors.BAD_VALUE,
            )
        self.tag_label = tag_label

    def _read(self, file_path: str) -> Iterator[Instance]:
        tag_column = _TAG_COLUMNS[self.tag_label]
        words: list[str] = []
        tags: list[str] = []
        with open(file_path, encoding="utf-8-sig") as handle:
            for line_number, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if words:
                        yield self.text_to_instance(words, tags)
                        words, tags = [], []
                    continue
                if line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 10:
                    raise DataError(
                        f"{len(parts)} tab-separated column(s), expected 10 (ID FORM LEMMA UPOS "
                        "XPOS FEATS HEAD DEPREL DEPS MISC)",
                        path=file_path,
                        line=line_number,
                        excerpt=line,
                        code=errors.MISSING_COLUMN,
                    )
                word_id = parts[0]
                if "-" in word_id or "." in word_id:
                    continue
                if not word_id.isdigit() or int(word_id) != len(words) + 1:
                    raise DataError(
                        f"word id {word_id!r} where {len(words) + 1} was expected (ids count "
                        "1, 2, 3, ... per sentence; ranges n-m and empty nodes n.k are skipped)",
                        path=file_path,
                        line=line_number,
                        excerpt=line,
                        code=errors.BAD_DATA_LINE,
                    )
                tag = parts[tag_column]
                if tag == "_":
                    raise DataError(
                        f"this word has no {self.tag_label.upper()} tag ('_'); is the tag_label "
                        "right for this treebank?",
                        path=file_path,
                        line=line_number,
                        excerpt=line,
                        code=errors.MISSING_COLUMN,
                    )
                words.append(parts[1])
                tags.append(tag)
        if words:
            yield self.text_to_instance(words, tags)

"""``sequence_tagging``: AllenNLP's ``word###TAG`` lines; also the tagging readers' base class."""

from __future__ import annotations

from collections.abc import Iterator

from keel.common import errors
from keel.common.errors import DataError
from keel.data.dataset_readers.dataset_reader import DatasetReader, default_token_indexers
from keel.data.fields.metadata_field import MetadataField
from keel.data.fields.sequence_label_field import SequenceLabelField
from keel.data.fields.text_field import TextField
from keel.data.instance import Instance
from keel.data.token_indexers.token_indexer import TokenIndexer
from keel.data.tokenizers.token import Token


class TaggingReader(DatasetReader):
    """Base of the tagging readers: instances with ``tokens``, ``tags`` and ``metadata``."""

    def __init__(
        self,
        token_indexers: dict[str, TokenIndexer] | None = None,
        label_namespace: str = "labels",
        max_instances: int | None = None,
    ) -> None:
        super().__init__(max_instances=max_instances)
        self.token_indexers = default_token_indexers(token_indexers)
        self.label_namespace = label_namespace

    def text_to_instance(  # type: ignore[override]
        self, tokens: list[str], tags: list[str] | None = None
    ) -> Instance:
        """An instance of ``tokens`` (words) and, when given, one tag per word."""
        text_field = TextField([Token(word) for word in tokens], self.token_indexers)
        fields: dict = {"tokens": text_field, "metadata": MetadataField({"words": list(tokens)})}
        if tags is not None:
            fields["tags"] = SequenceLabelField(list(tags), text_field, self.label_namespace)
        return Instance(fields)


@DatasetReader.register("sequence_tagging")
class SequenceTaggingDatasetReader(TaggingReader):
    """One sentence per line: tokens separated by ``token_delimiter`` (None: any whitespace),
    each ``word<word_tag_delimiter>TAG``. The tag is what follows the last delimiter, so words
    may contain it. Blank lines are skipped.
    """

    def __init__(
        self,
        word_tag_delimiter: str = "###",
        token_delimiter: str | None = None,
        token_indexers: dict[str, TokenIndexer] | None = None,
        label_namespace: str = "labels",
        max_instances: int | None = None,
    ) -> None:
        super().__init__(token_indexers, label_namespace, max_instances)
        if not word_tag_delimiter:
            raise ValueError("word_tag_delimiter must not be empty")
        self.word_tag_delimiter = word_tag_delimiter
        self.token_delimiter = token_delimiter

    def _read(self, file_path: str) -> Iterator[Instance]:
        delimiter = self.word_tag_delimiter
        with open(file_path, encoding="utf-8-sig") as handle:
            for line_number, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    continue
                pieces = line.split(self.token_delimiter)
                words, tags = [], []
                for piece in pieces:
                    word, sep, tag = piece.rpartition(delimiter)
                    if not sep or not word or not tag:
                        raise DataError(
                            f"token {piece!r} is not word{delimiter}TAG "
                            f"(word_tag_delimiter={delimiter!r}, "
                            f"token_delimiter={self.token_delimiter!r})",
                            path=file_path,
                            line=line_number,
                            excerpt=line,
                            code=errors.BAD_DATA_LINE,
                        )
                    words.append(word)
                    tags.append(tag)
                yield self.text_to_instance(words, tags)

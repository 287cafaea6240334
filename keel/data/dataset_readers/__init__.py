"""Dataset readers: data files -> instances (``text_classification_json``, ``tsv``, taggers)."""

from keel.data.dataset_readers.conll2003 import Conll2003DatasetReader
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.dataset_readers.sequence_tagging import SequenceTaggingDatasetReader
from keel.data.dataset_readers.text_classification_json import TextClassificationJsonReader
from keel.data.dataset_readers.tsv import TsvReader

__all__ = [
    "Conll2003DatasetReader",
    "ConlluDatasetReader",
    "DatasetReader",
    "SequenceTaggingDatasetReader",
    "TextClassificationJsonReader",
    "TsvReader",
]

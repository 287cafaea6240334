"""Dataset readers: data files -> instances (``text_classification_json``, ``tsv``, taggers)."""

from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.dataset_readers.text_classification_json import TextClassificationJsonReader
from keel.data.dataset_readers.tsv import TsvReader

__all__ = ["DatasetReader", "TextClassificationJsonReader", "TsvReader"]

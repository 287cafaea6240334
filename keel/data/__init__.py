"""Data: tokens, tokenizers, token indexers, fields, instances, vocabulary, readers, loaders."""

from keel.data import (
    data_loaders,
    dataset_readers,
    fields,
    samplers,
    token_indexers,
    tokenizers,
)
from keel.data.batch import collate
from keel.data.data_loaders import DataLoader, MultiProcessDataLoader
from keel.data.dataset_readers import DatasetReader
from keel.data.fields import (
    Field,
    LabelField,
    MetadataField,
    SequenceLabelField,
    TextField,
    TextFieldTensors,
)
from keel.data.instance import Instance
from keel.data.samplers import BatchSampler, BucketBatchSampler
from keel.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer, TokenIndexer
from keel.data.tokenizers import (
    CharacterTokenizer,
    Token,
    Tokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
)
from keel.data.vocabulary import Vocabulary

__all__ = [
    "BatchSampler",
    "BucketBatchSampler",
    "CharacterTokenizer",
    "DataLoader",
    "DatasetReader",
    "Field",
    "Instance",
    "LabelField",
    "MetadataField",
    "MultiProcessDataLoader",
    "SequenceLabelField",
    "SingleIdTokenIndexer",
    "TextField",
    "TextFieldTensors",
    "Token",
    "TokenCharactersIndexer",
    "TokenIndexer",
    "Tokenizer",
    "Vocabulary",
    "WhitespaceTokenizer",
    "WordTokenizer",
    "collate",
    "data_loaders",
    "dataset_readers",
    "fields",
    "samplers",
    "token_indexers",
    "tokenizers",
]

"""Every data component builds from a plain config through keel's construction engine."""

import pytest

import keel.data  # noqa: F401  (registers every data component)
from keel.common.errors import ConfigurationError
from keel.common.from_params import build, validate
from keel.data import (
    DataLoader,
    DatasetReader,
    MultiProcessDataLoader,
    SingleIdTokenIndexer,
    TokenCharactersIndexer,
    TokenIndexer,
    Tokenizer,
    Vocabulary,
)
from keel.data.dataset_readers import TextClassificationJsonReader, TsvReader
from keel.data.samplers import BucketBatchSampler
from keel.data.tokenizers import CharacterTokenizer, WhitespaceTokenizer, WordTokenizer


def test_build_tsv_reader_with_word_tokenizer_and_indexers(fixtures_dir):
    reader = build(
        DatasetReader,
        {
            "type": "tsv",
            "tokenizer": {"type": "word", "lowercase": True},
            "token_indexers": {
                "tokens": {"type": "single_id", "lowercase_tokens": True},
                "chars": {"type": "characters", "min_padding_length": 3},
            },
            "max_instances": 2,
        },
    )
    assert isinstance(reader, TsvReader)
    assert isinstance(reader.tokenizer, WordTokenizer) and reader.tokenizer.lowercase
    assert isinstance(reader.token_indexers["chars"], TokenCharactersIndexer)
    assert reader.token_indexers["chars"].min_padding_length == 3
    assert len(list(reader.read(fixtures_dir / "tiny.tsv"))) == 2


def test_build_json_reader_defaults():
    reader = build(DatasetReader, {"type": "text_classification_json"})
    assert isinstance(reader, TextClassificationJsonReader)
    assert isinstance(reader.tokenizer, WhitespaceTokenizer)
    assert isinstance(reader.token_indexers["tokens"], SingleIdTokenIndexer)
    resolved = validate(DatasetReader, {"type": "text_classification_json"}).resolved
    assert resolved["text_key"] == "text" and resolved["max_instances"] is None


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        ({"type": "whitespace"}, WhitespaceTokenizer),
        ({}, WhitespaceTokenizer),
        ({"type": "word"}, WordTokenizer),
        ({"type": "character", "start_tokens": ["<s>"]}, CharacterTokenizer),
    ],
)
def test_build_tokenizers(config, cls):
    assert type(build(Tokenizer, config)) is cls


def test_build_token_indexers():
    single = build(TokenIndexer, {"namespace": "words"})
    assert isinstance(single, SingleIdTokenIndexer) and single.namespace == "words"
    chars = build(
        TokenIndexer,
        {
            "type": "characters",
            "character_tokenizer": {"type": "character", "lowercase_characters": True},
        },
    )
    assert chars.character_tokenizer.lowercase_characters


def test_build_vocabulary_constructors(fixtures_dir):
    instances = list(TsvReader().read(fixtures_dir / "tiny.tsv"))
    from_instances = build(
        Vocabulary, {"min_count": {"tokens": 2}}, extras={"instances": instances}
    )
    assert from_instances.get_vocab_size("tokens") == 7
    from_files = build(
        Vocabulary, {"type": "from_files", "directory": str(fixtures_dir / "vocabulary")}
    )
    assert from_files == Vocabulary.from_instances(instances)
    assert build(Vocabulary, {"type": "empty"}).get_namespaces() == []
    extended = build(
        Vocabulary,
        {"type": "from_files_and_instances", "directory": str(fixtures_dir / "vocabulary")},
        extras={"instances": instances},
    )
    assert extended == from_files
    for size in (2, {"tokens": 2}):
        capped = build(Vocabulary, {"max_vocab_size": size}, extras={"instances": instances})
        assert capped.get_vocab_size("tokens") == 4
    patterns = build(
        Vocabulary, {"non_padded_namespaces": ["tokens"]}, extras={"instances": instances}
    )
    assert not patterns.is_padded("tokens") and patterns.is_padded("labels")
    assert Vocabulary.default_implementation == "from_instances"


def test_build_data_loader_with_bucket_sampler(fixtures_dir):
    instances = list(TsvReader().read(fixtures_dir / "tiny.tsv"))
    loader = build(
        DataLoader,
        {"batch_sampler": {"type": "bucket", "batch_size": 2, "padding_noise": 0.0}, "seed": 3},
        extras={"instances": instances},
    )
    assert isinstance(loader, MultiProcessDataLoader)
    assert isinstance(loader.batch_sampler, BucketBatchSampler)
    loader.index_with(Vocabulary.from_instances(instances))
    assert sum(len(batch["label"]) for batch in loader) == 3
    simple = build(DataLoader, {"type": "simple", "batch_size": 2}, extras={"instances": instances})
    assert len(simple) == 2


def test_bad_data_configs_are_reported_by_path():
    with pytest.raises(ConfigurationError) as info:
        build(DatasetReader, {"type": "tsv", "tokenizer": {"type": "wrod"}, "text_colum": "x"})
    paths = {issue.path for issue in info.value.issues}
    assert "tokenizer.type" in paths or "tokenizer" in paths
    assert any("text_colum" in issue.path for issue in info.value.issues)

import filecmp
import os
from pathlib import Path

import pytest

from keel.common import errors
from keel.common.errors import ConfigurationError, DataError
from keel.data.dataset_readers import TsvReader
from keel.data.fields import LabelField, TextField
from keel.data.instance import Instance
from keel.data.token_indexers import SingleIdTokenIndexer
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _instances(*texts: str, namespace: str = "tokens") -> list[Instance]:
    indexers = {"tokens": SingleIdTokenIndexer(namespace=namespace)}
    return [Instance({"text": TextField([Token(w) for w in t.split()], indexers)}) for t in texts]


def test_vocabulary_from_instances_orders_by_count_then_first_seen(fixtures_dir):
    vocab = Vocabulary.from_instances(TsvReader().read(fixtures_dir / "tiny.tsv"))
    tokens = vocab.get_index_to_token_vocabulary("tokens")
    assert tokens == {
        0: "@@PADDING@@", 1: "@@UNKNOWN@@", 2: ".", 3: "the", 4: "movie", 5: "is",
        6: "good", 7: "plot", 8: "thin", 9: "a",
    }  # fmt: skip
    assert vocab.get_token_to_index_vocabulary("labels") == {"1": 0, "0": 1}
    assert vocab.get_vocab_size("tokens") == 10
    assert vocab.get_token_index("unseen") == 1
    assert vocab.get_token_from_index(3) == "the"


def test_vocabulary_save_is_byte_identical_to_hand_written_allennlp_fixture(fixtures_dir, tmp_path):
    vocab = Vocabulary.from_instances(TsvReader().read(fixtures_dir / "tiny.tsv"))
    vocab.save_to_files(str(tmp_path / "vocab"))
    assert _files(tmp_path / "vocab") == _files(fixtures_dir / "vocabulary")


def test_vocabulary_loads_allennlp_fixture_and_round_trips(fixtures_dir, tmp_path):
    vocab = Vocabulary.from_files(str(fixtures_dir / "vocabulary"))
    assert vocab.get_token_index("@@PADDING@@") == 0
    assert vocab.get_token_index("@@UNKNOWN@@") == 1
    assert vocab.get_token_index(".") == 2
    assert vocab.get_token_index("1", "labels") == 0
    assert not vocab.is_padded("labels") and vocab.is_padded("tokens")
    vocab.save_to_files(str(tmp_path / "again"))
    match, mismatch, error = filecmp.cmpfiles(
        fixtures_dir / "vocabulary", tmp_path / "again", sorted(os.listdir(tmp_path / "again"))
    )
    assert not mismatch and not error and len(match) == 3
    built = Vocabulary.from_instances(TsvReader().read(fixtures_dir / "tiny.tsv"))
    assert vocab == built


def test_vocabulary_file_without_final_newline_loads(tmp_path):
    (tmp_path / "non_padded_namespaces.txt").write_text("*tags\n*labels\n", encoding="utf-8")
    (tmp_path / "tokens.txt").write_text("@@UNKNOWN@@\nx", encoding="utf-8")
    (tmp_path / ".lock").write_text("", encoding="utf-8")  # AllenNLP's lock file is skipped
    vocab = Vocabulary.from_files(str(tmp_path))
    assert vocab.get_index_to_token_vocabulary() == {0: "@@PADDING@@", 1: "@@UNKNOWN@@", 2: "x"}
    assert vocab.get_namespaces() == ["tokens"]


def test_vocabulary_newlines_in_tokens_are_escaped(tmp_path):
    vocab = Vocabulary()
    vocab.add_token_to_namespace("a\nb")
    vocab.save_to_files(str(tmp_path))
    assert (tmp_path / "tokens.txt").read_bytes() == b"@@UNKNOWN@@\na@@NEWLINE@@b\n"
    assert Vocabulary.from_files(str(tmp_path)).get_token_index("a\nb") == 2


def test_vocabulary_min_count_and_max_vocab_size():
    instances = _instances("a a a b b c", "d")
    frequent = Vocabulary.from_instances(instances, min_count={"tokens": 2})
    assert frequent.get_token_to_index_vocabulary() == {
        "@@PADDING@@": 0, "@@UNKNOWN@@": 1, "a": 2, "b": 3,
    }  # fmt: skip
    capped = Vocabulary.from_instances(instances, max_vocab_size=2)
    assert capped.get_vocab_size() == 4  # padding + OOV + the two most frequent
    per_namespace = Vocabulary.from_instances(instances, max_vocab_size={"other": 1})
    assert per_namespace.get_vocab_size() == 6


def test_vocabulary_non_padded_namespace_patterns():
    vocab = Vocabulary.from_instances(
        _instances("x y", namespace="ner_tags") + _instances("z", namespace="mine"),
        non_padded_namespaces=["mine"],
    )
    assert vocab.get_token_to_index_vocabulary("mine") == {"z": 0}
    # "*tags" is no longer a pattern, so ner_tags is padded.
    assert vocab.is_padded("ner_tags")
    default = Vocabulary.from_instances(_instances("x y", namespace="ner_tags"))
    assert default.get_token_to_index_vocabulary("ner_tags") == {"x": 0, "y": 1}


def test_vocabulary_non_padded_namespaces_file_lists_patterns(tmp_path):
    Vocabulary(non_padded_namespaces=["b", "*a", "b"]).save_to_files(str(tmp_path))
    assert (tmp_path / "non_padded_namespaces.txt").read_bytes() == b"b\n*a\n"


def test_vocabulary_tokens_to_add_and_empty():
    vocab = Vocabulary.from_instances([], tokens_to_add={"tokens": ["@@MASK@@"]})
    assert vocab.get_token_index("@@MASK@@") == 2
    empty = Vocabulary.empty()
    assert empty.get_vocab_size("tokens") == 2
    assert empty.get_vocab_size("labels") == 0


def test_vocabulary_unknown_label_is_unseen_label_error():
    vocab = Vocabulary(counter={"labels": {"pos": 1}})
    with pytest.raises(DataError) as info:
        vocab.get_token_index("neg", "labels")
    assert info.value.code == errors.UNSEEN_LABEL


def test_vocabulary_from_files_errors(tmp_path):
    with pytest.raises(DataError) as info:
        Vocabulary.from_files(str(tmp_path / "nope"))
    assert info.value.code == errors.DATA_NOT_FOUND
    with pytest.raises(DataError) as info:
        Vocabulary.from_files(str(tmp_path))
    assert info.value.code == errors.BAD_VOCABULARY
    (tmp_path / "non_padded_namespaces.txt").write_text("*labels\n", encoding="utf-8")
    (tmp_path / "tokens.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        Vocabulary.from_files(str(tmp_path))
    assert info.value.code == errors.BAD_VOCABULARY
    assert "tokens.txt" in str(info.value) and "@@UNKNOWN@@" in str(info.value)
    (tmp_path / "tokens.txt").write_text("@@UNKNOWN@@\na\na\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        Vocabulary.from_files(str(tmp_path))
    assert "tokens.txt:3" in str(info.value)


def test_vocabulary_rejects_non_string_tokens():
    with pytest.raises(TypeError):
        Vocabulary().add_token_to_namespace(3)  # type: ignore[arg-type]


def test_vocabulary_label_field_round_trip(tmp_path):
    instances = [Instance({"label": LabelField(lbl)}) for lbl in ["b", "a", "b"]]
    vocab = Vocabulary.from_instances(instances)
    vocab.save_to_files(str(tmp_path))
    assert (tmp_path / "labels.txt").read_bytes() == b"b\na\n"
    assert Vocabulary.from_files(str(tmp_path)) == vocab


def test_vocabulary_from_files_and_instances_appends_new_tokens(fixtures_dir):
    extended = Vocabulary.from_files_and_instances(
        _instances("the new new words"), str(fixtures_dir / "vocabulary")
    )
    saved = Vocabulary.from_files(str(fixtures_dir / "vocabulary"))
    for token, index in saved.get_token_to_index_vocabulary().items():
        assert extended.get_token_index(token) == index
    assert extended.get_token_index("new") == 10 and extended.get_token_index("words") == 11
    assert extended.get_token_to_index_vocabulary("labels") == {"1": 0, "0": 1}


def test_vocabulary_extension_cannot_unpad_a_namespace(fixtures_dir):
    vocab = Vocabulary.from_files(str(fixtures_dir / "vocabulary"))
    with pytest.raises(ConfigurationError, match="'tokens' is padded"):
        vocab.extend_from_instances([], non_padded_namespaces=["tokens"])


def test_vocabulary_get_tokens_is_index_order_and_a_copy():
    vocab = Vocabulary(tokens_to_add={"tokens": ["b", "a"]})
    tokens = vocab.get_tokens("tokens")
    assert tokens == ["@@PADDING@@", "@@UNKNOWN@@", "b", "a"]
    tokens.append("c")
    assert vocab.get_vocab_size("tokens") == 4

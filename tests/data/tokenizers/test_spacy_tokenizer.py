"""The ``spacy`` tokenizer splits text exactly as AllenNLP's ``SpacyTokenizer`` did.

The probe corpus (tests/fixtures/allennlp/spacy_probe.jsonl) holds, per line, a text, its
tokens and where they come from: the expected tokens of AllenNLP's own tests
(``spacy_tokenizer_test.py``, and ``text_classification_json_test.py`` on the ag_news fixture,
spaCy 3 variant), and probes of contractions, quotes, URLs, e-mail addresses, non-ASCII text,
emoji and whitespace recorded from spaCy's English tokenizer, which is what AllenNLP's
tokenizer runs before it drops whitespace tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("spacy")

from keel.common.errors import ConfigurationError, DataError  # noqa: E402
from keel.common.from_params import build  # noqa: E402
from keel.common.optional_dependencies import MissingDependencyError  # noqa: E402
from keel.data.tokenizers.spacy_tokenizer import SpacyTokenizer  # noqa: E402
from keel.data.tokenizers.tokenizer import Tokenizer  # noqa: E402

PROBES = Path(__file__).resolve().parents[2] / "fixtures" / "allennlp" / "spacy_probe.jsonl"


def _probes() -> list[dict]:
    return [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tokenizer() -> SpacyTokenizer:
    # AllenNLP's defaults: language en_core_web_sm (not installed here: its language's rules).
    return build(Tokenizer, {"type": "spacy"})


def test_probe_corpus_covers_what_the_issue_names() -> None:
    texts = " ".join(probe["text"] for probe in _probes())
    sources = {probe["source"].split("::")[0] for probe in _probes()}
    assert "n't" in texts and "https://" in texts and "é" in texts and "\u2019" in texts
    assert any(source.startswith("allennlp tests/") for source in sources)


@pytest.mark.parametrize("probe", _probes(), ids=lambda probe: probe["text"][:30])
def test_tokens_equal_allennlps_on_the_probe_corpus(tokenizer, probe) -> None:
    tokens = tokenizer.tokenize(probe["text"])
    assert [token.text for token in tokens] == probe["tokens"], probe["source"]
    for token in tokens:  # offsets point into the text, as AllenNLP's tests check
        assert probe["text"][token.idx : token.idx_end] == token.text


def test_batch_tokenize_equals_one_at_a_time(tokenizer) -> None:
    texts = [probe["text"] for probe in _probes()]
    assert tokenizer.batch_tokenize(texts) == [tokenizer.tokenize(text) for text in texts]


def test_split_on_spaces_start_and_end_tokens_as_in_allennlp() -> None:
    tokenizer = build(
        Tokenizer,
        {
            "type": "spacy",
            "split_on_spaces": True,
            "start_tokens": ["@start@", "@s2@"],
            "end_tokens": ["@end@"],
        },
    )
    tokens = tokenizer.tokenize("don't split\nthis , text")
    assert [token.text for token in tokens] == [
        "@start@",
        "@s2@",
        "don't",
        "split\nthis",
        ",",
        "text",
        "@end@",
    ]
    assert [token.idx for token in tokens] == [0, 0, 0, 6, 17, 19, -1]
    with pytest.raises(DataError, match="empty token at character 6"):
        tokenizer.tokenize("don't  split")  # AllenNLP's spaCy Doc refused it too


def test_a_saved_spacy_pipeline_is_loaded_by_path_and_only_its_tokenizer_runs(tmp_path) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.tokenizer.add_special_case("keelnlp", [{"ORTH": "keel"}, {"ORTH": "nlp"}])
    nlp.to_disk(tmp_path / "pipeline")
    tokenizer = SpacyTokenizer(language=str(tmp_path / "pipeline"))
    assert [token.text for token in tokenizer.tokenize("keelnlp isn't")] == [
        "keel",
        "nlp",
        "is",
        "n't",
    ]
    material = json.loads(tokenizer.fingerprint_material())
    assert material["tokenizer_of"].startswith("en_pipeline")
    assert material["spacy"] == spacy.__version__


def test_fingerprint_names_the_spacy_version_and_the_rules_used(tokenizer) -> None:
    import spacy

    material = json.loads(tokenizer.fingerprint_material())
    assert material == {
        "spacy": spacy.__version__,
        "tokenizer_of": "spacy.blank('en')",
        "split_on_spaces": False,
        "start_tokens": [],
        "end_tokens": [],
    }


def test_an_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigurationError, match="neither an installed spaCy package"):
        SpacyTokenizer(language="Klingon_core_sm")


def test_without_spacy_installed_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'keel\[spacy\]'"):
        SpacyTokenizer()

from __future__ import annotations

import numpy

from keel.data.dataset_readers.conll2003 import Conll2003DatasetReader
from keel.predict.sentence_tagger import SentenceTaggerPredictor


def predictor() -> SentenceTaggerPredictor:
    # Only the reader and the output shaping run here; the model is never called.
    return SentenceTaggerPredictor(model=None, dataset_reader=Conll2003DatasetReader())


def test_sentence_tagger_splits_a_sentence_with_the_word_tokenizer() -> None:
    instance = predictor().json_to_instance({"sentence": "Maria didn't visit Oslo."})
    assert instance.fields["metadata"].metadata["words"] == [
        "Maria",
        "did",
        "n't",
        "visit",
        "Oslo",
        ".",
    ]
    tokens = predictor().json_to_instance({"tokens": ["Acme", "Corp"]})
    assert tokens.fields["metadata"].metadata["words"] == ["Acme", "Corp"]


def test_sentence_tagger_reports_spans_for_span_tags_and_none_for_pos_tags() -> None:
    words = ["Maria", "Lopez", "visited", "New", "York", "."]
    output = {
        "words": words,
        "tags": ["B-PER", "L-PER", "O", "B-LOC", "L-LOC", "O"],
        "logits": numpy.zeros((6, 3)),
    }
    result = predictor().to_json(output)
    assert result["spans"] == [
        {"label": "PER", "start": 0, "end": 1, "text": "Maria Lopez"},
        {"label": "LOC", "start": 3, "end": 4, "text": "New York"},
    ]
    pos = predictor().to_json({"words": ["I", "ran"], "tags": ["PRON", "VERB"]})
    assert pos == {"words": ["I", "ran"], "tags": ["PRON", "VERB"]}


def test_predictors_refuse_inputs_over_their_limits():
    from keel.archive.model_archive import load_archive
    from keel.common import errors
    from keel.common.errors import DataError
    from keel.predict.predictor import Predictor

    fixtures = __import__("pathlib").Path(__file__).parents[1] / "fixtures" / "archives"
    for name, big in (
        ("format2-classifier", {"text": "word " * 30_000}),
        ("format2-tagger", {"tokens": ["word"] * 20_000}),
        ("format2-tagger", {"sentence": "word " * 30_000}),
    ):
        predictor = Predictor.from_archive(load_archive(fixtures / f"{name}.tar.gz"))
        with __import__("pytest").raises(DataError) as raised:
            predictor.predict_json(big)
        assert raised.value.code == errors.INPUT_TOO_LARGE
        predictor.max_input_characters = 200_000
        predictor.max_input_tokens = 50_000
        predictor.predict_json(big)  # within the raised limits: predicted

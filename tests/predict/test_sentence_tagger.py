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

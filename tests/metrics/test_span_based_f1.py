"""span_f1 against hand-computed conlleval counts."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.data.vocabulary import Vocabulary
from keel.metrics.metric import Metric
from keel.metrics.span_based_f1 import SpanBasedF1Measure

TOL = 1e-9


def _vocab(labels: list[str], namespace: str = "labels") -> Vocabulary:
    vocab = Vocabulary()
    for label in labels:
        vocab.add_token_to_namespace(label, namespace)
    return vocab


def _ids(vocab: Vocabulary, rows: list[list[str]], namespace: str = "labels") -> torch.Tensor:
    width = max(len(row) for row in rows)
    padded = [
        [vocab.get_token_index(t, namespace) for t in row] + [0] * (width - len(row))
        for row in rows
    ]
    return torch.tensor(padded)


def _mask(rows: list[list[str]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([[True] * len(row) + [False] * (width - len(row)) for row in rows])


def _score(labels, encoding, gold, predicted):
    vocab = _vocab(labels)
    metric = SpanBasedF1Measure(vocab, label_encoding=encoding)
    metric(_ids(vocab, predicted), _ids(vocab, gold), _mask(gold))
    return metric.get_metric()


BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def test_span_based_f1_bio_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    # PER: tp 1. LOC: fn 1. ORG: fp 2 (ORG(0,3) in row 1, ORG(0,0) in row 2), fn 1 (ORG(0,1)).
    metrics = _score(BIO, "BIO", gold, predicted)
    assert metrics["precision-PER"] == metrics["recall-PER"] == metrics["f1-measure-PER"] == 1.0
    assert metrics["recall-LOC"] == 0.0 and metrics["precision-LOC"] == 0.0
    assert metrics["precision-ORG"] == 0.0 and metrics["f1-measure-ORG"] == 0.0
    # overall: tp 1, fp 2, fn 2 -> P = 1/3, R = 1/3, F1 = 1/3.
    assert metrics["precision-overall"] == pytest.approx(1 / 3, abs=TOL)
    assert metrics["recall-overall"] == pytest.approx(1 / 3, abs=TOL)
    assert metrics["f1-measure-overall"] == pytest.approx(1 / 3, abs=TOL)


def test_span_based_f1_iob1_i_after_o_starts_a_span():
    labels = ["O", "I-PER", "B-PER", "I-LOC"]
    gold = [["O", "I-PER", "I-PER", "B-PER", "O", "I-LOC"]]
    # Predicted: the B- split is missed (one long PER), LOC found.
    predicted = [["O", "I-PER", "I-PER", "I-PER", "O", "I-LOC"]]
    metrics = _score(labels, "IOB1", gold, predicted)
    # gold: PER(1,2), PER(3,3), LOC(5,5); predicted: PER(1,3), LOC(5,5). tp 1, fp 1, fn 2.
    assert metrics["precision-overall"] == pytest.approx(1 / 2, abs=TOL)
    assert metrics["recall-overall"] == pytest.approx(1 / 3, abs=TOL)
    assert metrics["f1-measure-overall"] == pytest.approx(0.4, abs=TOL)
    assert metrics["f1-measure-LOC"] == 1.0


BIOUL = ["O", "B-PER", "I-PER", "L-PER", "U-PER", "U-LOC", "B-LOC", "L-LOC"]


def test_span_based_f1_bioul_ill_formed_predictions_are_read_like_conlleval():
    gold = [["U-PER", "O", "B-LOC", "L-LOC", "O"]]
    # B without L reads as a one-token span (matches U-PER); I-LOC after O opens LOC(2,3).
    predicted = [["B-PER", "O", "B-LOC", "I-PER", "L-PER"]]
    # predicted spans: PER(0,0), LOC(2,2), PER(3,4). gold: PER(0,0), LOC(2,3).
    metrics = _score(BIOUL, "BIOUL", gold, predicted)
    assert metrics["precision-overall"] == pytest.approx(1 / 3, abs=TOL)
    assert metrics["recall-overall"] == pytest.approx(1 / 2, abs=TOL)
    assert metrics["f1-measure-overall"] == pytest.approx(0.4, abs=TOL)
    assert metrics["precision-PER"] == pytest.approx(1 / 2, abs=TOL)
    assert metrics["recall-LOC"] == 0.0


def test_span_based_f1_accumulates_masks_and_resets():
    vocab = _vocab(BIO)
    metric = Metric.by_name("span_f1")(vocab, label_encoding="BIO")
    gold = [["B-PER", "O"], ["B-LOC"]]
    predicted_ids = _ids(vocab, [["B-PER", "O"], ["B-LOC", "B-PER"]])  # beyond the mask
    metric(predicted_ids, _ids(vocab, gold), _mask(gold))
    scores = torch.nn.functional.one_hot(predicted_ids, len(BIO)).float()  # (B, T, C) works too
    metric(scores, _ids(vocab, gold), _mask(gold))
    assert metric.get_metric(reset=True)["f1-measure-overall"] == 1.0
    assert metric.get_metric() == {
        "precision-overall": 0.0,
        "recall-overall": 0.0,
        "f1-measure-overall": 0.0,
    }


def test_span_based_f1_ignore_classes():
    labels = ["O", "B-V", "B-ARG0", "I-ARG0"]
    vocab = _vocab(labels)
    metric = SpanBasedF1Measure(vocab, ignore_classes=["V"])
    gold = [["B-ARG0", "I-ARG0", "B-V"]]
    predicted = [["B-ARG0", "I-ARG0", "O"]]
    metric(_ids(vocab, predicted), _ids(vocab, gold), _mask(gold))
    metrics = metric.get_metric()
    assert "f1-measure-V" not in metrics and metrics["f1-measure-overall"] == 1.0


def test_span_based_f1_rejects_non_span_labels():
    with pytest.raises(ConfigurationError, match="'NOUN'.*not a span tag of BIO"):
        SpanBasedF1Measure(_vocab(["NOUN", "VERB"]))
    with pytest.raises(ConfigurationError, match="U-PER"):
        SpanBasedF1Measure(_vocab(["O", "U-PER"]), label_encoding="BIO")
    with pytest.raises(ConfigurationError, match="label_encoding"):
        SpanBasedF1Measure(_vocab(["O"]), label_encoding="BMES")

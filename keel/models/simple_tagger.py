"""``simple_tagger``: embed, encode, and predict each token's tag independently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import torch

from keel.common import errors
from keel.common.constraints import Probability, Supplied
from keel.common.errors import ConfigurationError, ModelError
from keel.data.vocabulary import Vocabulary
from keel.metrics.categorical_accuracy import CategoricalAccuracy
from keel.metrics.span_based_f1 import SpanBasedF1Measure
from keel.models.model import GoldenOutputs, MetricNames, Model
from keel.modules.feedforward import FeedForward
from keel.modules.regularizers import RegularizerApplicator
from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder
from keel.modules.util import (
    TextFieldTensors,
    get_text_field_mask,
    sequence_cross_entropy_with_logits,
)


@Model.register("simple_tagger")
class SimpleTagger(Model):
    """A tagger configured as AllenNLP's ``simple_tagger``: text_field_embedder -> encoder ->
    [dropout] -> [feedforward] -> a linear layer over the tags of ``label_namespace``, trained
    with token-averaged cross entropy.

    Metrics: ``accuracy``, ``accuracy3``, and with ``calculate_span_f1`` (on by default when
    ``label_encoding`` is set) span precision/recall/F1 (per type too with ``verbose_metrics``).
    """

    default_predictor = "sentence_tagger"
    golden_outputs = GoldenOutputs(scores=("logits",), decoded=("tags",), mask="mask")

    def __init__(
        self,
        vocab: Annotated[Vocabulary, Supplied],
        text_field_embedder: TextFieldEmbedder,
        encoder: Seq2SeqEncoder,
        label_namespace: str = "labels",
        feedforward: FeedForward | None = None,
        calculate_span_f1: bool | None = None,
        label_encoding: str | None = None,
        dropout: Annotated[float, Probability] | None = None,
        verbose_metrics: bool = False,
        regularizer: RegularizerApplicator | None = None,
    ) -> None:
        super().__init__(vocab, regularizer)
        self.label_namespace = label_namespace
        self.text_field_embedder = text_field_embedder
        self.encoder = encoder
        self._feedforward = feedforward
        self.dropout = torch.nn.Dropout(dropout) if dropout else None
        self._verbose_metrics = verbose_metrics
        output_dim = check_stage_dims(text_field_embedder, encoder, feedforward)
        self.num_tags = tag_count(vocab, label_namespace)
        self.tag_projection_layer = torch.nn.Linear(output_dim, self.num_tags)
        self._tag_names = tag_names(vocab, label_namespace, self.num_tags)
        self.metrics = {
            "accuracy": CategoricalAccuracy(),
            "accuracy3": CategoricalAccuracy(top_k=3),
        }
        self._f1_metric = span_metric(vocab, label_namespace, calculate_span_f1, label_encoding)

    def forward(
        self,
        tokens: TextFieldTensors,
        tags: torch.Tensor | None = None,
        metadata: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``logits`` and ``class_probabilities`` (B, T, num_tags), ``mask`` (B, T), and
        ``loss`` when gold ``tags`` (B, T) are given."""
        mask = get_text_field_mask(tokens)
        encoded = self.encode(tokens, mask)
        logits = self.tag_projection_layer(encoded)
        output: dict[str, Any] = {
            "logits": logits,
            "class_probabilities": torch.softmax(logits, dim=-1),
            "mask": mask,
        }
        if tags is not None:
            output["loss"] = sequence_cross_entropy_with_logits(logits, tags, mask)
            for metric in self.metrics.values():
                metric(logits, tags, mask)
            if self._f1_metric is not None:
                self._f1_metric(logits, tags, mask)
        if metadata is not None:
            output["words"] = [item["words"] for item in metadata]
        return output

    def encode(self, tokens: TextFieldTensors, mask: torch.Tensor) -> torch.Tensor:
        embedded = self.text_field_embedder(tokens)
        if self.dropout is not None:
            embedded = self.dropout(embedded)
        encoded = self.encoder(embedded, mask)
        if self.dropout is not None:
            encoded = self.dropout(encoded)
        if self._feedforward is not None:
            encoded = self._feedforward(encoded)
        return encoded

    def make_output_human_readable(self, output_dict: dict[str, Any]) -> dict[str, Any]:
        """Adds ``tags``: each instance's most probable tag strings, one per real token."""
        predicted = output_dict["class_probabilities"].argmax(dim=-1)
        output_dict["tags"] = decode_tag_ids(predicted, output_dict["mask"], self._tag_names)
        return output_dict

    @classmethod
    def metric_names(cls, config: Mapping[str, Any]) -> MetricNames | None:
        return tagger_metric_names({"accuracy", "accuracy3"}, config)

    def get_metrics(self, reset: bool = False) -> dict[str, float]:
        metrics = {name: m.get_metric(reset)["accuracy"] for name, m in self.metrics.items()}
        if self._f1_metric is not None:
            metrics.update(span_metrics(self._f1_metric, reset, self._verbose_metrics))
        return metrics


def check_stage_dims(
    text_field_embedder: TextFieldEmbedder,
    encoder: Seq2SeqEncoder,
    feedforward: FeedForward | None,
) -> int:
    """The output size of the last stage; a ModelError where two stages do not fit."""
    stages: list[tuple[str, Any]] = [("text_field_embedder", text_field_embedder)]
    stages.append(("encoder", encoder))
    if feedforward is not None:
        stages.append(("feedforward", feedforward))
    for (producer, upstream), (consumer, downstream) in zip(stages, stages[1:], strict=False):
        if upstream.get_output_dim() != downstream.get_input_dim():
            raise ModelError(
                f"{producer} outputs vectors of size {upstream.get_output_dim()} but {consumer} "
                f"expects input of size {downstream.get_input_dim()}",
                code=errors.SHAPE_MISMATCH,
            )
    return stages[-1][1].get_output_dim()


def tag_count(vocab: Vocabulary, label_namespace: str) -> int:
    count = vocab.get_vocab_size(label_namespace)
    if count < 1:
        raise ModelError(
            f"the label namespace {label_namespace!r} is empty: no tags to predict (does the "
            "reader's label_namespace match the model's?)",
            code=errors.SHAPE_MISMATCH,
        )
    return count


def tag_names(vocab: Vocabulary, label_namespace: str, count: int) -> list[str]:
    index_to_tag = vocab.get_index_to_token_vocabulary(label_namespace)
    return [index_to_tag.get(index, str(index)) for index in range(count)]


def span_metric(
    vocab: Vocabulary,
    label_namespace: str,
    calculate_span_f1: bool | None,
    label_encoding: str | None,
) -> SpanBasedF1Measure | None:
    """AllenNLP's rule: span F1 is on when a label encoding is given, unless turned off."""
    if calculate_span_f1 and not label_encoding:
        raise ConfigurationError(
            "calculate_span_f1 needs label_encoding (BIO, IOB1 or BIOUL)", code=errors.BAD_VALUE
        )
    if label_encoding is None or calculate_span_f1 is False:
        return None
    return SpanBasedF1Measure(vocab, tag_namespace=label_namespace, label_encoding=label_encoding)


def tagger_metric_names(accuracies: set[str], config: Mapping[str, Any]) -> MetricNames:
    """A tagger's metrics: its accuracies, and span precision/recall/F1 when span F1 is on
    (by default when ``label_encoding`` is set), per span type with ``verbose_metrics``."""
    names = set(accuracies)
    patterns: tuple[str, ...] = ()
    span_f1 = config.get("calculate_span_f1")
    if span_f1 is None:
        span_f1 = config.get("label_encoding") is not None
    if span_f1:
        names |= {"precision-overall", "recall-overall", "f1-measure-overall"}
        if config.get("verbose_metrics"):
            patterns = ("precision-*", "recall-*", "f1-measure-*")
    return MetricNames(frozenset(names), patterns)


def span_metrics(metric: SpanBasedF1Measure, reset: bool, verbose: bool) -> dict[str, float]:
    values = metric.get_metric(reset=reset)
    if verbose:
        return values
    return {name: value for name, value in values.items() if name.endswith("-overall")}


def decode_tag_ids(ids: torch.Tensor, mask: torch.Tensor, names: list[str]) -> list[list[str]]:
    """Tag strings per instance from (B, T) ids, cut to each instance's length."""
    lengths = mask.sum(dim=1).tolist()
    return [
        [names[i] for i in row[:length]] for row, length in zip(ids.tolist(), lengths, strict=True)
    ]

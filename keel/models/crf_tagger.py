"""``crf_tagger``: a tagger whose tags are decoded jointly by a conditional random field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import torch

from keel.common import errors
from keel.common.constraints import Positive, Probability, Supplied
from keel.common.errors import ConfigurationError
from keel.data.vocabulary import Vocabulary
from keel.metrics.categorical_accuracy import CategoricalAccuracy
from keel.models.model import GoldenOutputs, MetricNames, Model
from keel.models.simple_tagger import (
    check_stage_dims,
    span_metric,
    span_metrics,
    tag_count,
    tag_names,
    tagger_metric_names,
)
from keel.modules.conditional_random_field import ConditionalRandomField, allowed_transitions
from keel.modules.feedforward import FeedForward
from keel.modules.regularizers import RegularizerApplicator
from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder
from keel.modules.util import TextFieldTensors, get_text_field_mask


@Model.register("crf_tagger")
class CrfTagger(Model):
    """A tagger configured as AllenNLP's ``crf_tagger``: text_field_embedder -> encoder ->
    [dropout] -> [feedforward] -> per-tag scores -> CRF.

    The loss is the negative CRF log-likelihood summed over the batch (as in AllenNLP).
    ``label_encoding`` (BIO, IOB1, BIOUL) turns on span F1 and, unless
    ``constrain_crf_decoding`` is false, restricts Viterbi decoding to well-formed sequences.
    ``top_k`` > 1 also returns the k best sequences per instance as ``top_k_tags``.
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
        label_encoding: str | None = None,
        include_start_end_transitions: bool = True,
        constrain_crf_decoding: bool | None = None,
        calculate_span_f1: bool | None = None,
        dropout: Annotated[float, Probability] | None = None,
        verbose_metrics: bool = False,
        top_k: Annotated[int, Positive] = 1,
        regularizer: RegularizerApplicator | None = None,
    ) -> None:
        super().__init__(vocab, regularizer)
        self.label_namespace = label_namespace
        self.text_field_embedder = text_field_embedder
        self.encoder = encoder
        self._feedforward = feedforward
        self.dropout = torch.nn.Dropout(dropout) if dropout else None
        self._verbose_metrics = verbose_metrics
        if top_k < 1:
            raise ConfigurationError(
                f"top_k must be at least 1, got {top_k}", code=errors.BAD_VALUE
            )
        self.top_k = top_k
        output_dim = check_stage_dims(text_field_embedder, encoder, feedforward)
        self.num_tags = tag_count(vocab, label_namespace)
        self.tag_projection_layer = torch.nn.Linear(output_dim, self.num_tags)
        self._tag_names = tag_names(vocab, label_namespace, self.num_tags)

        if constrain_crf_decoding is None:
            constrain_crf_decoding = label_encoding is not None
        if constrain_crf_decoding and label_encoding is None:
            raise ConfigurationError(
                "constrain_crf_decoding needs label_encoding (BIO, IOB1 or BIOUL)",
                code=errors.BAD_VALUE,
            )
        constraints = None
        if constrain_crf_decoding:
            assert label_encoding is not None
            constraints = allowed_transitions(label_encoding, dict(enumerate(self._tag_names)))
        self.crf = ConditionalRandomField(
            self.num_tags, constraints, include_start_end_transitions=include_start_end_transitions
        )
        self.metrics = {"accuracy": CategoricalAccuracy()}
        self._f1_metric = span_metric(vocab, label_namespace, calculate_span_f1, label_encoding)

    def forward(
        self,
        tokens: TextFieldTensors,
        tags: torch.Tensor | None = None,
        metadata: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``logits`` (B, T, num_tags), ``mask`` (B, T), ``tags``: the Viterbi tag ids per
        instance (lists, cut to length), and ``loss`` when gold ``tags`` are given."""
        mask = get_text_field_mask(tokens)
        embedded = self.text_field_embedder(tokens)
        if self.dropout is not None:
            embedded = self.dropout(embedded)
        encoded = self.encoder(embedded, mask)
        if self.dropout is not None:
            encoded = self.dropout(encoded)
        if self._feedforward is not None:
            encoded = self._feedforward(encoded)
        logits = self.tag_projection_layer(encoded)

        output: dict[str, Any] = {"logits": logits, "mask": mask}
        if self.top_k > 1:
            best = self.crf.viterbi_tags(logits, mask, top_k=self.top_k)
            output["top_k_tags"] = best
            output["tags"] = [paths[0][0] if paths else [] for paths in best]
            predicted = _pad(output["tags"], mask)
        else:
            predicted, _ = self.crf.decode(logits, mask)
            lengths = mask.sum(dim=1).tolist()
            output["tags"] = [
                row[:length] for row, length in zip(predicted.tolist(), lengths, strict=True)
            ]

        if tags is not None:
            output["loss"] = -self.crf(logits, tags, mask)
            # The decoded path as one-hot scores, so the metrics score what the CRF predicts.
            one_hot = torch.nn.functional.one_hot(predicted, self.num_tags).to(logits.dtype)
            for metric in self.metrics.values():
                metric(one_hot, tags, mask)
            if self._f1_metric is not None:
                self._f1_metric(predicted, tags, mask)
        if metadata is not None:
            output["words"] = [item["words"] for item in metadata]
        return output

    def make_output_human_readable(self, output_dict: dict[str, Any]) -> dict[str, Any]:
        """Turns ``tags`` (and ``top_k_tags``) from ids into tag strings per instance."""
        names = self._tag_names
        output_dict["tags"] = [[names[i] for i in row] for row in output_dict["tags"]]
        if "top_k_tags" in output_dict:
            output_dict["top_k_tags"] = [
                [{"tags": [names[i] for i in path], "score": score} for path, score in paths]
                for paths in output_dict["top_k_tags"]
            ]
        return output_dict

    @classmethod
    def metric_names(cls, config: Mapping[str, Any]) -> MetricNames | None:
        return tagger_metric_names({"accuracy"}, config)

    def get_metrics(self, reset: bool = False) -> dict[str, float]:
        metrics = {name: m.get_metric(reset)["accuracy"] for name, m in self.metrics.items()}
        if self._f1_metric is not None:
            metrics.update(span_metrics(self._f1_metric, reset, self._verbose_metrics))
        return metrics


def _pad(rows: list[list[int]], mask: torch.Tensor) -> torch.Tensor:
    padded = torch.zeros(mask.shape, dtype=torch.long)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = torch.tensor(row, dtype=torch.long)
    return padded.to(mask.device)

"""``basic_classifier``: embed, (optionally) contextualise, pool to a vector, classify."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import torch

from keel.common import errors
from keel.common.constraints import Probability, Supplied
from keel.common.errors import ModelError
from keel.data.vocabulary import Vocabulary
from keel.metrics.categorical_accuracy import CategoricalAccuracy
from keel.metrics.fbeta_measure import FBetaMeasure
from keel.models.model import GoldenOutputs, MetricNames, Model
from keel.modules.feedforward import FeedForward
from keel.modules.regularizers import RegularizerApplicator
from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder
from keel.modules.util import TextFieldTensors, get_text_field_mask


@Model.register("basic_classifier")
class BasicClassifier(Model):
    """A text classifier, configured as AllenNLP's ``basic_classifier``.

    text_field_embedder -> [seq2seq_encoder] -> seq2vec_encoder -> [dropout] -> [feedforward]
    -> linear layer over ``num_labels`` (default: the size of ``label_namespace``). Metrics:
    ``accuracy``, ``macro_precision/recall/f1`` and ``<label>_precision/recall/f1`` per label.
    """

    default_predictor = "text_classifier"
    golden_outputs = GoldenOutputs(scores=("logits",), decoded=("label",))

    def __init__(
        self,
        vocab: Annotated[Vocabulary, Supplied],
        text_field_embedder: TextFieldEmbedder,
        seq2vec_encoder: Seq2VecEncoder,
        seq2seq_encoder: Seq2SeqEncoder | None = None,
        feedforward: FeedForward | None = None,
        dropout: Annotated[float, Probability] | None = None,
        num_labels: int | None = None,
        label_namespace: str = "labels",
        namespace: str = "tokens",
        regularizer: RegularizerApplicator | None = None,
    ) -> None:
        super().__init__(vocab, regularizer)
        self._text_field_embedder = text_field_embedder
        self._seq2seq_encoder = seq2seq_encoder
        self._seq2vec_encoder = seq2vec_encoder
        self._feedforward = feedforward
        self._dropout = torch.nn.Dropout(dropout) if dropout else None
        self._label_namespace = label_namespace
        self._namespace = namespace

        stages: list[tuple[str, Any]] = [("text_field_embedder", text_field_embedder)]
        if seq2seq_encoder is not None:
            stages.append(("seq2seq_encoder", seq2seq_encoder))
        stages.append(("seq2vec_encoder", seq2vec_encoder))
        if feedforward is not None:
            stages.append(("feedforward", feedforward))
        for (producer, upstream), (consumer, downstream) in zip(stages, stages[1:], strict=False):
            if upstream.get_output_dim() != downstream.get_input_dim():
                raise ModelError(
                    f"{producer} outputs vectors of size {upstream.get_output_dim()} but "
                    f"{consumer} expects input of size {downstream.get_input_dim()}",
                    code=errors.SHAPE_MISMATCH,
                )
        classifier_input_dim = stages[-1][1].get_output_dim()

        if num_labels is None:
            num_labels = vocab.get_vocab_size(label_namespace)
        if num_labels < 1:
            raise ModelError(
                f"the label namespace {label_namespace!r} is empty: no labels to predict",
                code=errors.SHAPE_MISMATCH,
            )
        self._num_labels = num_labels
        self._classification_layer = torch.nn.Linear(classifier_input_dim, num_labels)

        index_to_label = vocab.get_index_to_token_vocabulary(label_namespace)
        self._label_names = [index_to_label.get(index, str(index)) for index in range(num_labels)]
        self._accuracy = CategoricalAccuracy()
        self._fbeta = FBetaMeasure(label_names=self._label_names)
        self._loss = torch.nn.CrossEntropyLoss()

    def forward(
        self,
        tokens: TextFieldTensors,
        label: torch.Tensor | None = None,
        metadata: list[dict[str, Any]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``logits`` and ``probs`` (B, num_labels), and ``loss`` when ``label`` (B,) is given."""
        embedded = self._text_field_embedder(tokens)
        mask = get_text_field_mask(tokens)
        if self._seq2seq_encoder is not None:
            embedded = self._seq2seq_encoder(embedded, mask=mask)
        encoded = self._seq2vec_encoder(embedded, mask=mask)
        if self._dropout is not None:
            encoded = self._dropout(encoded)
        if self._feedforward is not None:
            encoded = self._feedforward(encoded)
        logits = self._classification_layer(encoded)
        output: dict[str, torch.Tensor] = {
            "logits": logits,
            "probs": torch.softmax(logits, dim=-1),
        }
        token_ids = _token_ids(tokens)
        if token_ids is not None:
            output["token_ids"] = token_ids
        if label is not None:
            label = label.long().view(-1)
            output["loss"] = self._loss(logits, label)
            self._accuracy(logits, label)
            self._fbeta(logits, label)
        return output

    @property
    def label_names(self) -> list[str]:
        """The label of each output index, in order."""
        return list(self._label_names)

    def make_output_human_readable(self, output_dict: dict[str, Any]) -> dict[str, Any]:
        """Adds ``label``, the most probable label per instance, and ``tokens``, the input
        tokens as the vocabulary of ``namespace`` spells them (padding dropped)."""
        predicted = output_dict["probs"].argmax(dim=-1).tolist()
        output_dict["label"] = [self._label_names[index] for index in predicted]
        token_ids = output_dict.get("token_ids")
        if isinstance(token_ids, torch.Tensor):
            index_to_token = self.vocab.get_index_to_token_vocabulary(self._namespace)
            output_dict["tokens"] = [
                [index_to_token.get(index, str(index)) for index in row if index != 0]
                for row in token_ids.tolist()
            ]
        return output_dict

    @classmethod
    def metric_names(cls, config: Mapping[str, Any]) -> MetricNames | None:
        return MetricNames(
            frozenset({"accuracy", "macro_precision", "macro_recall", "macro_f1"}),
            ("*_precision", "*_recall", "*_f1"),  # per label
        )

    def get_metrics(self, reset: bool = False) -> dict[str, float]:
        metrics = self._accuracy.get_metric(reset=reset)
        metrics.update(self._fbeta.get_metric(reset=reset))
        return metrics


def _token_ids(tokens: TextFieldTensors) -> torch.Tensor | None:
    """The (B, T) word ids of a text field (an indexer's ``"tokens"`` tensor), if it has one."""
    for name in sorted(tokens):
        ids = tokens[name].get("tokens")
        if ids is not None and ids.dim() == 2:
            return ids
    return None

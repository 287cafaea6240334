"""``text_classifier``: ``{"text": ...}`` in; label, probabilities and logits out."""

from __future__ import annotations

from typing import Any

from keel.common.errors import DataError
from keel.data.instance import Instance
from keel.predict.predictor import Predictor, require_key


@Predictor.register("text_classifier")
class TextClassifierPredictor(Predictor):
    """Registered as ``text_classifier``; accepts ``text`` (or AllenNLP's ``sentence``).

    Outputs ``label``, ``probabilities`` keyed by label name, ``probs`` and ``logits`` (in the
    model's label order)."""

    input_keys = ("text", "sentence")

    def json_to_instance(self, inputs: dict[str, Any]) -> Instance:
        text = require_key(inputs, "text", "sentence")
        if not isinstance(text, str):
            raise DataError(f"'text' must be a string, got {type(text).__name__}")
        return self.dataset_reader.text_to_instance(self.check_text(text))

    def to_json(self, output: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {
            key: output[key] for key in ("label", "probs", "logits") if key in output
        }
        names = getattr(self.model, "label_names", None)
        if names is not None and "probs" in output:
            result["probabilities"] = {
                name: float(value) for name, value in zip(names, output["probs"], strict=True)
            }
        return result

"""``text_classifier``: ``{"text": ...}`` in; label, probabilities and logits out."""

from __future__ import annotations

from typing import Any

from keel.common.errors import DataError
from keel.data.instance import Instance
from keel.predict.predictor import Predictor, require_key


@Predictor.register("text_classifier")
class TextClassifierPredictor(Predictor):
    """Registered as ``text_classifier``; accepts ``text`` (or ``sentence``) keys."""

    def json_to_instance(self, inputs: dict[str, Any]) -> Instance:
        text = require_key(inputs, "text", "sentence")
        if not isinstance(text, str):
            raise DataError(f"'text' must be a string, got {type(text).__name__}")
        return self.dataset_reader.text_to_instance(self.check_text(text))

    def to_json(self, output: dict[str, Any]) -> dict[str, Any]:
        return {key: output[key] for key in ("label", "probs", "logits") if key in output}

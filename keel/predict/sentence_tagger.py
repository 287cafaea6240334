"""``sentence_tagger``: ``{"tokens": [...]}`` or ``{"sentence": "..."}`` in; tags and scores out."""

from __future__ import annotations

from typing import Any

from keel.common.errors import DataError
from keel.data.instance import Instance
from keel.data.span_utils import InvalidTagError, tags_to_spans
from keel.data.tokenizers.word_tokenizer import WordTokenizer
from keel.predict.predictor import Predictor, require_key, to_jsonable


@Predictor.register("sentence_tagger")
class SentenceTaggerPredictor(Predictor):
    """Registered as ``sentence_tagger``; a ``sentence`` is split with the ``word`` tokenizer."""

    _tokenizer = WordTokenizer()
    input_keys = ("tokens", "sentence")

    def json_to_instance(self, inputs: dict[str, Any]) -> Instance:
        words = require_key(inputs, "tokens", "sentence")
        if isinstance(words, str):
            words = [token.text for token in self._tokenizer.tokenize(self.check_text(words))]
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise DataError("'tokens' must be a list of strings")
        if not words:
            raise DataError("cannot tag an empty sentence")
        return self.dataset_reader.text_to_instance(self.check_tokens(words))

    def to_json(self, output: dict[str, Any]) -> dict[str, Any]:
        """``words``, ``tags``, the per-word ``logits`` and ``class_probabilities`` (what
        AllenNLP's tagger predictor returned), and ``spans`` for span-coded tags."""
        tags = output["tags"]
        words: list[str] = output.get("words") or (output.get("metadata") or {}).get("words") or []
        result: dict[str, Any] = {"words": words, "tags": tags}
        for name in ("logits", "class_probabilities"):
            if name in output:
                result[name] = to_jsonable(output[name])[: len(tags)]
        try:
            spans = tags_to_spans(tags)
        except InvalidTagError:  # POS-style tags carry no spans
            return result
        result["spans"] = [
            {"label": label, "start": start, "end": end, "text": " ".join(words[start : end + 1])}
            for label, (start, end) in spans
        ]
        return result

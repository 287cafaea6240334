"""``pretrained_transformer``: word-piece tokenization from a model directory's ``tokenizer.json``.

Uses the ``tokenizers`` library directly, so tokenizing needs neither ``transformers`` nor the
network: ``model_name`` is always a local directory, never a hub name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import Encoding
from tokenizers import Tokenizer as HfTokenizer

from keel.common import errors
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.common.file_utils import canonical_json
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer

TOKENIZER_FILE = "tokenizer.json"
FINGERPRINT_FORMAT = "keel-pretrained-transformer-tokenizer/1"
ARCHIVE_SCHEME = "archive://"


def local_model_dir(model_name: str, parameter: str = "model_name") -> Path:
    """``model_name`` as an existing directory; anything else (a hub name, a file) is refused."""
    if model_name.startswith(ARCHIVE_SCHEME):
        reason = (
            "is a path inside a model archive, which only load_archive resolves; load the model "
            "with load_archive (or keel predict/evaluate) instead of building this config directly"
        )
    elif Path(model_name).is_dir():
        return Path(model_name)
    elif Path(model_name).exists():
        reason = "is a file; expected the model's directory (with config.json and tokenizer.json)"
    else:
        reason = (
            "is not an existing local directory. keel never downloads models: fetch the model "
            "once (e.g. `hf download ORG/NAME --local-dir DIR`) and pass DIR"
        )
    raise ConfigurationError(
        [
            ConfigIssue(
                errors.BAD_VALUE,
                parameter,
                f"{model_name!r} {reason}",
                expected="a local model directory",
            )
        ]
    )


def load_hf_tokenizer(model_dir: Path, parameter: str = "model_name") -> HfTokenizer:
    """The directory's ``tokenizer.json`` with padding and truncation switched off.

    Files saved by ``transformers`` often carry fixed-length padding/truncation settings; keel
    pads per batch and truncates only where its own ``max_length`` says so.
    """
    path = model_dir / TOKENIZER_FILE
    if not path.is_file():
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_VALUE,
                    parameter,
                    f"{str(model_dir)!r} has no {TOKENIZER_FILE}; keel reads fast-tokenizer files "
                    "only (transformers can write one: AutoTokenizer.from_pretrained(DIR)"
                    ".save_pretrained(DIR))",
                    expected=f"a directory with {TOKENIZER_FILE}",
                )
            ]
        )
    try:
        tokenizer = HfTokenizer.from_file(str(path))
    except Exception as error:  # the Rust side raises plain Exceptions on malformed files
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_VALUE,
                    parameter,
                    f"cannot read {path}: {error}",
                    expected="a tokenizer.json written by the tokenizers library",
                )
            ]
        ) from error
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def tokenizer_fingerprint_material(model_dir: Path, settings: dict[str, Any]) -> bytes:
    """Canonical bytes of ``tokenizer.json`` (vocabulary, normalizer, pre-tokenizer, model,
    post-processor) plus keel's own settings and the lower-casing flag, for fingerprinting.

    Built from the file rather than from the loaded tokenizer, so the bytes do not change when
    only the ``tokenizers`` version that re-serializes it does; a different tokenizing behaviour
    is what the probe-corpus fingerprint catches.
    """
    document = json.loads((model_dir / TOKENIZER_FILE).read_text(encoding="utf-8"))
    # keel overrides these two (see load_hf_tokenizer); its own max_length is in ``settings``.
    document.pop("padding", None)
    document.pop("truncation", None)
    material = {
        "format": FINGERPRINT_FORMAT,
        "lowercase": _lowercases(document.get("normalizer")),
        "settings": settings,
        "tokenizer_json": document,
    }
    text = canonical_json(material)
    return text.encode("utf-8")


def _lowercases(normalizer: Any) -> bool:
    """Whether a tokenizer.json normalizer lower-cases (BertNormalizer, Lowercase, in Sequences)."""
    if not isinstance(normalizer, dict):
        return False
    kind = normalizer.get("type")
    if kind == "Lowercase":
        return True
    if kind == "BertNormalizer":
        return bool(normalizer.get("lowercase", True))
    if kind == "Sequence":
        return any(_lowercases(child) for child in normalizer.get("normalizers", []))
    return False


def encoding_to_tokens(encoding: Encoding) -> list[Token]:
    """Tokens with ids, type ids and character offsets; special tokens get no offsets."""
    return [
        Token(text, None, None, text_id, type_id)
        if special
        else Token(text, start, end, text_id, type_id)
        for text, (start, end), text_id, type_id, special in zip(
            encoding.tokens,
            encoding.offsets,
            encoding.ids,
            encoding.type_ids,
            encoding.special_tokens_mask,
            strict=True,
        )
    ]


@Tokenizer.register("pretrained_transformer")
class PretrainedTransformerTokenizer(Tokenizer):
    """Word pieces with ``text_id`` and ``type_id`` set, from ``model_name``'s tokenizer.json.

    ``add_special_tokens`` adds the model's own markers (``[CLS] ... [SEP]`` for BERT).
    ``max_length`` truncates to that many word pieces, special tokens included; None keeps every
    piece (the ``pretrained_transformer`` embedder then folds long inputs into segments).
    """

    def __init__(
        self, model_name: str, add_special_tokens: bool = True, max_length: int | None = None
    ) -> None:
        self.model_name = model_name
        self.model_dir = local_model_dir(model_name)
        self.add_special_tokens = add_special_tokens
        self.max_length = max_length
        self.tokenizer = load_hf_tokenizer(self.model_dir)
        if max_length is not None:
            specials = self.tokenizer.num_special_tokens_to_add(False) if add_special_tokens else 0
            if max_length <= specials:
                raise ConfigurationError(
                    [
                        ConfigIssue(
                            errors.BAD_VALUE,
                            "max_length",
                            f"max_length {max_length} leaves no room for text next to the "
                            f"{specials} special tokens",
                            expected=f"an integer > {specials}",
                            found=max_length,
                        )
                    ]
                )
            self.tokenizer.enable_truncation(max_length)
        # Read now: the directory may be a temporary archive extraction that is gone later.
        self._fingerprint_material = tokenizer_fingerprint_material(
            self.model_dir,
            {"add_special_tokens": add_special_tokens, "max_length": max_length},
        )

    def tokenize(self, text: str) -> list[Token]:
        return encoding_to_tokens(
            self.tokenizer.encode(text, add_special_tokens=self.add_special_tokens)
        )

    def batch_tokenize(self, texts: list[str]) -> list[list[Token]]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=self.add_special_tokens)
        return [encoding_to_tokens(encoding) for encoding in encodings]

    def fingerprint_material(self) -> bytes:
        """Stable bytes describing this tokenizer's vocabulary, normalisation and settings."""
        return self._fingerprint_material

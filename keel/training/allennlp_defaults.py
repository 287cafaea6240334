"""AllenNLP's defaults where keel's differ, written into a config explicitly.

keel reads AllenNLP configs unchanged, but a few of its own defaults differ from AllenNLP's
(each for a reason of its own, documented on the component). A config that relies on such a
default would silently train a different model, so keel never guesses which semantics a
config wants: ``keel train --allennlp`` (and the AllenNLP importer) call ``allennlp_defaults``,
which writes AllenNLP's value at every place the config leaves it out. The archive's config then
holds the values, so the model is rebuilt the same way without the flag.

| where | keel's default | AllenNLP's |
| --- | --- | --- |
| ``datasets_for_vocab_creation`` | ``["train"]`` | every dataset read |
| ``embedding.padding_index`` | ``0`` (zero row, no gradient) | none (a trained row) |
| ``text_classification_json.tokenizer`` | ``whitespace`` | ``spacy`` |
| ``cnn.window_pooling`` | ``keel`` | ``allennlp`` (``allennlp_legacy`` before 1.2.1) |
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from keel.common import errors
from keel.common.errors import ConfigurationError

#: AllenNLP's last release: the semantics ``keel train --allennlp`` reproduces by default.
LATEST_ALLENNLP = "2.10.1"
#: allenai/allennlp#4746: the CNN encoder stopped pooling windows that reach into padding.
CNN_WINDOW_MASKING_SINCE = (1, 2, 1)
#: AllenNLP readers that tokenize with spaCy when the config names no tokenizer
SPACY_BY_DEFAULT_READERS = ("text_classification_json",)
READER_KEYS = ("dataset_reader", "validation_dataset_reader")


@dataclass(frozen=True)
class FilledDefault:
    """One AllenNLP default written into a config where it left the value out."""

    path: str
    value: Any
    keel_default: Any
    reason: str

    def render(self) -> str:
        return (
            f"{self.path} = {self.value!r} (keel's default: {self.keel_default!r}): {self.reason}"
        )


def allennlp_defaults(
    config: Mapping[str, Any], *, allennlp_version: str | None = None
) -> tuple[dict[str, Any], list[FilledDefault]]:
    """(a copy of ``config`` with AllenNLP's values written where keel's defaults differ, what
    was written). ``allennlp_version`` is the release whose behaviour to reproduce (default:
    the last, 2.10.1); the config itself is not changed."""
    filled = copy.deepcopy(dict(config))
    written: list[FilledDefault] = []
    version = _version_tuple(allennlp_version or LATEST_ALLENNLP)

    if "datasets_for_vocab_creation" not in filled and not _vocabulary_from_files(filled):
        roles = [
            role
            for role, key in (
                ("train", "train_data_path"),
                ("validation", "validation_data_path"),
                ("test", "test_data_path"),
            )
            if filled.get(key)
        ]
        filled["datasets_for_vocab_creation"] = roles
        written.append(
            FilledDefault(
                "datasets_for_vocab_creation",
                roles,
                ["train"],
                "AllenNLP builds the vocabulary from every dataset it reads",
            )
        )
    for key in READER_KEYS:
        reader = filled.get(key)
        if (
            isinstance(reader, dict)
            and reader.get("type") in SPACY_BY_DEFAULT_READERS
            and reader.get("tokenizer") is None
        ):
            reader["tokenizer"] = {"type": "spacy"}
            written.append(
                FilledDefault(
                    f"{key}.tokenizer",
                    {"type": "spacy"},
                    {"type": "whitespace"},
                    f"AllenNLP's {reader['type']} reader tokenizes with spaCy when none is named",
                )
            )
    for path, section in _sections(filled.get("model"), "model"):
        for where, embedding in _embeddings(path, section):
            if "padding_index" in embedding:
                continue
            embedding["padding_index"] = None
            written.append(
                FilledDefault(
                    f"{where}.padding_index",
                    None,
                    0,
                    "AllenNLP's embedding has no padding row: row 0 is initialised and trained "
                    "like any other",
                )
            )
        if _is_cnn(section) and "window_pooling" not in section:
            pooling = "allennlp" if version >= CNN_WINDOW_MASKING_SINCE else "allennlp_legacy"
            section["window_pooling"] = pooling
            written.append(
                FilledDefault(
                    f"{path}.window_pooling",
                    pooling,
                    "keel",
                    f"AllenNLP {'.'.join(map(str, version))}'s CNN encoder pools "
                    + (
                        "only windows inside the sequence, 0 where none is"
                        if pooling == "allennlp"
                        else "every window of the padded batch"
                    ),
                )
            )
    return filled, written


def upgrade_legacy_layout(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(a copy of ``config`` in AllenNLP 1.0+'s layout, what was changed). AllenNLP 0.9 let a
    ``text_field_embedder`` list its token embedders at its top level, without
    ``token_embedders``, and had an ``allow_unmatched_keys`` switch that changes no output;
    both are rewritten. 0.9's ``embedder_to_indexer_map`` is left for validation to name:
    keel does not reproduce it."""
    upgraded = copy.deepcopy(dict(config))
    changes: list[str] = []
    for path, section in list(_sections(upgraded.get("model"), "model")):
        embedder = section.get("text_field_embedder")
        if not isinstance(embedder, dict) or "token_embedders" in embedder:
            continue
        if embedder.pop("allow_unmatched_keys", None) is not None:
            changes.append(f"{path}.text_field_embedder.allow_unmatched_keys: dropped")
        flat = {
            key: value
            for key, value in embedder.items()
            if isinstance(value, dict) and key not in ("type", "embedder_to_indexer_map")
        }
        if flat:
            for key in flat:
                del embedder[key]
            embedder["token_embedders"] = flat
            changes.append(
                f"{path}.text_field_embedder: token embedders {sorted(flat)} moved under "
                "token_embedders (AllenNLP 0.9's flat layout)"
            )
    return upgraded, changes


def uses_cnn_encoder(config: Mapping[str, Any]) -> list[str]:
    """Dotted paths of the ``cnn`` encoders in a config's model (their numerics depend on the
    AllenNLP version that trained them)."""
    return [path for path, section in _sections(config.get("model"), "model") if _is_cnn(section)]


def _embeddings(path: str, section: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ``embedding`` a section is, or the one a ``character_encoding`` holds (no type)."""
    if section.get("type") == "embedding":
        return [(path, section)]
    inner = section.get("embedding")
    if (
        section.get("type") == "character_encoding"
        and isinstance(inner, dict)
        and inner.get("type") in (None, "embedding")
    ):
        return [(f"{path}.embedding", inner)]
    return []


def _is_cnn(section: Mapping[str, Any]) -> bool:
    return section.get("type") == "cnn"


def _sections(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict inside ``value`` (itself included), outermost first, with its dotted path."""
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            yield from _sections(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _sections(child, f"{path}[{index}]")


def _vocabulary_from_files(config: Mapping[str, Any]) -> bool:
    vocabulary = config.get("vocabulary")
    return isinstance(vocabulary, dict) and vocabulary.get("type") == "from_files"


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(character for character in piece if character.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise ConfigurationError(
            f"not an AllenNLP version: {version!r} (expected e.g. '2.10.1')", code=errors.BAD_VALUE
        )
    return tuple(parts)

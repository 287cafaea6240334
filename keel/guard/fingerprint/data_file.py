"""Everything keel records about one data file: raw bytes, preprocessing and tokenizer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.common.from_params import build
from keel.common.hashing import FileHash, hash_file
from keel.data.vocabulary import Vocabulary
from keel.guard.fingerprint.preprocessing import PreprocessingFingerprint, preprocessing_fingerprint
from keel.guard.fingerprint.tokenizer import TokenizerFingerprint, reader_tokenizer_fingerprint
from keel.guard.fingerprint.vocabulary import vocabulary_hash


@dataclass
class DataFingerprint:
    """Everything keel records about one data file: raw bytes, preprocessing and tokenizer."""

    file: FileHash
    preprocessing: PreprocessingFingerprint
    tokenizer: TokenizerFingerprint | None
    vocabulary_sha256: str
    #: "archive" (the model's vocabulary) or "data" (built from this file, see below)
    vocabulary_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "tokenizer": self.tokenizer.to_dict() if self.tokenizer is not None else None,
            "vocabulary_sha256": self.vocabulary_sha256,
            "vocabulary_source": self.vocabulary_source,
        }


def fingerprint_data_file(
    reader: Any,
    data_path: str | Path,
    vocab: Vocabulary | None = None,
    vocabulary_config: Mapping[str, Any] | None = None,
) -> DataFingerprint:
    """Hash, read, index and fingerprint one data file with ``reader``.

    With ``vocab`` (an archive's) the ids are the model's. Without it the vocabulary is built
    from this file itself (with ``vocabulary_config``, the config's ``vocabulary`` section, when
    given): the digest then describes the file's own preprocessing, comparable only with other
    fingerprints computed the same way.
    """

    file_hash = hash_file(data_path)
    instances = list(reader.read(data_path))
    source = "archive"
    if vocab is None:
        source = "data"
        config = dict(vocabulary_config or {})
        vocab = build(Vocabulary, config, path="vocabulary", extras={"instances": instances})
    return DataFingerprint(
        file=file_hash,
        preprocessing=preprocessing_fingerprint(instances, vocab),
        tokenizer=reader_tokenizer_fingerprint(reader, vocab),
        vocabulary_sha256=vocabulary_hash(vocab),
        vocabulary_source=source,
    )

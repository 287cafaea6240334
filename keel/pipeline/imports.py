"""Importing archives of other tools as first-class keel archives.

``keel archive import-allennlp`` converts the archive (``keel.archive.allennlp``) and records
what this run can vouch for: the importing environment, the tokenizer fingerprint, the
vocabulary hash and, with ``golden_input`` (a data file the archive's reader reads), golden
predictions computed at import, so ``keel verify`` checks every step from then on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from keel.archive.allennlp import import_allennlp_archive
from keel.archive.archive import ArchiveLimits
from keel.archive.manifest import Manifest
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.guard.environment import capture_environment
from keel.guard.fingerprint import reader_tokenizer_fingerprint, vocabulary_hash
from keel.guard.golden import record_golden
from keel.models.model import Model

#: how many records of --golden-input become golden predictions (seeded sample)
GOLDEN_SAMPLE_SIZE = 256
GOLDEN_SEED = 13370


def import_allennlp(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    golden_input: str | os.PathLike[str] | None = None,
    golden_sample_size: int = GOLDEN_SAMPLE_SIZE,
    include_packages: Iterable[str] = (),
    limits: ArchiveLimits | None = None,
    allennlp_version: str | None = None,
) -> Path:
    """Import an AllenNLP archive and record what the import run knows (see module doc)."""

    def describe(
        model: Model, vocab: Vocabulary, reader: DatasetReader, manifest: Manifest
    ) -> dict[str, Any] | None:
        manifest.environment = capture_environment()
        fingerprint = reader_tokenizer_fingerprint(reader, vocab)
        manifest.tokenizer_fingerprint = fingerprint.to_dict() if fingerprint else None
        manifest.vocabulary_sha256 = vocabulary_hash(vocab)
        if golden_input is None:
            return None
        return record_golden(
            model,
            reader,
            vocab,
            str(golden_input),
            sample_size=golden_sample_size,
            seed=GOLDEN_SEED,
        )

    return import_allennlp_archive(
        source,
        destination,
        include_packages=include_packages,
        limits=limits,
        describe=describe,
        allennlp_version=allennlp_version,
    )

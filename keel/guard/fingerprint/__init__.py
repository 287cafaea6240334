"""Fingerprints of what keel's data pipeline produced, so drift is caught before a model sees it.

- ``preprocessing``: the indexed instances of one data file, one digest plus statistics.
- ``tokenizer``: a versioned probe corpus through a tokenizer and its indexers, per line.
- ``vocabulary``: the namespaces and tokens of a vocabulary.
- ``recorded``: a data file's fingerprint against the one a training run recorded.
- ``data_file``: all of the above for one data file.

Every digest is a sha256 over canonical bytes (``canonical``), never ``hash()`` or ``repr``.
"""

from keel.guard.fingerprint.data_file import DataFingerprint, fingerprint_data_file
from keel.guard.fingerprint.preprocessing import (
    PREPROCESSING_FORMAT,
    FingerprintingIterator,
    PreprocessingFingerprint,
    preprocessing_fingerprint,
)
from keel.guard.fingerprint.recorded import (
    DIFFERS,
    INCOMPARABLE,
    MATCH,
    UNRECORDED,
    RecordedComparison,
    compare_with_recorded,
)
from keel.guard.fingerprint.tokenizer import (
    DEFAULT_PROBE_CORPUS,
    PROBE_CORPORA,
    TOKENIZER_FORMAT,
    LineDiff,
    TokenizerFingerprint,
    component_materials,
    diff_tokenizer_fingerprints,
    load_probe_corpus,
    probe_corpus_bytes,
    reader_tokenizer_fingerprint,
    tokenizer_fingerprint,
)
from keel.guard.fingerprint.vocabulary import VOCABULARY_FORMAT, vocabulary_hash

__all__ = [
    "DEFAULT_PROBE_CORPUS",
    "DIFFERS",
    "INCOMPARABLE",
    "MATCH",
    "PREPROCESSING_FORMAT",
    "PROBE_CORPORA",
    "TOKENIZER_FORMAT",
    "UNRECORDED",
    "VOCABULARY_FORMAT",
    "DataFingerprint",
    "FingerprintingIterator",
    "LineDiff",
    "PreprocessingFingerprint",
    "RecordedComparison",
    "TokenizerFingerprint",
    "compare_with_recorded",
    "component_materials",
    "diff_tokenizer_fingerprints",
    "fingerprint_data_file",
    "load_probe_corpus",
    "preprocessing_fingerprint",
    "probe_corpus_bytes",
    "reader_tokenizer_fingerprint",
    "tokenizer_fingerprint",
    "vocabulary_hash",
]

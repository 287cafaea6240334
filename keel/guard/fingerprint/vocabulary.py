"""``vocabulary_hash``: the namespaces and tokens of a vocabulary, in index order."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from keel.guard.fingerprint.canonical import string_bytes, strings_bytes, u32

if TYPE_CHECKING:
    from keel.data.vocabulary import Vocabulary


VOCABULARY_FORMAT = "keel-vocabulary-hash/1"


def vocabulary_hash(vocab: Vocabulary) -> str:
    """sha256 of every namespace (sorted by name): padded or not, and its tokens in index order."""
    digest = hashlib.sha256(string_bytes(VOCABULARY_FORMAT))
    namespaces = sorted(vocab.get_namespaces())
    digest.update(u32(len(namespaces)))
    for namespace in namespaces:
        tokens = vocab.get_tokens(namespace)
        digest.update(string_bytes(namespace) + (b"P" if vocab.is_padded(namespace) else b"U"))
        digest.update(strings_bytes(tokens))
    return digest.hexdigest()

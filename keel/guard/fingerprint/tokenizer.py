"""The tokenizer-behaviour fingerprint: a fixed, versioned probe corpus (``probe_corpus/vN.txt``)
run through a tokenizer and its token indexers, keeping each line's tokens so a mismatch can be
shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from importlib import resources
from typing import TYPE_CHECKING, Any

from keel.common import errors
from keel.common.errors import GuardError, KeelError
from keel.data.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from keel.guard.fingerprint.canonical import ints_bytes, string_bytes, strings_bytes, u32

if TYPE_CHECKING:
    from keel.data.token_indexers.token_indexer import TokenIndexer
    from keel.data.tokenizers.tokenizer import Tokenizer
    from keel.data.vocabulary import Vocabulary


TOKENIZER_FORMAT = "keel-tokenizer-fingerprint/1"

#: Every released probe corpus and the sha256 of its file. Released files are never edited.
PROBE_CORPORA: dict[str, str] = {
    "v1": "20663b1aba114a0cf0cf2aff56d8a2f31d400092ec53ce2541720cd59ffb501d",
}
DEFAULT_PROBE_CORPUS = "v1"


def probe_corpus_bytes(version: str = DEFAULT_PROBE_CORPUS) -> bytes:
    """The raw bytes of a released probe corpus, checked against its pinned sha256."""
    expected = PROBE_CORPORA.get(version)
    if expected is None:
        known = ", ".join(sorted(PROBE_CORPORA))
        raise GuardError(
            f"unknown probe corpus version {version!r} (this keel knows: {known})",
            code=errors.FINGERPRINT_MISMATCH,
        )
    data = resources.files("keel.guard").joinpath("probe_corpus", f"{version}.txt").read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise GuardError(
            f"probe corpus {version} is damaged: sha256 {actual}, expected {expected}; released "
            "probe corpora must never change (check for end-of-line conversion by git)",
            code=errors.FINGERPRINT_MISMATCH,
        )
    return data


def load_probe_corpus(version: str = DEFAULT_PROBE_CORPUS) -> list[str]:
    """The probe lines of a corpus version, split on ``\\n`` only (see probe_corpus/README.md)."""
    lines = probe_corpus_bytes(version).decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass
class TokenizerFingerprint:
    """How a tokenizer and its indexers treat the probe corpus: one digest, plus per line the
    token count, a short digest (token strings and ids) and the token strings themselves."""

    corpus_version: str
    digest: str
    token_counts: list[int]
    line_digests: list[str]
    tokens: list[list[str]]
    #: sha256 of each component's ``fingerprint_material()`` (a transformer tokenizer's
    #: tokenizer.json and normalisation settings), by component
    materials: dict[str, str] = dataclass_field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "materials": dict(self.materials),
            "format": TOKENIZER_FORMAT,
            "corpus_version": self.corpus_version,
            "corpus_sha256": PROBE_CORPORA.get(self.corpus_version),
            "digest": self.digest,
            "token_counts": list(self.token_counts),
            "line_digests": list(self.line_digests),
            "tokens": [list(line) for line in self.tokens],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenizerFingerprint:
        fmt = data.get("format", TOKENIZER_FORMAT)
        if fmt != TOKENIZER_FORMAT:
            raise GuardError(
                f"unsupported tokenizer fingerprint format {fmt!r} (expected {TOKENIZER_FORMAT})",
                code=errors.BAD_ENV_DOCUMENT,
            )
        return cls(
            corpus_version=str(data["corpus_version"]),
            digest=str(data["digest"]),
            token_counts=[int(n) for n in data["token_counts"]],
            line_digests=[str(d) for d in data["line_digests"]],
            tokens=[[str(t) for t in line] for line in data["tokens"]],
            materials={str(k): str(v) for k, v in dict(data.get("materials") or {}).items()},
        )


@dataclass(frozen=True)
class LineDiff:
    """One probe line that a tokenizer/indexers now treat differently."""

    line: int  # 1-based line number in the probe corpus
    text: str
    old_tokens: list[str]
    new_tokens: list[str]

    @property
    def same_tokens(self) -> bool:
        """True when only the ids changed (e.g. a different vocabulary), not the tokens."""
        return self.old_tokens == self.new_tokens

    def render(self) -> str:
        text = json.dumps(self.text, ensure_ascii=False)
        if self.same_tokens:
            return (
                f"line {self.line} {text}: same {len(self.new_tokens)} tokens, different ids\n"
                f"  tokens: {json.dumps(self.new_tokens, ensure_ascii=False)}"
            )
        return (
            f"line {self.line} {text}:\n"
            f"  old ({len(self.old_tokens)}): {json.dumps(self.old_tokens, ensure_ascii=False)}\n"
            f"  new ({len(self.new_tokens)}): {json.dumps(self.new_tokens, ensure_ascii=False)}"
        )


def tokenizer_fingerprint(
    tokenizer: Tokenizer,
    token_indexers: Mapping[str, TokenIndexer],
    vocab: Vocabulary,
    corpus_version: str = DEFAULT_PROBE_CORPUS,
) -> TokenizerFingerprint:
    """Run the probe corpus through ``tokenizer`` and each of ``token_indexers`` with ``vocab``.

    Reads the vocabulary only; an indexer that rejects a token (a non-padded namespace) records
    the error code for that line instead of failing.
    """
    lines = load_probe_corpus(corpus_version)
    tokenized = tokenizer.batch_tokenize(lines)
    names = sorted(token_indexers)
    digest = hashlib.sha256(
        string_bytes(TOKENIZER_FORMAT) + string_bytes(corpus_version) + u32(len(lines))
    )
    materials = component_materials(tokenizer, token_indexers)
    for name, material_digest in sorted(materials.items()):
        digest.update(string_bytes(name) + string_bytes(material_digest))
    counts: list[int] = []
    line_digests: list[str] = []
    texts_per_line: list[list[str]] = []
    for tokens in tokenized:
        texts = [token.text for token in tokens]
        parts = [strings_bytes(texts), u32(len(names))]
        for name in names:
            parts.append(string_bytes(name))
            try:
                outputs = token_indexers[name].tokens_to_indices(tokens, vocab)
            except KeelError as error:
                parts.append(b"E" + string_bytes(error.code))
                continue
            parts.append(u32(len(outputs)))
            for key in sorted(outputs):
                parts.append(string_bytes(key) + ints_bytes(outputs[key]))
        line_digest = hashlib.sha256(b"".join(parts)).digest()
        digest.update(line_digest)
        counts.append(len(tokens))
        line_digests.append(line_digest[:8].hex())
        texts_per_line.append(texts)
    return TokenizerFingerprint(
        corpus_version=corpus_version,
        digest=digest.hexdigest(),
        token_counts=counts,
        line_digests=line_digests,
        tokens=texts_per_line,
        materials=materials,
    )


def component_materials(tokenizer: Any, token_indexers: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of ``fingerprint_material()`` for the tokenizer and each indexer that has one.

    Covers what the probe corpus may not exercise: a word-piece vocabulary entry, a normaliser
    setting in tokenizer.json.
    """
    components = {"tokenizer": tokenizer, **{f"indexer:{k}": v for k, v in token_indexers.items()}}
    materials = {}
    for name, component in components.items():
        material = getattr(component, "fingerprint_material", None)
        if callable(material):
            materials[name] = hashlib.sha256(material()).hexdigest()
    return materials


def diff_tokenizer_fingerprints(
    old: TokenizerFingerprint, new: TokenizerFingerprint, limit: int | None = 5
) -> list[LineDiff]:
    """The first ``limit`` probe lines (all when None) treated differently, old vs new."""
    if old.corpus_version != new.corpus_version:
        raise GuardError(
            f"cannot compare tokenizer fingerprints taken with different probe corpora "
            f"({old.corpus_version} vs {new.corpus_version})",
            code=errors.FINGERPRINT_MISMATCH,
        )
    if old.digest == new.digest:
        return []
    lines = load_probe_corpus(old.corpus_version)
    diffs: list[LineDiff] = []
    for index, (old_digest, new_digest) in enumerate(
        zip(old.line_digests, new.line_digests, strict=True)
    ):
        if old_digest != new_digest:
            diffs.append(LineDiff(index + 1, lines[index], old.tokens[index], new.tokens[index]))
            if limit is not None and len(diffs) >= limit:
                break
    return diffs


def reader_tokenizer_fingerprint(
    reader: Any, vocab: Vocabulary, corpus_version: str = DEFAULT_PROBE_CORPUS
) -> TokenizerFingerprint | None:
    """The tokenizer fingerprint of a dataset reader's ``tokenizer`` and ``token_indexers``.

    A reader of pre-tokenized data (no ``tokenizer``) splits on whitespace, so the probe corpus
    goes through the whitespace tokenizer; a reader without ``token_indexers`` gives None.
    """

    token_indexers = getattr(reader, "token_indexers", None)
    if not token_indexers:
        return None
    tokenizer = getattr(reader, "tokenizer", None) or WhitespaceTokenizer()
    return tokenizer_fingerprint(tokenizer, token_indexers, vocab, corpus_version)

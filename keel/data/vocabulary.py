"""The ``Vocabulary``: string <-> index maps per namespace, in AllenNLP's directory format.

On disk (identical to AllenNLP's ``save_to_files``): a directory with
``non_padded_namespaces.txt`` (one pattern or name per line) and one ``<namespace>.txt`` per
namespace listing its tokens in index order, one per line, each line ending in ``\\n``. A padded
namespace has ``@@PADDING@@`` at index 0, which is implicit and not written, so its file starts
with ``@@UNKNOWN@@`` (index 1). A non-padded namespace (``*tags``, ``*labels`` by default) has
neither token. Newlines inside tokens are written as ``@@NEWLINE@@``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from keel.common import errors
from keel.common.constraints import Supplied
from keel.common.errors import ConfigIssue, ConfigurationError, DataError
from keel.common.registry import Registrable
from keel.data.instance import Instance
from keel.data.util import gc_paused

DEFAULT_NON_PADDED_NAMESPACES = ("*tags", "*labels")
DEFAULT_PADDING_TOKEN = "@@PADDING@@"
DEFAULT_OOV_TOKEN = "@@UNKNOWN@@"
NAMESPACE_PADDING_FILE = "non_padded_namespaces.txt"
_NEWLINE = "@@NEWLINE@@"


def namespace_match(pattern: str, namespace: str) -> bool:
    """``*suffix`` matches any namespace ending in ``suffix``; anything else matches exactly."""
    if pattern[:1] == "*" and namespace.endswith(pattern[1:]):
        return True
    return pattern == namespace


# Several constructors build a Vocabulary, each registered under its AllenNLP name.
class Vocabulary(Registrable):
    """Maps tokens to indices and back, separately per namespace."""

    default_implementation = "from_instances"

    def __init__(
        self,
        counter: dict[str, dict[str, int]] | None = None,
        min_count: dict[str, int] | None = None,
        max_vocab_size: int | dict[str, int] | None = None,
        non_padded_namespaces: Iterable[str] | None = None,
        tokens_to_add: dict[str, list[str]] | None = None,
    ) -> None:
        if non_padded_namespaces is None:
            non_padded_namespaces = DEFAULT_NON_PADDED_NAMESPACES
        elif isinstance(non_padded_namespaces, str):
            non_padded_namespaces = [non_padded_namespaces]
        # A list, not a set, so the saved file is deterministic (AllenNLP's set order is not).
        self._non_padded_namespaces: list[str] = list(dict.fromkeys(non_padded_namespaces))
        self._token_to_index: dict[str, dict[str, int]] = {}
        self._index_to_token: dict[str, list[str]] = {}
        self._extend(counter, min_count, max_vocab_size, tokens_to_add)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_instances(
        cls,
        instances: Annotated[Iterable[Instance], Supplied],
        min_count: dict[str, int] | None = None,
        max_vocab_size: int | dict[str, int] | None = None,
        non_padded_namespaces: list[str] | None = None,
        tokens_to_add: dict[str, list[str]] | None = None,
    ) -> Vocabulary:
        """Count every token in ``instances`` and keep those that pass the per-namespace limits.

        ``non_padded_namespaces`` defaults to ``["*tags", "*labels"]``. ``max_vocab_size`` (an
        int for every namespace, or per namespace) counts tokens besides padding and OOV.
        """
        counter: dict[str, dict[str, int]] = defaultdict(dict)
        with gc_paused():
            for instance in instances:
                instance.count_vocab_items(counter)
        return cls(
            counter=counter,
            min_count=min_count,
            max_vocab_size=max_vocab_size,
            non_padded_namespaces=non_padded_namespaces,
            tokens_to_add=tokens_to_add,
        )

    @classmethod
    def from_files(cls, directory: str) -> Vocabulary:
        """Load a vocabulary saved by ``save_to_files`` here or by AllenNLP."""
        root = Path(directory)
        if not root.is_dir():
            raise DataError(
                "vocabulary directory not found", path=str(root), code=errors.DATA_NOT_FOUND
            )
        padding_file = root / NAMESPACE_PADDING_FILE
        if not padding_file.is_file():
            raise DataError(
                f"not a vocabulary directory: {NAMESPACE_PADDING_FILE} is missing",
                path=str(root),
                code=errors.BAD_VOCABULARY,
            )
        with open(padding_file, encoding="utf-8") as handle:
            non_padded = [line.strip() for line in handle]
        non_padded = [name for name in non_padded if name]
        vocab = cls(non_padded_namespaces=non_padded)
        # Sorted so namespaces load in a stable order; dot-files (AllenNLP's .lock) are not ours.
        for filename in sorted(os.listdir(root)):
            if filename == NAMESPACE_PADDING_FILE or filename.startswith("."):
                continue
            if not filename.endswith(".txt"):
                continue
            namespace = filename[: -len(".txt")]
            vocab.set_from_file(
                str(root / filename),
                is_padded=not vocab._matches_non_padded(namespace),
                namespace=namespace,
            )
        return vocab

    @classmethod
    def from_files_and_instances(
        cls,
        instances: Annotated[Iterable[Instance], Supplied],
        directory: str,
        min_count: dict[str, int] | None = None,
        max_vocab_size: int | dict[str, int] | None = None,
        non_padded_namespaces: list[str] | None = None,
        tokens_to_add: dict[str, list[str]] | None = None,
    ) -> Vocabulary:
        """Load a saved vocabulary and add the new tokens of ``instances`` after its own."""
        vocab = cls.from_files(directory)
        vocab.extend_from_instances(
            instances,
            min_count=min_count,
            max_vocab_size=max_vocab_size,
            non_padded_namespaces=non_padded_namespaces,
            tokens_to_add=tokens_to_add,
        )
        return vocab

    def extend_from_instances(
        self,
        instances: Annotated[Iterable[Instance], Supplied],
        min_count: dict[str, int] | None = None,
        max_vocab_size: int | dict[str, int] | None = None,
        non_padded_namespaces: list[str] | None = None,
        tokens_to_add: dict[str, list[str]] | None = None,
    ) -> None:
        """Add the tokens of ``instances`` that pass the limits; existing indices never change."""
        patterns = list(
            DEFAULT_NON_PADDED_NAMESPACES
            if non_padded_namespaces is None
            else non_padded_namespaces
        )
        for namespace in self._index_to_token:
            extended = any(namespace_match(p, namespace) for p in patterns)
            if extended and self.is_padded(namespace):
                raise ConfigurationError(
                    [
                        ConfigIssue(
                            errors.BAD_VALUE,
                            "non_padded_namespaces",
                            f"namespace {namespace!r} is padded in the saved vocabulary but "
                            "would not be padded in the extension",
                            found=patterns,
                        )
                    ]
                )
        self._non_padded_namespaces = list(dict.fromkeys([*self._non_padded_namespaces, *patterns]))
        counter: dict[str, dict[str, int]] = defaultdict(dict)
        with gc_paused():
            for instance in instances:
                instance.count_vocab_items(counter)
        self._extend(counter, min_count, max_vocab_size, tokens_to_add)

    @classmethod
    def empty(cls) -> Vocabulary:
        """A vocabulary with no tokens, for models that need none."""
        return cls()

    def set_from_file(
        self,
        filename: str,
        is_padded: bool = True,
        oov_token: str = DEFAULT_OOV_TOKEN,
        namespace: str = "tokens",
    ) -> None:
        """Replace ``namespace`` with the tokens listed one per line in ``filename``."""
        try:
            with open(filename, encoding="utf-8", newline="") as handle:
                lines = handle.read().split("\n")
        except FileNotFoundError as error:
            raise DataError(
                "vocabulary file not found", path=filename, code=errors.DATA_NOT_FOUND
            ) from error
        except UnicodeDecodeError as error:
            raise DataError(
                f"vocabulary file is not UTF-8: {error}", path=filename, code=errors.BAD_VOCABULARY
            ) from error
        # Be flexible about the final newline, as AllenNLP is.
        if lines and lines[-1] == "":
            lines.pop()
        tokens = [DEFAULT_PADDING_TOKEN] if is_padded else []
        for line in lines:
            token = line.replace(_NEWLINE, "\n")
            tokens.append(DEFAULT_OOV_TOKEN if token == oov_token else token)
        token_to_index = {token: index for index, token in enumerate(tokens)}
        if len(token_to_index) != len(tokens):
            seen: set[str] = set()
            for line_number, token in enumerate(tokens[1 if is_padded else 0 :], start=1):
                if token in seen:
                    raise DataError(
                        f"token {token!r} is listed twice in namespace {namespace!r}",
                        path=filename,
                        line=line_number,
                        excerpt=token,
                        code=errors.BAD_VOCABULARY,
                    )
                seen.add(token)
        if is_padded and DEFAULT_OOV_TOKEN not in token_to_index:
            raise DataError(
                f"padded namespace {namespace!r} has no {DEFAULT_OOV_TOKEN} line (it should be "
                "the first line); if the namespace is a tag/label namespace, list it in "
                f"{NAMESPACE_PADDING_FILE}",
                path=filename,
                code=errors.BAD_VOCABULARY,
            )
        self._token_to_index[namespace] = token_to_index
        self._index_to_token[namespace] = tokens

    def _extend(
        self,
        counter: dict[str, dict[str, int]] | None,
        min_count: dict[str, int] | None,
        max_vocab_size: int | dict[str, int] | None,
        tokens_to_add: dict[str, list[str]] | None,
    ) -> None:
        min_count = min_count or {}
        for namespace, counts in (counter or {}).items():
            # A stable sort by count, most frequent first: ties keep first-seen order, as in
            # AllenNLP, so both write the same files from the same data.
            token_counts = sorted(counts.items(), key=lambda item: item[1], reverse=True)
            if isinstance(max_vocab_size, dict):
                limit = max_vocab_size.get(namespace)
            else:
                limit = max_vocab_size
            if limit:
                token_counts = token_counts[:limit]
            threshold = min_count.get(namespace, 1)
            for token, count in token_counts:
                if count >= threshold:
                    self.add_token_to_namespace(token, namespace)
        for namespace, tokens in (tokens_to_add or {}).items():
            for token in tokens:
                self.add_token_to_namespace(token, namespace)

    # -- queries -----------------------------------------------------------------------------

    def _matches_non_padded(self, namespace: str) -> bool:
        return any(namespace_match(pattern, namespace) for pattern in self._non_padded_namespaces)

    def _namespace(self, namespace: str) -> tuple[dict[str, int], list[str]]:
        """The maps of ``namespace``, created (padded or not, by pattern) on first use."""
        mapping = self._token_to_index.get(namespace)
        if mapping is None:
            if self._matches_non_padded(namespace):
                tokens = []
            else:
                tokens = [DEFAULT_PADDING_TOKEN, DEFAULT_OOV_TOKEN]
            mapping = {token: index for index, token in enumerate(tokens)}
            self._token_to_index[namespace] = mapping
            self._index_to_token[namespace] = tokens
        return mapping, self._index_to_token[namespace]

    def add_token_to_namespace(self, token: str, namespace: str = "tokens") -> int:
        """Add ``token`` if new; either way return its index."""
        if not isinstance(token, str):
            raise TypeError(
                f"vocabulary tokens must be strings, got {token!r} ({type(token).__name__})"
            )
        mapping, tokens = self._namespace(namespace)
        index = mapping.get(token)
        if index is None:
            index = len(tokens)
            mapping[token] = index
            tokens.append(token)
        return index

    def add_tokens_to_namespace(
        self, tokens: Iterable[str], namespace: str = "tokens"
    ) -> list[int]:
        return [self.add_token_to_namespace(token, namespace) for token in tokens]

    def get_namespaces(self) -> list[str]:
        return list(self._token_to_index)

    def is_padded(self, namespace: str) -> bool:
        """Whether ``namespace`` reserves index 0 for padding and index 1 for OOV."""
        tokens = self._index_to_token.get(namespace)
        if tokens is None:
            return not self._matches_non_padded(namespace)
        return bool(tokens) and tokens[0] == DEFAULT_PADDING_TOKEN

    def get_token_to_index_vocabulary(self, namespace: str = "tokens") -> dict[str, int]:
        """The token -> index map itself (do not modify it)."""
        return self._namespace(namespace)[0]

    def get_index_to_token_vocabulary(self, namespace: str = "tokens") -> dict[int, str]:
        return dict(enumerate(self._namespace(namespace)[1]))

    def get_tokens(self, namespace: str = "tokens") -> list[str]:
        """The tokens of ``namespace`` in index order (a copy)."""
        return list(self._namespace(namespace)[1])

    def get_token_index(self, token: str, namespace: str = "tokens") -> int:
        """The index of ``token``; OOV's index in a padded namespace, an error otherwise."""
        mapping = self._namespace(namespace)[0]
        index = mapping.get(token)
        if index is not None:
            return index
        oov = mapping.get(DEFAULT_OOV_TOKEN)
        if oov is not None:
            return oov
        raise self.unseen_token_error(token, namespace)

    def unseen_token_error(self, token: str, namespace: str) -> DataError:
        known = list(self._namespace(namespace)[0])
        shown = ", ".join(repr(name) for name in known[:20]) + (" ..." if len(known) > 20 else "")
        return DataError(
            f"{token!r} is not in vocabulary namespace {namespace!r}, which has no OOV token "
            f"(known: {shown or 'none'}); it was not seen when the vocabulary was built",
            code=errors.UNSEEN_LABEL,
        )

    def get_token_from_index(self, index: int, namespace: str = "tokens") -> str:
        tokens = self._namespace(namespace)[1]
        if not 0 <= index < len(tokens):
            raise IndexError(f"index {index} is out of range for namespace {namespace!r}")
        return tokens[index]

    def get_vocab_size(self, namespace: str = "tokens") -> int:
        return len(self._namespace(namespace)[1])

    # -- persistence -------------------------------------------------------------------------

    def save_to_files(self, directory: str) -> None:
        """Write the vocabulary in AllenNLP's format (byte-identical for the same content)."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / NAMESPACE_PADDING_FILE, "w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(f"{name}\n" for name in self._non_padded_namespaces)
        for namespace, tokens in self._index_to_token.items():
            start = 1 if tokens and tokens[0] == DEFAULT_PADDING_TOKEN else 0
            with open(root / f"{namespace}.txt", "w", encoding="utf-8", newline="\n") as handle:
                handle.writelines(
                    f"{token.replace(chr(10), _NEWLINE)}\n" for token in tokens[start:]
                )

    # -- dunder ------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._index_to_token == other._index_to_token and set(
            self._non_padded_namespaces
        ) == set(other._non_padded_namespaces)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(tokens)}" for name, tokens in self._index_to_token.items())
        return f"Vocabulary({sizes}; non_padded={self._non_padded_namespaces})"


Vocabulary.register("from_instances", constructor="from_instances")(Vocabulary)
Vocabulary.register("from_files", constructor="from_files")(Vocabulary)
Vocabulary.register("from_files_and_instances", constructor="from_files_and_instances")(Vocabulary)
Vocabulary.register("empty", constructor="empty")(Vocabulary)

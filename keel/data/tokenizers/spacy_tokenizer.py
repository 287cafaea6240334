"""``spacy``: spaCy's rule-based tokenizer, as AllenNLP's ``spacy`` tokenizer applies it.

AllenNLP's default tokenizer (``text_classification_json`` and others use it when a config
names none). It runs the language's spaCy tokenizer and drops whitespace tokens; the tagger,
parser and NER of a trained pipeline (``pos_tags``, ``parse``, ``ner``) never change the token
texts, and keel's tokens carry no tags, so keel needs no trained model: when the named model
(``en_core_web_sm``) is installed its tokenizer is used, otherwise the blank tokenizer of its
language, built from the same rules and shipped inside spaCy (nothing is downloaded). Which of
the two ran, and the spaCy version, go into the tokenizer fingerprint, so verify notices when
either changes.

Needs the optional extra: ``pip install 'keel[spacy]'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from keel.common import errors
from keel.common.errors import ConfigurationError, DataError
from keel.common.optional_dependencies import require
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer

# spaCy package names start with the language code: en_core_web_sm, de_core_news_md, xx_ent_wiki_sm.
_LANGUAGE_CODE = re.compile(r"^([a-z]{2,3})(?:_|$)")


@Tokenizer.register("spacy")
class SpacyTokenizer(Tokenizer):
    """Tokens from spaCy's tokenizer for ``language``, whitespace tokens removed (AllenNLP's
    ``SpacyTokenizer``, with its options and defaults).

    ``language`` is a spaCy package name (``en_core_web_sm``) or a language code (``en``).
    ``split_on_spaces`` splits on single spaces instead (AllenNLP's option for pre-tokenized
    text). ``start_tokens``/``end_tokens`` are added around every text, with AllenNLP's offsets
    (0 and -1). ``pos_tags``, ``parse``, ``ner`` and ``keep_spacy_tokens`` are accepted because
    AllenNLP configs carry them (``pos_tags`` is on by default there); they change no token text
    and keel has no indexer that reads tags.
    """

    def __init__(
        self,
        language: str = "en_core_web_sm",
        pos_tags: bool = True,
        parse: bool = False,
        ner: bool = False,
        keep_spacy_tokens: bool = False,
        split_on_spaces: bool = False,
        start_tokens: list[str] | None = None,
        end_tokens: list[str] | None = None,
    ) -> None:
        self.language = language
        self.pos_tags, self.parse, self.ner = pos_tags, parse, ner
        self.keep_spacy_tokens = keep_spacy_tokens
        self.split_on_spaces = split_on_spaces
        self.start_tokens = list(start_tokens or [])
        self.end_tokens = list(end_tokens or [])
        spacy = require("spacy", extra="spacy", needed_by="the 'spacy' tokenizer")
        self._spacy_version = str(spacy.__version__)
        self._spacy_tokenizer, self._pipeline = _spacy_tokenizer(spacy, language)

    def tokenize(self, text: str) -> list[Token]:
        if self.split_on_spaces:
            return self._wrap(_split_on_single_spaces(text))
        return self._wrap(_without_spaces(self._spacy_tokenizer(text)))

    def batch_tokenize(self, texts: list[str]) -> list[list[Token]]:
        if self.split_on_spaces:
            return [self.tokenize(text) for text in texts]
        return [self._wrap(_without_spaces(doc)) for doc in self._spacy_tokenizer.pipe(texts)]

    def fingerprint_material(self) -> bytes:
        """The spaCy version, the pipeline whose tokenizer ran, and the options."""
        return json.dumps(
            {
                "spacy": self._spacy_version,
                "tokenizer_of": self._pipeline,
                "split_on_spaces": self.split_on_spaces,
                "start_tokens": self.start_tokens,
                "end_tokens": self.end_tokens,
            },
            sort_keys=True,
        ).encode("utf-8")

    def _wrap(self, tokens: list[Token]) -> list[Token]:
        if not self.start_tokens and not self.end_tokens:
            return tokens
        return (
            [Token(text, 0) for text in self.start_tokens]
            + tokens
            + [Token(text, -1) for text in self.end_tokens]
        )


def _spacy_tokenizer(spacy: Any, language: str) -> tuple[Any, str]:
    """(a callable spaCy tokenizer, a description of the pipeline it came from)."""
    if spacy.util.is_package(language) or Path(language).is_dir():
        # spacy.load takes an installed package or a saved pipeline's directory, as in AllenNLP;
        # only its tokenizer is used, so no component is loaded.
        nlp = spacy.load(language, exclude=list(_pipe_names(spacy, language)))
        meta = nlp.meta
        name = f"{meta.get('lang', '?')}_{meta.get('name', '?')}"
        return nlp.tokenizer, f"{name} {meta.get('version', '?')}"
    match = _LANGUAGE_CODE.match(language)
    if match is None:
        raise ConfigurationError(
            f"language: {language!r} is neither an installed spaCy package nor a language code "
            "(expected e.g. 'en_core_web_sm' or 'en')",
            code=errors.BAD_VALUE,
        )
    code = match.group(1)
    try:
        nlp = spacy.blank(code)
    except (ImportError, KeyError) as error:
        raise ConfigurationError(
            f"language: spaCy {spacy.__version__} has no language {code!r} (from {language!r})",
            code=errors.BAD_VALUE,
        ) from error
    return nlp.tokenizer, f"spacy.blank({code!r})"


def _pipe_names(spacy: Any, language: str) -> Iterable[str]:
    """The components a saved pipeline lists, all excluded from loading (only its tokenizer
    is needed, and a missing component package must not stop it)."""
    root = Path(language) if Path(language).is_dir() else spacy.util.get_package_path(language)
    config = Path(root) / "config.cfg"
    return list(spacy.util.load_config(config)["nlp"]["pipeline"]) if config.is_file() else []


def _without_spaces(doc: Any) -> list[Token]:
    return [
        Token(token.text, token.idx, token.idx + len(token.text))
        for token in doc
        if not token.is_space
    ]


def _split_on_single_spaces(text: str) -> list[Token]:
    # AllenNLP builds a spaCy Doc from text.split(" ") (which refuses an empty word, so two
    # spaces in a row were an error there too), then drops the tokens that are all whitespace.
    tokens = []
    start = 0
    for word in text.split(" "):
        if not word:
            raise DataError(
                f"split_on_spaces: empty token at character {start} (two spaces in a row, or a "
                f"leading or trailing space) in {text[:80]!r}; AllenNLP's spacy tokenizer "
                "refused such text too"
            )
        if not word.isspace():
            tokens.append(Token(word, start, start + len(word)))
        start += len(word) + 1
    return tokens

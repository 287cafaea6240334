"""The ``Token``: one piece of text plus optional offsets and ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Token:
    """A token: its text, character offsets ``[idx, idx_end)`` into the source, and optional ids."""

    text: str
    idx: int | None = None
    idx_end: int | None = None
    text_id: int | None = None
    type_id: int | None = None

    def __str__(self) -> str:
        return self.text


_set_text, _set_idx, _set_idx_end, _set_text_id, _set_type_id = (
    Token.__dict__[name].__set__ for name in ("text", "idx", "idx_end", "text_id", "type_id")
)


class SharedToken(Token):
    """A read-only ``Token`` that stands for every occurrence of its text.

    Tokenizers whose tokens carry nothing but text (``whitespace``) hand out one of these per
    distinct word instead of one object per occurrence: a data set then holds a few thousand
    token objects rather than millions, which saves memory and garbage-collector time. Since
    one object is shared, changing it would change every sentence; build a new ``Token``
    (``dataclasses.replace``) instead. Compares equal to a ``Token`` with the same fields.
    """

    __slots__ = ()

    def __init__(
        self,
        text: str,
        idx: int | None = None,
        idx_end: int | None = None,
        text_id: int | None = None,
        type_id: int | None = None,
    ) -> None:
        # The slots' own setters: __setattr__ refuses every change after this.
        _set_text(self, text)
        _set_idx(self, idx)
        _set_idx_end(self, idx_end)
        _set_text_id(self, text_id)
        _set_type_id(self, type_id)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"this token ({self.text!r}) is shared by every occurrence of its text and is "
            "read-only; use dataclasses.replace(token, ...) or Token(...) for a changed copy"
        )

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def _fields(self) -> tuple[Any, ...]:
        return (self.text, self.idx, self.idx_end, self.text_id, self.type_id)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Token):
            return self._fields() == (
                other.text,
                other.idx,
                other.idx_end,
                other.text_id,
                other.type_id,
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like Token: mutable dataclasses are unhashable

    def __repr__(self) -> str:
        return (
            f"Token(text={self.text!r}, idx={self.idx!r}, idx_end={self.idx_end!r}, "
            f"text_id={self.text_id!r}, type_id={self.type_id!r})"
        )

    def __copy__(self) -> SharedToken:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedToken:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (SharedToken, self._fields())


class TokenCache(dict[str, SharedToken]):
    """``cache[text]`` is the shared token for ``text``, made on first use.

    Bounded: past ``max_size`` texts it starts over, so a stream of new words cannot grow it
    without limit (frequent words come back at once).
    """

    __slots__ = ("max_size",)

    def __init__(self, max_size: int = 200_000) -> None:
        super().__init__()
        self.max_size = max_size

    def __missing__(self, text: str) -> SharedToken:
        if len(self) >= self.max_size:
            self.clear()
        token = self[text] = SharedToken(text)
        return token

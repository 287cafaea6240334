"""Canonical bytes for digests: little-endian packed integers, length-prefixed UTF-8.

Never ``hash()`` or ``repr``, so a digest is the same in every process and on every platform.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any

from keel.common.file_utils import canonical_json as _strict_canonical_json

BIG_ENDIAN = sys.byteorder == "big"
U32 = struct.Struct("<I")
I64 = struct.Struct("<q")


def u32(value: int) -> bytes:
    """An unsigned 32-bit little-endian integer."""
    return U32.pack(value)


def string_bytes(text: str) -> bytes:
    """One string: its UTF-8 length, then its UTF-8."""
    data = text.encode("utf-8", "surrogatepass")
    return U32.pack(len(data)) + data


def strings_bytes(texts: list[str]) -> bytes:
    """A list of strings: count, each length in code points, then the UTF-8 of their join.

    The lengths make the join unambiguous without escaping, and cost one C-level pass.
    """
    lengths = array("I", map(len, texts))
    if BIG_ENDIAN:
        lengths.byteswap()
    joined = "".join(texts).encode("utf-8", "surrogatepass")
    return U32.pack(len(texts)) + lengths.tobytes() + U32.pack(len(joined)) + joined


def ints_bytes(values: Any) -> bytes:
    """A (possibly nested) list of ints: a tag, the count, then packed int64s or the children."""
    if values and type(values[0]) is list:
        return b"N" + U32.pack(len(values)) + b"".join(ints_bytes(child) for child in values)
    packed = array("q", values)
    if BIG_ENDIAN:
        packed.byteswap()
    return b"F" + U32.pack(len(packed)) + packed.tobytes()


def canonical_json(value: Any) -> str:
    """Canonical JSON for metadata; objects JSON cannot express count only by their type."""
    try:
        text = _strict_canonical_json(value)
    except (TypeError, ValueError):
        text = "<" + type(value).__qualname__ + ">"
    return text


def nul_terminated(texts: list[str]) -> bytes:
    """Each string's UTF-8 followed by NUL, with NUL and \\x01 inside a string escaped.

    The escape makes the encoding injective; strings without either character (all real
    tokens) take one C-level join, checked by counting the separators.
    """
    if not texts:
        return b""
    joined = "\x00".join(texts)
    if "\x01" in joined or joined.count("\x00") != len(texts) - 1:
        joined = "\x00".join(
            text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x03") for text in texts
        )
    return (joined + "\x00").encode("utf-8", "surrogatepass")

"""JSON in and out by orjson (several times faster than the standard library), with the
standard library's results.

Out: compact UTF-8. Values orjson refuses go through `json.dumps`, so nothing that encoded
before fails now: a lone surrogate (a client can send one as `\\ud800`) becomes '?', an integer
beyond 64 bits keeps its digits. NaN and infinity, which no decoder here lets in, become null.

In: whatever orjson refuses (NaN, lone surrogates, deep nesting, other encodings) goes to
`json.loads`, which accepts or refuses it as before. orjson reads an integer beyond 64 bits as
a float without a word, so text with a run of 19 digits or more goes to `json.loads` too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")


def dumps_text(value: Any) -> str:
    """The same JSON, as text (lone surrogates replaced)."""
    return dumps(value).decode("utf-8")


def loads(data: bytes | str, **fallback: Any) -> Any:
    """`json.loads(data, **fallback)`, by orjson when that gives the same value."""
    if not (_LONG_DIGITS_BYTES if isinstance(data, bytes) else _LONG_DIGITS).search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, **fallback)

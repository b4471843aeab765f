"""Upstream URLs: one slash between baseUri and path, path parameters encoded as one segment.

A caller's value can never leave its segment: `/`, `?`, `#` and `%` are percent-encoded, and
`.`, `..`, empty values and control characters are refused. The host comes from the file (or
`--upstream`), never from input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from ..templates import as_text

_PLACEHOLDER = re.compile(r"\{\{?\s*([^{}\s]+?)\s*\}?\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")  # what quote(safe='') leaves as it is
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")
_PATH_SAFE = "/%!$&'()*+,;=:@"
_QUERY_SAFE = "?/:@!$'()*,"  # left as is in a query name or value (as yarl does)


class PathValueError(ValueError):
    def __init__(self, name: str, reason: str):
        self.name = name
        super().__init__(reason)


def join_url(base: str, path: str) -> str:
    if not path:
        return base.rstrip("/")
    return base.rstrip("/") + "/" + path.lstrip("/")


def split_origin(url: str) -> tuple[str, str]:
    """`http://host:port/a/b` -> (`http://host:port`, `/a/b`); the path is `/` when empty."""
    slash = url.find("/", url.find("://") + 3)
    if slash < 0:
        return url, "/"
    return url[:slash], url[slash:]


def request_target(path: str, query: Sequence[tuple[str, Any]]) -> str:
    """The request-target put on the wire (and signed by digest auth): the already encoded
    path, plus the query with space as `+` and `&=+;#%` escaped. The one place that decides
    how a query name or value is encoded (QueryAuth masks a key's value in this form)."""
    if _PATH_UNSAFE.search(path):
        path = quote(path, safe=_PATH_SAFE)
    if not query:
        return path
    pairs = "&".join(
        f"{quote_plus(k, _QUERY_SAFE, errors='ignore')}={quote_plus(v if type(v) is str else str(v), _QUERY_SAFE, errors='ignore')}"
        for k, v in query
    )
    return f"{path}?{pairs}"


def encode_segment(name: str, value: Any) -> str:
    text = as_text(value)
    if _UNRESERVED.fullmatch(text) and text not in (".", ".."):
        return text  # what quote() would return, sooner
    if text in ("", ".", ".."):
        raise PathValueError(
            name,
            f"path parameter {name!r} must not be {text!r}" if text else f"path parameter {name!r} must not be empty",
        )
    if _CONTROL.search(text):
        raise PathValueError(name, f"path parameter {name!r} must not contain control characters")
    return quote(text, safe="")


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A consumed resource path with `{x}` / `{{x}}` placeholders, split once at load."""

    parts: tuple[str, ...]  # literal, name, literal, name, … (odd indexes are names)

    @classmethod
    def compile(cls, path: str) -> PathTemplate:
        parts: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(path):
            parts.extend((path[position : match.start()], match.group(1)))
            position = match.end()
        parts.append(path[position:])
        return cls(tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        return self.parts[1::2]

    def render(self, value_of: Callable[[str], Any]) -> str:
        out = []
        for index, part in enumerate(self.parts):
            out.append(encode_segment(part, value_of(part)) if index % 2 else part)
        return "".join(out)

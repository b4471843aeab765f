"""Upstream URLs: one slash between baseUri and path, path parameters encoded as one segment.

A caller's value can never leave its segment: `/`, `?`, `#` and `%` are percent-encoded, and
`.`, `..`, empty values and control characters are refused. The host comes from the file (or
`--upstream`), never from input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..templates import as_text

_PLACEHOLDER = re.compile(r"\{\{?\s*([^{}\s]+?)\s*\}?\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PathValueError(ValueError):
    def __init__(self, name: str, reason: str):
        self.name = name
        super().__init__(reason)


def join_url(base: str, path: str) -> str:
    if not path:
        return base.rstrip("/")
    return base.rstrip("/") + "/" + path.lstrip("/")


def encode_segment(name: str, value: Any) -> str:
    text = as_text(value)
    if text in ("", ".", ".."):
        raise PathValueError(name, f"path parameter {name!r} must not be {text!r}" if text else f"path parameter {name!r} must not be empty")
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

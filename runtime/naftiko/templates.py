"""The template grammar of capability files, compiled once at load.

`{{NAME}}`, `{{ns.NAME}}`, `{{env.NAME}}`, `{{input-name}}` and `<<env.NAME>>` (the same as
`{{env.NAME}}`). A rendered value is inserted as text and never rendered again, so caller input
can never act as a template. Dicts and lists are inserted as JSON, None as the empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}|<<\s*(env\.[A-Za-z_][A-Za-z0-9_]*)\s*>>")
MISSING = object()
"""Returned by a lookup for a name it does not know."""


@dataclass(frozen=True, slots=True)
class Variable:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[str | Variable, ...]

    @classmethod
    def compile(cls, source: str) -> Template:
        parts: list[str | Variable] = []
        position = 0
        for match in _TOKEN.finditer(source):
            if match.start() > position:
                parts.append(source[position : match.start()])
            parts.append(Variable(match.group(1) or match.group(2)))
            position = match.end()
        if position < len(source):
            parts.append(source[position:])
        return cls(source, tuple(parts))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Variable))

    @property
    def is_literal(self) -> bool:
        return not any(isinstance(p, Variable) for p in self.parts)

    @property
    def sole_variable(self) -> str | None:
        """The name when the template is exactly one placeholder: its value can keep its JSON type."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Variable):
            return self.parts[0].name
        return None

    def render(self, lookup: Callable[[str], Any], missing: list[str] | None = None) -> str:
        """Render; names the lookup does not know become "" and are appended to `missing`."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = lookup(part.name)
            if value is MISSING:
                if missing is not None:
                    missing.append(part.name)
                continue
            out.append(as_text(value))
        return "".join(out)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def variables_in(text: str) -> tuple[str, ...]:
    return Template.compile(text).variables

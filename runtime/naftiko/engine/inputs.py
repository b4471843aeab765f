"""Inputs of an invocation target: declared, or inferred from the consumed operation.

Sources say where a consumed parameter's value comes from: a caller input (`rest.X`,
`tools.X`, `<namespace>.X`, `$this.<namespace>.X`), a template over inputs and binds, or a
literal. The same `InputField`s give MCP its `inputSchema` and REST its OpenAPI parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..templates import Template
from .results import InvalidInput

JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object")


@dataclass(frozen=True, slots=True)
class InputField:
    name: str
    type: str | None  # a JSON type, or None for any
    description: str | None = None
    required: bool = False
    location: str = "query"  # where REST finds it: path, query, header, cookie, body
    whole_body: bool = False  # REST: the request body itself is this input
    body_path: str | None = None  # REST: a JSONPath into the request body

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type} if self.type else {}
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True, slots=True)
class InputRef:
    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


Source = InputRef | Template | Literal


def compile_source(value: Any, namespaces: tuple[str, ...]) -> Source:
    """A `with` value: an input reference, a template, or a literal (DESIGN §4.3)."""
    if isinstance(value, str):
        name = input_reference(value, namespaces)
        if name is not None:
            return InputRef(name)
        template = Template.compile(value)
        if not template.is_literal:
            return template
    return Literal(value)


def input_reference(text: str, namespaces: tuple[str, ...]) -> str | None:
    for prefix in ("rest.", "tools.", *(f"{ns}." for ns in namespaces)):
        if text.startswith(prefix) and len(text) > len(prefix) and "{{" not in text:
            return text[len(prefix) :]
    match = re.fullmatch(r"\$this\.[^.]+\.(.+)", text)
    return match.group(1) if match else None


def json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def type_matches(expected: str | None, value: Any) -> bool:
    if expected is None or expected not in JSON_TYPES:
        return True
    actual = json_type_of(value)
    return actual == expected or (expected == "number" and actual == "integer")


def check_inputs(fields: tuple[InputField, ...], known: frozenset[str], inputs: Mapping[str, Any]) -> InvalidInput | None:
    """The first problem with the caller's inputs, or None; `known` holds the fields' names."""
    for name in inputs:
        if name not in known:
            expected = ", ".join(sorted(known)) or "none"
            return InvalidInput(name, f"unknown input {name!r} (expected: {expected})")
    for field in fields:
        if field.name not in inputs or inputs[field.name] is None:
            if field.required:
                return InvalidInput(field.name, f"missing required input {field.name!r}")
            continue
        if not type_matches(field.type, inputs[field.name]):
            got = json_type_of(inputs[field.name])
            return InvalidInput(field.name, f"input {field.name!r} must be of type {field.type} (got {got})")
        problem = _unsendable(inputs[field.name])
        if problem:
            return InvalidInput(field.name, f"input {field.name!r} holds {problem}")
    return None


def _unsendable(value: Any) -> str | None:
    """What in `value` cannot be sent on as JSON or UTF-8: NaN or infinity (`1e999` parses as one), a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "text that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "a number JSON cannot carry (NaN or infinite)"
    return None

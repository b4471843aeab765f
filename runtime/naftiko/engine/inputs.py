"""Inputs of an invocation target: declared, or inferred from the consumed operation.

Sources say where a consumed parameter's value comes from: a caller input (`rest.X`,
`tools.X`, `<namespace>.X`, `$this.<namespace>.X`), a template over inputs and binds, or a
literal. The same `InputField`s give MCP its `inputSchema` and REST its OpenAPI parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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
    param: str | None = None  # REST: the path placeholder's own spelling when it differs from `name`

    @property
    def wire_name(self) -> str:
        """The name REST reads it under (path placeholder, query key, header, cookie)."""
        return self.param or self.name

    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema of the value: its JSON type, or any value when the file gives none
        that JSON knows (`type: file`, `type: date`… are taken as they come)."""
        if self.type == "array":
            return {"type": "array", "items": {}}  # items of any type, said (Spectral's array-items)
        return {"type": self.type} if self.type in JSON_TYPES else {}

    def json_schema(self) -> dict[str, Any]:
        schema = self.value_schema()
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


def check_inputs(
    fields: tuple[InputField, ...], known: frozenset[str], inputs: Mapping[str, Any]
) -> InvalidInput | None:
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


# -- path placeholders and inputs (one rule for REST routes, OpenAPI and validate) ---------------


def placeholder_key(name: str) -> str:
    """What a placeholder and an input must share to match: `{route-id}`, `route_id` and
    `routeId` are one name to the people who write capability files."""
    return name.replace("-", "").replace("_", "").lower()


@dataclass(frozen=True, slots=True)
class Ambiguity:
    placeholder: str
    candidates: tuple[str, ...]  # two or more input names, or placeholders when `by_input`
    by_input: bool = False  # one input matched by several placeholders

    def __str__(self) -> str:
        if self.by_input:
            others = " and ".join("{" + c + "}" for c in self.candidates)
            return f"input {self.placeholder!r} matches both placeholders {others}: rename one so they differ by more than case, '-' or '_'"
        both = " and ".join(repr(c) for c in self.candidates)
        return (
            f"path placeholder {{{self.placeholder}}} matches both inputs {both} (case, '-' and '_' aside):"
            " spell the placeholder exactly as one of them"
        )


def match_placeholders(
    placeholders: Iterable[str], names: Iterable[str], path_inputs: frozenset[str] = frozenset()
) -> tuple[dict[str, str], list[Ambiguity]]:
    """Which input each path placeholder supplies: an exact spelling wins, otherwise the one input
    equal to it once case, `-` and `_` are ignored — among several, the one the consumed path
    needs (`path_inputs`: `{http-protocol}` is `http_protocol` of the consumed path, not the
    query parameter `httpProtocol`). Placeholders no input matches are left out; a placeholder
    two inputs match (or an input two placeholders match) is an Ambiguity."""
    names = list(dict.fromkeys(names))
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(placeholder_key(name), []).append(name)
    matched: dict[str, str] = {}
    problems: list[Ambiguity] = []
    unique = list(dict.fromkeys(placeholders))
    exact = {p for p in unique if p in names}
    for placeholder in unique:
        if placeholder in exact:
            matched[placeholder] = placeholder
            continue
        candidates = [n for n in by_key.get(placeholder_key(placeholder), ()) if n not in exact]
        if len(candidates) > 1 and len([n for n in candidates if n in path_inputs]) == 1:
            candidates = [n for n in candidates if n in path_inputs]
        if len(candidates) == 1:
            matched[placeholder] = candidates[0]
        elif candidates:
            problems.append(Ambiguity(placeholder, tuple(candidates)))
    users: dict[str, list[str]] = {}
    for placeholder, name in matched.items():
        users.setdefault(name, []).append(placeholder)
    for name, spellings in users.items():
        if len(spellings) > 1:
            problems.append(Ambiguity(name, tuple(spellings), by_input=True))
            for spelling in spellings:
                if spelling != name:
                    matched.pop(spelling, None)
    return matched, problems


def place_on_route(
    fields: Sequence[InputField], placeholders: Sequence[str]
) -> tuple[tuple[InputField, ...], list[Ambiguity]]:
    """A REST operation's inputs placed on its route (DESIGN §4.3, §4.6).

    Each placeholder of the route reads the input it matches (`match_placeholders`); a
    placeholder no input matches becomes a required text input of its own. An input the consumed
    operation needs in its path but the route lacks is read from a required query parameter.
    Inputs that are the request body itself or a JSONPath into it stay where they are.
    """
    movable = [f.name for f in fields if not f.whole_body and f.body_path is None]
    matched, problems = match_placeholders(
        placeholders, movable, frozenset(f.name for f in fields if f.location == "path")
    )
    by_name = {name: placeholder for placeholder, name in matched.items()}
    placed: list[InputField] = []
    for field in fields:
        placeholder = by_name.get(field.name)
        if placeholder is not None:
            field = replace(
                field, location="path", required=True, param=None if placeholder == field.name else placeholder
            )
        elif field.location == "path":
            field = replace(field, location="query", required=True, param=None)
        placed.append(field)
    taken = {f.name for f in placed}
    for placeholder in dict.fromkeys(placeholders):
        if (
            placeholder not in matched
            and placeholder not in taken
            and not any(placeholder == a.placeholder for a in problems)
        ):
            placed.append(InputField(placeholder, "string", None, True, "path"))
    return tuple(placed), problems

"""JSON Schema validation at two levels, with errors a person can read.

The dialect schema (ours) decides whether the runtime can serve a file; the official alpha2
schema decides `--strict`. Both run on jsonschema-rs: its `is_valid` is fast enough to check
every file of a large folder twice, and details are only computed for files that fail.
A failed `oneOf`/`anyOf` is reported through the branch the document most plausibly meant
(the one with fewest errors on the object itself, e.g. the exposure whose `type` matches),
never as a dump of every alternative.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema_rs

from .diagnostics import JsonPath

DIALECT_SCHEMA = "naftiko-1.0.0-alpha2.schema.json"
OFFICIAL_SCHEMA = "naftiko-1.0.0-alpha2.official.schema.json"
_MAX_VALUE_REPR = 60


@cache
def validator(name: str) -> jsonschema_rs.Draft202012Validator:
    schema = json.loads(files("naftiko.schema").joinpath(name).read_text(encoding="utf-8"))
    return jsonschema_rs.Draft202012Validator(schema)


def schema_errors(name: str, document: Any) -> list[tuple[JsonPath, str]]:
    """(path, message) for every leaf error of `document` under schema `name`; [] when valid."""
    checker = validator(name)
    if checker.is_valid(document):
        return []
    found: dict[tuple[JsonPath, str], None] = {}
    for error in checker.iter_errors(document):
        for leaf in _leaves(error):
            found.setdefault((_path_of(leaf), _message(leaf)), None)
    return list(found)


def _path_of(error: Any) -> JsonPath:
    return tuple(error.instance_path)


def _leaves(error: Any) -> Iterator[Any]:
    branches = getattr(error.kind, "context", None)
    if not branches:
        yield error
        return
    base = len(error.instance_path)

    def shallow(branch: list[Any]) -> int:
        # Errors on the object itself (missing keys, stray keys) hint the branch is the wrong one;
        # a `type` discriminator that does not match says so outright.
        score = 0
        for e in branch:
            if len(e.instance_path) == base + 1 and e.instance_path[-1] == "type":
                score += 100
            elif len(e.instance_path) <= base + 1:
                score += 1
        return score

    chosen = min(branches, key=lambda branch: (shallow(branch), len(branch)))
    for inner in chosen:
        yield from _leaves(inner)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 1] + "…"


def _message(error: Any) -> str:
    kind = type(error.kind).__name__
    detail = error.kind.as_dict()
    if kind == "Required":
        return f"missing required property {detail['property']!r}"
    if kind in ("AdditionalProperties", "UnevaluatedProperties"):
        names = ", ".join(repr(n) for n in detail.get("unexpected", [])) or "some"
        return f"unexpected property {names}"
    if kind == "Constant":
        return f"must be {_short(detail['expected_value'])} (got {_short(error.instance)})"
    if kind == "Enum":
        options = ", ".join(_short(o) for o in detail["options"])
        return f"must be one of {options} (got {_short(error.instance)})"
    if kind == "Type":
        types = " or ".join(str(t) for t in detail["types"])
        return f"must be of type {types} (got {_json_type(error.instance)})"
    if kind == "Pattern":
        return f"{_short(error.instance)} does not match the pattern {detail['pattern']}"
    if kind == "FalseSchema":
        return "property not allowed here"
    message = error.message
    return message if len(message) <= 200 else message[:199] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"

"""Output mapping (DESIGN §4.5): shape an upstream JSON value into the declared outputs.

Compiled once at load. `mapping` (or `value` starting with `$`) is a JSONPath. An object's
properties are evaluated relative to the node its own `mapping` selected (the root when it has
none); array `items` relative to each element. An object or array with no `properties`/`items`
passes the selected subtree through. Other `value`s are constants or templates (mock outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..templates import Template
from .jsonpath import JsonPath

Lookup = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class OutputField:
    name: str | None
    type: str
    path: JsonPath | None
    constant: Template | Any | None
    properties: tuple[OutputField, ...] | None
    items: OutputField | None
    max_length: int | None = None

    def apply(self, node: Any, lookup: Lookup) -> Any:
        if self.path is None and self.constant is not None:
            return self.constant.render(lookup) if isinstance(self.constant, Template) else self.constant
        selected = self.path.select(node) if self.path is not None else node
        if self.type == "object" and self.properties is not None:
            if selected is None:
                return None
            return {p.name: p.apply(selected, lookup) for p in self.properties}
        if self.type == "array" and self.items is not None:
            if not isinstance(selected, list):
                return None
            return [self.items.apply(element, lookup) for element in selected]
        if isinstance(selected, str) and self.max_length is not None:
            return selected[: self.max_length]
        return selected


def compile_field(spec: Mapping[str, Any], name: str | None = None) -> OutputField:
    mapping = spec.get("mapping")
    value = spec.get("value")
    path: JsonPath | None = None
    constant: Any = None
    if isinstance(mapping, str):
        path = JsonPath.compile(mapping)
    elif isinstance(value, str) and value.strip().startswith("$"):
        path = JsonPath.compile(value)
    elif value is not None:
        constant = Template.compile(value) if isinstance(value, str) else value
    properties = spec.get("properties")
    items = spec.get("items")
    max_length = spec.get("maxLength")
    return OutputField(
        name=name if name is not None else spec.get("name"),
        type=str(spec.get("type", "string")),
        path=path,
        constant=constant,
        properties=tuple(compile_field(v, k) for k, v in properties.items())
        if isinstance(properties, dict) and properties
        else None,
        items=compile_field(items)
        if isinstance(items, dict) and (items.get("properties") or items.get("mapping") or items.get("value"))
        else None,
        max_length=max_length if isinstance(max_length, int) else None,
    )


@dataclass(frozen=True, slots=True)
class OutputShape:
    """The outputs of one exposed operation or tool; empty means the body passes through."""

    fields: tuple[OutputField, ...]

    @property
    def passthrough(self) -> bool:
        return not self.fields

    def apply(self, body: Any, lookup: Lookup) -> Any:
        if not self.fields:
            return body
        if any(f.name for f in self.fields) and len(self.fields) > 1:
            return {f.name: f.apply(body, lookup) for f in self.fields}
        for output in self.fields:
            result = output.apply(body, lookup)
            if result is not None:
                return result
        return None

    def json_schema(self) -> dict[str, Any] | None:
        """An output schema when the outputs are typed beyond a pass-through object."""
        if not self.fields or all(f.properties is None and f.items is None and f.constant is None for f in self.fields):
            return None
        if len(self.fields) > 1 and any(f.name for f in self.fields):
            return {"type": "object", "properties": {f.name: _schema(f, nullable=True) for f in self.fields if f.name}}
        return _schema(self.fields[0])


def _schema(output: OutputField, nullable: bool = False) -> dict[str, Any]:
    """Below the root every mapped value may be null: the upstream can leave it out."""
    schema: dict[str, Any] = {}
    if output.type in _JSON_TYPES:
        schema["type"] = [output.type, "null"] if nullable else output.type
    if output.properties is not None:
        schema["properties"] = {p.name: _schema(p, nullable=True) for p in output.properties}
    if output.items is not None:
        schema["items"] = _schema(output.items, nullable=True)
    return schema


_JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def compile_outputs(specs: Any) -> OutputShape:
    return OutputShape(tuple(compile_field(s) for s in specs if isinstance(s, dict)) if isinstance(specs, list) else ())

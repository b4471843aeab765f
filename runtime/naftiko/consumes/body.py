"""Request bodies of consumed operations, compiled once at load.

Forms: a raw string template (JSON-aware: a placeholder inside a JSON string literal is
inserted JSON-escaped, one outside is inserted as a JSON value, so input cannot break out of
its slot); `{type: json, data}` with typed substitution (a string that is exactly one
placeholder keeps the input's JSON type); text/xml/sparql; formUrlEncoded; multipartForm.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .. import json_text
from ..templates import MISSING, Template, Variable, as_text

Lookup = Callable[[str], Any]
RenderedBody = tuple[bytes, str]  # payload, content type


class BodyCompileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class JsonValueBody:
    """`{type: json, data: …}` or the JSON object of `in: body` parameters."""

    data: Any

    @property
    def variables(self) -> list[str]:
        return _variables(self.data)

    def render(self, lookup: Lookup) -> RenderedBody:
        return json_text.dumps(_fill(self.data, lookup)), "application/json"


def _variables(data: Any) -> list[str]:
    if isinstance(data, Template):
        return list(data.variables)
    if isinstance(data, dict):
        return [name for value in data.values() for name in _variables(value)]
    if isinstance(data, (list, tuple)):
        return [name for value in data for name in _variables(value)]
    return []


def _fill(data: Any, lookup: Lookup) -> Any:
    if isinstance(data, Template):
        name = data.sole_variable
        if name is not None:
            value = lookup(name)
            return None if value is MISSING else value
        return data.render(lookup)
    if isinstance(data, dict):
        return {k: _fill(v, lookup) for k, v in data.items()}
    if isinstance(data, list):
        return [_fill(v, lookup) for v in data]
    return data


def _compile_data(data: Any) -> Any:
    if isinstance(data, str):
        template = Template.compile(data)
        return data if template.is_literal else template
    if isinstance(data, dict):
        return {k: _compile_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_compile_data(v) for v in data]
    return data


@dataclass(frozen=True, slots=True)
class RawJsonTemplateBody:
    """A JSON text with placeholders; each placeholder knows whether it sits inside a string."""

    parts: tuple[str | tuple[str, bool], ...]

    @classmethod
    def compile(cls, template: Template) -> RawJsonTemplateBody:
        parts: list[str | tuple[str, bool]] = []
        in_string = False
        for part in template.parts:
            if isinstance(part, Variable):
                parts.append((part.name, in_string))
                continue
            parts.append(part)
            escaped = False
            for char in part:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = not in_string
        return cls(tuple(parts))

    @property
    def variables(self) -> list[str]:
        return [part[0] for part in self.parts if isinstance(part, tuple)]

    def render(self, lookup: Lookup) -> RenderedBody:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name, in_string = part
            value = lookup(name)
            if value is MISSING:
                value = None
            if in_string:
                out.append(json.dumps(as_text(value), ensure_ascii=False)[1:-1])
            else:
                out.append(json.dumps(value, ensure_ascii=False))
        return "".join(out).encode(), "application/json"


@dataclass(frozen=True, slots=True)
class TextBody:
    template: Template
    content_type: str

    @property
    def variables(self) -> list[str]:
        return list(self.template.variables)

    def render(self, lookup: Lookup) -> RenderedBody:
        return self.template.render(lookup).encode(), self.content_type


@dataclass(frozen=True, slots=True)
class FormBody:
    data: Any  # dict of templates, or one template rendering the encoded form

    @property
    def variables(self) -> list[str]:
        return _variables(self.data)

    def render(self, lookup: Lookup) -> RenderedBody:
        if isinstance(self.data, Template):
            return self.data.render(lookup).encode(), "application/x-www-form-urlencoded"
        pairs = [(k, as_text(_fill(v, lookup))) for k, v in self.data.items()]
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class MultipartBody:
    parts: tuple[tuple[str, Template, str | None, str | None], ...]  # name, value, filename, content type

    @property
    def variables(self) -> list[str]:
        return [name for _, value, _, _ in self.parts for name in value.variables]

    def render(self, lookup: Lookup) -> RenderedBody:
        boundary = f"naftiko-{uuid.uuid4().hex}"
        chunks: list[bytes] = []
        for name, value, filename, content_type in self.parts:
            disposition = f'form-data; name="{_quote(name)}"' + (f'; filename="{_quote(filename)}"' if filename else "")
            head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            if content_type:
                head += f"Content-Type: {content_type}\r\n"
            chunks.append(head.encode() + b"\r\n" + value.render(lookup).encode() + b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def multipart_form(fields: dict[str, tuple[str, bool]]) -> RenderedBody:
    """`in: formData` parameters (Swagger 2, in real files) as multipart/form-data: one part per
    parameter, a file part (`type: file`) named after its parameter."""
    boundary = f"naftiko-{uuid.uuid4().hex}"
    chunks = []
    for name, (value, is_file) in fields.items():
        disposition = f'form-data; name="{_quote(name)}"' + (f'; filename="{_quote(name)}"' if is_file else "")
        kind = "Content-Type: application/octet-stream\r\n" if is_file else ""
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + value.encode() + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


Body = JsonValueBody | RawJsonTemplateBody | TextBody | FormBody | MultipartBody

_TEXT_TYPES = {"text": "text/plain; charset=utf-8", "xml": "application/xml", "sparql": "application/sparql-query"}


def compile_body(spec: Any) -> Body | None:
    """The operation's `body:`; None when it has none."""
    if spec is None:
        return None
    if isinstance(spec, str):
        template = Template.compile(spec)
        stripped = spec.lstrip()
        if stripped.startswith(("{", "[")):
            return RawJsonTemplateBody.compile(template)
        return TextBody(template, "text/plain; charset=utf-8")
    if not isinstance(spec, dict):
        raise BodyCompileError("body must be a string or a mapping with type and data")
    kind = spec.get("type", "json")
    data = spec.get("data")
    if kind == "json":
        if isinstance(data, str):
            return RawJsonTemplateBody.compile(Template.compile(data))
        return JsonValueBody(_compile_data(data))
    if kind in _TEXT_TYPES:
        return TextBody(Template.compile(as_text(data)), _TEXT_TYPES[kind])
    if kind == "formUrlEncoded":
        if isinstance(data, str):
            return FormBody(Template.compile(data))
        if isinstance(data, dict):
            return FormBody(
                {str(k): _compile_data(as_text(v) if not isinstance(v, str) else v) for k, v in data.items()}
            )
        raise BodyCompileError("formUrlEncoded body data must be a string or a mapping")
    if kind == "multipartForm":
        if not isinstance(data, list):
            raise BodyCompileError("multipartForm body data must be a list of parts")
        parts = []
        for part in data:
            if not isinstance(part, dict) or "name" not in part:
                raise BodyCompileError("each multipartForm part needs a name and a value")
            parts.append(
                (
                    str(part["name"]),
                    Template.compile(as_text(part.get("value"))),
                    part.get("filename"),
                    part.get("contentType"),
                )
            )
        return MultipartBody(tuple(parts))
    raise BodyCompileError(f"unsupported body type {kind!r} (json, text, xml, sparql, formUrlEncoded, multipartForm)")

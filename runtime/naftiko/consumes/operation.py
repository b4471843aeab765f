"""A consumed HTTP operation compiled at load: parameters, path, body, response decoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..spec.semantics import operation_path
from ..templates import Template
from .body import Body, compile_body
from .client import NamespaceClient
from .formats import check_format, decoder_for
from .url import PathTemplate

LOCATIONS = ("path", "query", "header", "cookie", "body", "environment")


@dataclass(frozen=True, slots=True)
class ConsumedParameter:
    name: str
    location: str
    value: Template | None  # a fixed value or template from the file; None: supplied by the caller
    type: str | None
    description: str | None
    required: bool


@dataclass(frozen=True, slots=True)
class ConsumedOperation:
    namespace: str
    name: str
    method: str
    description: str | None
    path: PathTemplate
    parameters: tuple[ConsumedParameter, ...]  # consume-level parameters first
    body: Body | None
    whole_body: ConsumedParameter | None  # the `{name: body, in: body}` form
    output_format: str
    decode: Callable[[bytes, str | None], Any]
    client: NamespaceClient

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.name}"

    def parameter(self, name: str) -> ConsumedParameter | None:
        return next((p for p in self.parameters if p.name == name), None)


def compile_parameter(spec: dict[str, Any]) -> ConsumedParameter:
    value = spec.get("value")
    location = str(spec.get("in", "query"))
    return ConsumedParameter(
        name=str(spec.get("name", "")),
        location=location,
        value=Template.compile(value if isinstance(value, str) else str(value)) if value is not None else None,
        type=spec.get("type") if isinstance(spec.get("type"), str) else None,
        description=spec.get("description") if isinstance(spec.get("description"), str) else None,
        required=bool(spec.get("required", location == "path")),
    )


def compile_operation(
    namespace: str,
    resource: dict[str, Any],
    spec: dict[str, Any],
    shared_parameters: tuple[ConsumedParameter, ...],
    client: NamespaceClient,
) -> ConsumedOperation:
    own = tuple(
        compile_parameter(p) for p in spec.get("inputParameters") or [] if isinstance(p, dict) and p.get("name")
    )
    whole_body = next((p for p in own if p.location == "body" and p.name == "body" and p.value is None), None)
    output_format = check_format(spec.get("outputRawFormat"))
    return ConsumedOperation(
        namespace=namespace,
        name=str(spec["name"]),
        method=str(spec.get("method", "GET")).upper(),
        description=spec.get("description"),
        path=PathTemplate.compile(operation_path(resource, spec)),
        parameters=shared_parameters + own,
        body=compile_body(spec.get("body")),
        whole_body=whole_body,
        output_format=output_format,
        decode=decoder_for(output_format, spec.get("outputSchema")),
        client=client,
    )

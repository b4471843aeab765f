"""OpenAPI 3.1 description of a REST port, from the same input model the engine checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..engine.inputs import InputField
from .rest import Route, body_type, is_placeholder, route_shape
from .server_auth import ServerAuth

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
PATH_VALUE = {"minLength": 1, "pattern": "^[^\\x00-\\x1f\\x7f]+$", "not": {"enum": [".", ".."]}}
"""A path value the runtime sends on: not empty, not `.` or `..`, no control characters."""


def build_openapi(routes: Sequence[Route], server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    schemes: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    spellings: dict[str, str] = {}  # route shape → the path written first (OpenAPI: one template per shape)
    for route in routes:
        tag = route.exposure.namespace
        tags.setdefault(tag, str(route.exposure.spec.get("description") or f"Operations of {tag}."))
        operation = _operation(route, tag, operation_ids)
        path = spellings.setdefault(route_shape(route.path), route.path)
        if path != route.path:
            _respell(operation, route.path, path)
        path = _once_each(operation, path)
        auth = route.exposure.auth
        if auth is not None:
            scheme_name = f"{tag}-{auth.scheme}"
            schemes[scheme_name] = _security_scheme(auth)
            oauth = auth.scheme == "oauth2"
            operation["security"] = [{scheme_name: list(auth.settings.scopes) if oauth else []}]
            operation["responses"]["401"] = {
                "description": "Missing or invalid credentials.",
                "content": {"application/problem+json": {"schema": _PROBLEM}},
            }
            if oauth:
                operation["responses"]["403"] = {
                    "description": "The access token lacks a required scope.",
                    "content": {"application/problem+json": {"schema": _PROBLEM}},
                }
        paths.setdefault(path, {})[route.method.lower()] = operation
    info = _info(routes)
    document = {
        "openapi": "3.1.0",
        "info": info,
        "servers": [{"url": server_url, "description": "this naftiko runtime"}],
        "tags": [{"name": name, "description": text} for name, text in sorted(tags.items())],
        "paths": paths,
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details.",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                }
            }
        },
    }
    if schemes:
        document["components"]["securitySchemes"] = schemes
    return document


def _respell(operation: dict[str, Any], written: str, path: str) -> None:
    """Name the path parameters of an operation written `/images/{image-id}` as its route's
    template `/images/{id}` does (the router gives the value under both names)."""
    names = {
        mine[1:-1]: theirs[1:-1]
        for mine, theirs in zip(written.split("/"), path.split("/"))
        if is_placeholder(mine) and is_placeholder(theirs)
    }
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter["in"] == "path" and parameter["name"] in names:
            parameter["name"] = names[parameter["name"]]
    declared = {p["name"] for p in parameters if p["in"] == "path"}
    for name in dict.fromkeys(s[1:-1] for s in path.split("/") if is_placeholder(s)):
        if name not in declared:
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", **PATH_VALUE}}
            )


def _once_each(operation: dict[str, Any], path: str) -> str:
    """A placeholder written twice (`/tags/{tagid}/{tagid}`, as the upstream's path is) is
    documented once per segment, OpenAPI-style: the second is `{tagid-2}`, whose value the
    runtime does not read (the first one's is sent in both places)."""
    segments = path.split("/")
    seen: dict[str, int] = {}
    for index, segment in enumerate(segments):
        if not is_placeholder(segment):
            continue
        name = segment[1:-1]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] == 1:
            continue
        alias = f"{name}-{seen[name]}"
        segments[index] = "{" + alias + "}"
        original = next((p for p in operation.get("parameters", []) if p["in"] == "path" and p["name"] == name), None)
        schema = original["schema"] if original else {"type": "string", **PATH_VALUE}
        operation.setdefault("parameters", []).append(
            {
                "name": alias,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": f"Repeats {{{name}}}: the value of {{{name}}} is sent in both places.",
            }
        )
    return "/".join(segments)


def _security_scheme(auth: ServerAuth) -> dict[str, Any]:
    """How callers authenticate to the exposure (the credential itself never appears)."""
    if auth.scheme == "oauth2":
        return auth.openapi_scheme()
    if auth.scheme == "bearer":
        return {"type": "http", "scheme": "bearer"}
    if auth.scheme == "basic":
        return {"type": "http", "scheme": "basic"}
    return {"type": "apiKey", "name": auth.key, "in": auth.placement}


def _info(routes: Sequence[Route]) -> dict[str, Any]:
    capabilities = {id(r.capability): r.capability for r in routes}.values()
    infos = [c.document.resolved.get("info") or {} for c in capabilities]
    labels = [str(i.get("label")) for i in infos if i.get("label")]
    descriptions = [str(i.get("description")) for i in infos if i.get("description")]
    return {
        "title": " + ".join(labels) or "Naftiko capability",
        "version": __version__,
        "description": "\n\n".join(descriptions) or "REST exposure served by the naftiko runtime.",
        "contact": {"name": "Naftiko runtime", "url": "https://naftiko.io"},
    }


def _operation_id(route: Route, taken: set[str]) -> str:
    """`namespace.name`, made unique on the port (`-2`, `-3`… when two operations share a name)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", route.operation_id)
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    taken.add(candidate)
    return candidate


def _operation(route: Route, tag: str, operation_ids: set[str]) -> dict[str, Any]:
    target = route.target
    description = (
        target.description
        or (target.operation.description if target.operation else None)
        or f"{route.method} {route.path}"
    )
    operation: dict[str, Any] = {
        "operationId": _operation_id(route, operation_ids),
        "summary": str(target.spec.get("label") or description).split("\n")[0][:120],
        "description": description,
        "tags": [tag],
    }
    parameters = [_parameter(f) for f in target.inputs if f.location in ("path", "query", "header", "cookie")]
    placeholders = [s[1:-1] for s in route.path.split("/") if is_placeholder(s)]
    for name in dict.fromkeys(placeholders):
        if not any(f.location == "path" and f.wire_name == name for f in target.inputs):
            # a placeholder whose value nothing reads (its name is taken by a body input): still a path parameter
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", **PATH_VALUE}}
            )
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(target.inputs)
    if body is not None:
        operation["requestBody"] = body
    success: dict[str, Any] = {"description": "The upstream's answer, mapped by the capability's outputs."}
    schema = target.outputs.json_schema()
    if schema is not None:
        success["content"] = {"application/json": {"schema": schema}}
    else:
        success["content"] = {"application/json": {"schema": {}}}
    operation["responses"] = {
        "200": success,
        "400": {"description": "Invalid input.", "content": {"application/problem+json": {"schema": _PROBLEM}}},
        "502": {
            "description": "The upstream failed or could not be reached.",
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        },
        "504": {
            "description": "The upstream did not answer in time.",
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        },
    }
    return operation


def _parameter(field: InputField) -> dict[str, Any]:
    schema = field.value_schema()
    if field.location == "path" and schema.get("type", "string") == "string":
        schema = {"type": "string", **PATH_VALUE}  # what a path segment can carry (consumes/url.py refuses the rest)
    parameter: dict[str, Any] = {
        "name": field.wire_name,
        "in": field.location,
        "required": field.required or field.location == "path",
        "schema": schema,
    }
    if field.description:
        parameter["description"] = field.description
    return parameter


def _request_body(fields: Sequence[InputField]) -> dict[str, Any] | None:
    whole = next((f for f in fields if f.whole_body), None)
    if whole is not None:
        return {
            "required": whole.required,
            "description": whole.description or "Request body (JSON).",
            "content": {"application/json": {"schema": {**whole.json_schema(), "type": body_type(fields)}}},
        }
    body_fields = [f for f in fields if f.location == "body"]
    if not body_fields:
        return None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in body_fields:
        if field.body_path is not None:
            _place(properties, field.body_path, field.json_schema())
        else:
            properties[field.name] = field.json_schema()
            if field.required:
                required.append(field.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _place(properties: dict[str, Any], body_path: str, schema: dict[str, Any]) -> None:
    """`$.user.id` becomes properties.user.properties.id."""
    keys = [k for k in body_path.removeprefix("$").strip(".").split(".") if k]
    for key in keys[:-1]:
        node = properties.setdefault(key, {"type": "object", "properties": {}})
        properties = node.setdefault("properties", {})
    if keys:
        properties[keys[-1]] = schema

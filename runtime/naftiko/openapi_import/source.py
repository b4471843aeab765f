"""Reading the OpenAPI/Swagger document: loading, $ref resolution, and its operations as
`_Operation`s with parameters, bodies and responses."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .common import (
    _IGNORED_HEADERS,
    _JSONPATH_KEYWORDS,
    _JSONPATH_NAME,
    _LOCATION_ORDER,
    _MAX_OUTPUT_DEPTH,
    _MAX_OUTPUT_FIELDS,
    _PARAMETER_NAME,
    _SKIPPED_METHODS,
    METHODS,
    PARAMETER_DESCRIPTION_LIMIT,
    OpenApiImportError,
)
from .text import _brief, _cap, _clean_inline, _free, _sentence, kebab

# -- loading ------------------------------------------------------------------------------------


def load_spec(path: Path) -> dict[str, Any]:
    """The parsed document. OSError when unreadable; OpenApiImportError when not OpenAPI."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OpenApiImportError("not UTF-8 text") from None
    data: Any
    if text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise OpenApiImportError(f"invalid JSON: {exc}") from None
    else:
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise OpenApiImportError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise OpenApiImportError("not an OpenAPI document (expected a mapping at the top level)")
    version = str(data.get("openapi") or data.get("swagger") or "")
    if "openapi" in data:
        if not version.startswith("3."):
            raise OpenApiImportError(f"unsupported OpenAPI version {version!r} (supported: 3.0, 3.1 and Swagger 2.0)")
    elif "swagger" in data:
        if version != "2.0":
            raise OpenApiImportError(f"unsupported Swagger version {version!r} (supported: 2.0)")
    else:
        raise OpenApiImportError("not an OpenAPI document: no 'openapi' or 'swagger' version field")
    if not isinstance(data.get("paths"), dict):
        raise OpenApiImportError("the document has no 'paths' mapping")
    if data.get("info") is not None and not isinstance(data.get("info"), dict):
        raise OpenApiImportError("'info' must be a mapping")
    return data


# -- the document model we import from ------------------------------------------------------------


class _Resolver:
    """Local `$ref`s (`#/components/...`, `#/definitions/...`), followed with a cycle guard."""

    def __init__(self, spec: dict[str, Any], warn):
        self.spec = spec
        self.warn = warn
        self._external: set[str] = set()

    def __call__(self, node: Any) -> Any:
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                return {}
            seen.add(ref)
            target = self._lookup(ref)
            if target is None:
                return {}
            if len(node) > 1:  # OpenAPI 3.1: siblings of $ref (description…) override
                extra = {k: v for k, v in node.items() if k != "$ref"}
                node = {**target, **extra} if isinstance(target, dict) else target
            else:
                node = target
        return node

    def _lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            if ref not in self._external:
                self._external.add(ref)
                self.warn(f"external reference {ref!r} is not followed: treated as an untyped value")
            return None
        node: Any = self.spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                if ref not in self._external:
                    self._external.add(ref)
                    self.warn(f"reference {ref!r} does not resolve: treated as an untyped value")
                return None
        return node

    def schema(self, node: Any, depth: int = 0) -> dict[str, Any]:
        """A schema with `$ref` resolved and `allOf` merged (objects only)."""
        node = self(node)
        if not isinstance(node, dict):
            return {}
        if isinstance(node.get("allOf"), list) and depth < 8:
            merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
            properties: dict[str, Any] = dict(merged.get("properties") or {})
            required: list[str] = list(merged.get("required") or [])
            for part in node["allOf"]:
                resolved = self.schema(part, depth + 1)
                for key, value in resolved.items():
                    if key == "properties" and isinstance(value, dict):
                        properties.update(value)
                    elif key == "required" and isinstance(value, list):
                        required.extend(v for v in value if v not in required)
                    else:
                        merged.setdefault(key, value)
            if properties:
                merged["properties"] = properties
                merged.setdefault("type", "object")
            if required:
                merged["required"] = required
            return merged
        return node


@dataclass
class _Param:
    name: str  # the name on the wire (for path parameters: the placeholder we write)
    location: str
    type: str
    description: str
    required: bool
    wire: str | None = None  # the upstream query name when it does not fit [A-Za-z0-9-_*] (`user.fields`)


@dataclass
class _Body:
    kind: str  # json | form
    type: str  # json: object/array/string…
    description: str
    required: bool
    fields: list[_Param] = field(default_factory=list)  # form fields


@dataclass
class _Operation:
    method: str
    path: str  # as written in the document
    consumed_path: str  # placeholders renamed when needed
    name: str
    summary: str
    description: str
    tags: list[str]
    params: list[_Param]
    body: _Body | None
    output: dict[str, Any] | None
    output_format: str | None
    security: list[dict[str, Any]] | None  # None: the document's default
    servers: list[str]
    warnings: list[str] = field(default_factory=list)


# -- operations -------------------------------------------------------------------------------------


def _operations(spec: dict[str, Any], resolve: _Resolver) -> tuple[list[_Operation], list[tuple[str, str]]]:
    """The importable operations, and (first tag, warning) for each operation left out."""
    swagger = "swagger" in spec
    found: list[_Operation] = []
    skipped: list[tuple[str, str]] = []
    names: set[str] = set()
    for path, item in spec["paths"].items():
        item = resolve(item)
        if not isinstance(path, str) or not isinstance(item, dict):
            continue
        shared = [resolve(p) for p in item.get("parameters") or [] if isinstance(resolve(p), dict)]
        for method in list(item):
            if method not in (*METHODS, *_SKIPPED_METHODS) or not isinstance(item[method], dict):
                continue
            op = item[method]
            where = f"{method.upper()} {path}"
            first_tag = str((op.get("tags") or [""])[0])
            if method in _SKIPPED_METHODS:
                skipped.append(
                    (first_tag, f"{where} is skipped: Naftiko operations are GET, PUT, POST, DELETE or PATCH")
                )
                continue
            op_warnings: list[str] = []
            warn = op_warnings.append
            own = [resolve(p) for p in op.get("parameters") or []]
            parameters = _merge_parameters(shared, [p for p in own if isinstance(p, dict)])
            body = _request_body(op, parameters, spec, resolve, swagger, where, warn)
            if body is _UNSUPPORTED:
                skipped.extend((first_tag, text) for text in op_warnings)
                continue
            operation_id = op.get("operationId")
            name = kebab(str(operation_id)) if operation_id else ""
            if not name:
                name = kebab(f"{method} {path}") or method
            if name in names:
                new = _free(name, names)
                warn(f"{where}: operation name {name!r} is already used: renamed {new!r}")
                name = new
            names.add(name)
            reserved = set() if body is None else {f.name for f in body.fields} if body.kind == "form" else {"body"}
            params, consumed_path = _parameters(parameters, path, swagger, resolve, where, warn, reserved)
            output, output_format = _response(op, spec, resolve, swagger)
            servers = [_server_url(s) for s in op.get("servers") or item.get("servers") or [] if isinstance(s, dict)]
            found.append(
                _Operation(
                    method=method.upper(),
                    path=path,
                    consumed_path=consumed_path,
                    name=name,
                    summary=_clean_inline(str(op.get("summary") or "")),
                    description=str(op.get("description") or ""),
                    tags=[str(t) for t in op.get("tags") or [] if isinstance(t, (str, int))],
                    params=params,
                    body=body if isinstance(body, _Body) else None,
                    output=output,
                    output_format=output_format,
                    security=op.get("security") if isinstance(op.get("security"), list) else None,
                    servers=servers,
                    warnings=op_warnings,
                )
            )
            if op.get("deprecated") is True:
                found[-1].summary = found[-1].summary or where
                found[-1].description = "Deprecated. " + found[-1].description
    return found, skipped


def _merge_parameters(shared: list[dict], own: list[dict]) -> list[dict]:
    merged: dict[tuple[str, str], dict] = {}
    for parameter in [*shared, *own]:
        name, location = parameter.get("name"), parameter.get("in")
        if isinstance(name, str) and isinstance(location, str):
            merged[(name, location)] = parameter
    return list(merged.values())


_UNSUPPORTED = object()
_FORM_TYPES = ("application/x-www-form-urlencoded",)


def _is_json(media: str) -> bool:
    media = media.split(";")[0].strip().lower()
    return media in ("application/json", "*/*", "application/*", "text/json") or media.endswith("+json")


def _request_body(op, parameters, spec, resolve: _Resolver, swagger: bool, where: str, warn) -> Any:
    """A _Body, None (no body), or _UNSUPPORTED (the operation is skipped)."""
    if swagger:
        body_param = next((p for p in parameters if p.get("in") == "body"), None)
        form = [p for p in parameters if p.get("in") == "formData"]
        consumes = op.get("consumes") or spec.get("consumes") or ["application/json"]
        if body_param is not None:
            schema = resolve.schema(body_param.get("schema"))
            return _Body(
                "json",
                _schema_type(schema, resolve) or "object",
                _body_description(schema, resolve, body_param.get("description")),
                bool(body_param.get("required")),
            )
        if form:
            if "multipart/form-data" in consumes and "application/x-www-form-urlencoded" not in consumes:
                warn(f"{where} is skipped: multipart/form-data bodies are not imported")
                return _UNSUPPORTED
            if any(p.get("type") == "file" for p in form):
                warn(f"{where} is skipped: file uploads are not imported")
                return _UNSUPPORTED
            schema = {
                "type": "object",
                "properties": {p["name"]: p for p in form},
                "required": [p["name"] for p in form if p.get("required")],
            }
            return _form_body(schema, resolve, False, where, warn)
        return None
    body = resolve(op.get("requestBody"))
    if not isinstance(body, dict):
        return None
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    required = bool(body.get("required"))
    if not content:
        return _Body(
            "json",
            "object",
            _brief(body.get("description"), PARAMETER_DESCRIPTION_LIMIT) or "Request body (JSON).",
            required,
        )
    media = next((m for m in content if _is_json(m)), None)
    if media is not None:
        schema = resolve.schema((content[media] or {}).get("schema"))
        kind = _schema_type(schema, resolve) or "object"
        return _Body("json", kind, _body_description(schema, resolve, body.get("description")), required)
    media = next((m for m in content if m.split(";")[0].strip().lower() in _FORM_TYPES), None)
    if media is not None:
        schema = resolve.schema((content[media] or {}).get("schema"))
        return _form_body(schema, resolve, required, where, warn)
    warn(f"{where} is skipped: its request body is {', '.join(content)} (JSON and form bodies are imported)")
    return _UNSUPPORTED


def _form_body(schema: dict[str, Any], resolve: _Resolver, required: bool, where: str, warn) -> Any:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    if not properties:
        warn(f"{where} is skipped: its form body declares no fields")
        return _UNSUPPORTED
    needed = set(schema.get("required") or [])
    fields: list[_Param] = []
    for name, sub in properties.items():
        if not _PARAMETER_NAME.match(str(name)):
            warn(f"{where}: form field {name!r} is left out: its name does not fit [A-Za-z0-9-_*]")
            continue
        sub = resolve.schema(sub)
        kind = _schema_type(sub, resolve) or "string"
        if kind in ("object",):
            kind = "string"
        fields.append(
            _Param(str(name), "body", kind, _param_description(sub, None, "Form field", str(name)), str(name) in needed)
        )
    return _Body("form", "object", "Form fields.", required, fields)


def _body_description(schema: dict[str, Any], resolve: _Resolver, description: Any) -> str:
    text = _brief(description, 160) or _brief(schema.get("description"), 160)
    kind = _schema_type(schema, resolve)
    summary = _fields_summary(schema, resolve)
    parts = [text or ("Request body (JSON array)." if kind == "array" else "Request body (JSON).")]
    if summary:
        parts.append(summary)
    return _cap(" ".join(parts), 600)


def _fields_summary(schema: dict[str, Any], resolve: _Resolver, depth: int = 0, limit: int = 12) -> str:
    """`Fields: name (string, required), data (object)…` for an agent deciding what to send."""
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(alternatives, list) and alternatives and depth == 0:
        labels = []
        for index, alternative in enumerate(alternatives[:6], 1):
            resolved = resolve.schema(alternative)
            label = str(resolved.get("title") or _ref_name(alternative) or f"variant {index}")
            inner = _fields_summary(resolved, resolve, depth + 1, limit=6)
            labels.append(f"{label} ({inner.removeprefix('Fields: ').rstrip('.')})" if inner else label)
        return f"One of: {'; '.join(labels)}." if labels else ""
    if _schema_type(schema, resolve) == "array":
        items = resolve.schema(schema.get("items"))
        inner = _fields_summary(items, resolve, depth + 1, limit)
        return f"Each item: {inner[0].lower()}{inner[1:]}" if inner else ""
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    if not properties:
        return ""
    required = set(schema.get("required") or [])
    pieces = []
    for name, sub in list(properties.items())[:limit]:
        kind = _schema_type(resolve.schema(sub), resolve)
        flags = ", ".join(x for x in (kind, "required" if name in required else "") if x)
        pieces.append(f"{name} ({flags})" if flags else str(name))
    more = len(properties) - len(pieces)
    return "Fields: " + ", ".join(pieces) + (f" and {more} more." if more > 0 else ".")


def _ref_name(node: Any) -> str:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return node["$ref"].rsplit("/", 1)[-1]
    return ""


def _parameters(
    parameters, path, swagger, resolve: _Resolver, where, warn, reserved: set[str]
) -> tuple[list[_Param], str]:
    """The operation's path, query, header and cookie parameters, and the consumed path.

    A name that fits `[A-Za-z0-9-_*]` is kept. A path parameter whose name does not is
    renamed in the path; a query parameter whose name does not (`user.fields`,
    `filter[name]`) gets a sanitized input name and keeps its own as `wire`, the name sent
    upstream. Sanitized names never take a name that fits and is used by this operation."""
    params: list[_Param] = []
    taken: set[str] = set(reserved)
    renamed_path = path
    declared_path = set()
    ordered = sorted(parameters, key=lambda p: _LOCATION_ORDER.get(str(p.get("in")), 9))
    claimed = {str(p.get("name")) for p in ordered if _PARAMETER_NAME.match(str(p.get("name", "")))}
    claimed.update(n for n in re.findall(r"\{([^{}]+)\}", path) if _PARAMETER_NAME.match(n))
    for parameter in ordered:
        name, location = str(parameter.get("name", "")), str(parameter.get("in", ""))
        if location in ("body", "formData"):
            continue
        if location not in _LOCATION_ORDER:
            warn(f"{where}: parameter {name!r} in {location!r} is left out (unknown location)")
            continue
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            continue
        schema = parameter if swagger else resolve.schema(parameter.get("schema"))
        if not swagger and not schema and isinstance(parameter.get("content"), dict):
            media = next(iter(parameter["content"].values()), {}) or {}
            schema = resolve.schema(media.get("schema"))
        kind = _schema_type(schema, resolve) or "string"
        if location == "path":
            if "{" + name + "}" not in path:
                warn(f"{where}: path parameter {name!r} does not appear in the path and is left out")
                continue
            declared_path.add(name)
            wire = name
            if not _PARAMETER_NAME.match(name) or name in taken:
                wire = _unique(_sanitized(name), taken | claimed)
                warn(
                    f"{where}: path parameter {name!r} is renamed {wire!r} (names must fit [A-Za-z0-9-_*] and be unique)"
                )
                renamed_path = renamed_path.replace("{" + name + "}", "{" + wire + "}")
            if kind in ("object", "array"):
                kind = "string"
            taken.add(wire)
            params.append(
                _Param(
                    wire,
                    "path",
                    kind,
                    _param_description(schema, parameter.get("description"), "Path parameter", name),
                    True,
                )
            )
            continue
        required = bool(parameter.get("required"))
        if not _PARAMETER_NAME.match(name):
            if location == "query" and name:
                alias = _unique(_sanitized(name), taken | claimed)
                taken.add(alias)
                warn(
                    f"{where}: query parameter {name!r} is input {alias!r} (names must fit [A-Za-z0-9-_*]); "
                    f"`with` sends it upstream as {name!r}"
                )
                description = _param_description(
                    schema, parameter.get("description"), "Sent upstream as the query parameter", f"`{name}`"
                )
                if not description.startswith("Sent upstream as"):
                    description += f" Sent upstream as the query parameter `{name}`."
                params.append(_Param(alias, location, kind, description, required, wire=name))
                continue
            warn(
                f"{where}: {location} parameter {name!r} is left out: its name does not fit [A-Za-z0-9-_*]"
                + (" (it is required: calls may fail without it)" if required else "")
            )
            continue
        if name in taken:
            warn(f"{where}: {location} parameter {name!r} is left out: another input already has that name")
            continue
        taken.add(name)
        description = _param_description(
            schema, parameter.get("description"), f"{location.capitalize()} parameter", name
        )
        params.append(_Param(name, location, kind, description, required))
    for name in re.findall(r"\{([^{}]+)\}", path):
        if name not in declared_path:
            wire = (
                name
                if _PARAMETER_NAME.match(name) and name not in taken
                else _unique(_sanitized(name), taken | claimed)
            )
            if wire != name:
                renamed_path = renamed_path.replace("{" + name + "}", "{" + wire + "}")
            taken.add(wire)
            warn(f"{where}: path parameter {name!r} is not declared: imported as a string")
            params.append(_Param(wire, "path", "string", f"Path parameter {name}.", True))
    return params, renamed_path


def _sanitized(name: str) -> str:
    """`user.fields` → `user_fields`, `filter[name]` → `filter_name`, `fields[]` → `fields`."""
    return re.sub(r"[^A-Za-z0-9\-_]+", "_", name).strip("_") or "param"


def _unique(name: str, taken: set[str]) -> str:
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name}_{index}", index + 1
    return candidate


def _param_description(schema: Mapping[str, Any], description: Any, what: str, name: str) -> str:
    text = _brief(description, PARAMETER_DESCRIPTION_LIMIT) or _brief(
        schema.get("description"), PARAMETER_DESCRIPTION_LIMIT
    )
    if not text:
        text = f"{what} {name}."
    extras = []
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
    enum = schema.get("enum") or items.get("enum")
    if isinstance(enum, list) and enum and len(enum) <= 12:
        values = ", ".join(str(v) for v in enum if v is not None)
        if values and values not in text:
            extras.append(f"One of: {values}.")
    default = schema.get("default") if isinstance(schema, Mapping) else None
    if default is not None and not isinstance(default, (dict, list)) and "default" not in text.lower():
        extras.append(f"Default: {json.dumps(default) if isinstance(default, bool) else default}.")
    return _cap(" ".join([_sentence(text), *extras]), PARAMETER_DESCRIPTION_LIMIT + 120)


_SCALARS = ("string", "integer", "number", "boolean")


def _schema_type(schema: Any, resolve: _Resolver, depth: int = 0) -> str | None:
    if not isinstance(schema, Mapping) or depth > 6:
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else ("string" if kinds and all(k in _SCALARS for k in kinds) else None)
    if kind == "file":
        return "string"
    if isinstance(kind, str) and kind in (*_SCALARS, "array", "object"):
        return kind
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(alternatives, list) and alternatives:
        kinds = {_schema_type(resolve.schema(a), resolve, depth + 1) for a in alternatives}
        kinds.discard(None)
        if len(kinds) == 1:
            return kinds.pop()
        if kinds and kinds <= {"object", "array"}:
            return None
        if kinds and kinds <= set(_SCALARS):
            return "string"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "string" if all(isinstance(v, str) for v in schema["enum"]) else None
    return None


def _response(op, spec, resolve: _Resolver, swagger: bool) -> tuple[dict[str, Any] | None, str | None]:
    responses = op.get("responses") if isinstance(op.get("responses"), dict) else {}
    codes = sorted((str(c) for c in responses if str(c).startswith("2")), key=lambda c: (c != "200", c))
    for code in codes:
        response = resolve(
            responses.get(code) if code in responses else responses.get(int(code)) if code.isdigit() else None
        )
        if not isinstance(response, dict):
            continue
        if swagger:
            produces = op.get("produces") or spec.get("produces") or ["application/json"]
            if "schema" not in response or not any(_is_json(m) for m in produces):
                return None, _format_of(produces)
            return _output_for(resolve.schema(response["schema"]), resolve), None
        content = response.get("content") if isinstance(response.get("content"), dict) else {}
        if not content:
            return None, None
        media = next((m for m in content if _is_json(m)), None)
        if media is None:
            return None, _format_of(list(content))
        return _output_for(resolve.schema((content[media] or {}).get("schema")), resolve), None
    return None, None


def _format_of(media_types: list[str]) -> str | None:
    for media in media_types:
        base = str(media).split(";")[0].strip().lower()
        if base in ("application/xml", "text/xml") or base.endswith("+xml"):
            return "xml"
        if base == "text/csv":
            return "csv"
        if base == "text/tab-separated-values":
            return "tsv"
        if base in ("application/yaml", "application/x-yaml", "text/yaml"):
            return "yaml"
        if base == "text/markdown":
            return "markdown"
    return None


def _output_for(schema: dict[str, Any], resolve: _Resolver) -> dict[str, Any] | None:
    """Typed outputs when the response is a simple object; None lets the body pass through."""
    if _schema_type(schema, resolve) != "object":
        return None
    budget = [_MAX_OUTPUT_FIELDS]
    shape = _shape(schema, resolve, 0, budget)
    if shape is None or shape["type"] != "object":
        return None
    return shape


def _shape(schema: dict[str, Any], resolve: _Resolver, depth: int, budget: list[int]) -> dict[str, Any] | None:
    if depth > _MAX_OUTPUT_DEPTH or any(k in schema for k in ("oneOf", "anyOf", "not")):
        return None
    kind = _schema_type(schema, resolve)
    if kind in _SCALARS:
        budget[0] -= 1
        return {"type": "number" if kind == "integer" else kind} if budget[0] >= 0 else None
    if kind == "object":
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if not isinstance(properties, dict) or not properties or extra not in (None, False):
            return None
        shaped: dict[str, Any] = {}
        for name, sub in properties.items():
            child = _shape(resolve.schema(sub), resolve, depth + 1, budget)
            if child is None or "'" in str(name) or "\\" in str(name):
                return None
            shaped[str(name)] = {
                "type": child["type"],
                "mapping": _jsonpath(str(name)),
                **{k: v for k, v in child.items() if k != "type"},
            }
        return {"type": "object", "properties": shaped}
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return None
        child = _shape(resolve.schema(items), resolve, depth + 1, budget)
        if child is None:
            return None
        if child["type"] != "object":
            child = {**child, "mapping": "$"}  # each element itself
        return {"type": "array", "items": child}
    return None


def _jsonpath(name: str) -> str:
    if _JSONPATH_NAME.match(name) and name.lower() not in _JSONPATH_KEYWORDS:
        return f"$.{name}"
    return f"$['{name}']"


def _server_url(server: Mapping[str, Any]) -> str:
    url = str(server.get("url", ""))
    variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}

    def value(match: re.Match[str]) -> str:
        spec = variables.get(match.group(1))
        if isinstance(spec, dict):
            if spec.get("default") is not None:
                return str(spec["default"])
            if isinstance(spec.get("enum"), list) and spec["enum"]:
                return str(spec["enum"][0])
        return match.group(0)

    return re.sub(r"\{([^{}]+)\}", value, url)


def _valid_base_uri(url: str) -> bool:
    return bool(re.fullmatch(r"https?://[^/{}?#\s]+(/[^{?#\s]*)?", url)) and not url.endswith("/")

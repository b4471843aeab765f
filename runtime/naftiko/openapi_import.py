"""`naftiko import openapi`: turn an OpenAPI 3.x or Swagger 2.0 document into capability files.

Each generated file holds one consumed HTTP namespace, a REST exposure mirroring the upstream
paths (port 8080) and an MCP exposure with one tool per operation (port 9090), and is meant to
pass `naftiko validate --strict`:

* consumed `inputParameters` carry only `name`/`in`; types, descriptions and `required` live
  on the exposed side (REST `inputParameters`, MCP tool `inputParameters`);
* a JSON request body is the consumed `{name: body, in: body}` parameter, fed from the REST
  input `{name: body, in: body}` (the whole request body) or the tool argument `body`;
  a form body becomes a `formUrlEncoded` body with one input per field;
* outputs are typed only when the 2xx JSON response is a simple object (every property a
  scalar, a simple object or an array of those); otherwise the body passes through untouched;
* names are kebab-case; a path parameter whose name does not fit `[A-Za-z0-9-_*]` is renamed,
  any other such parameter is left out with a warning (its name is what goes on the wire);
* credentials come from `binds` (`{{env.<PREFIX>_USER}}`, `_PASS`, `_TOKEN`, `_API_KEY`, …).

Warnings are written as comments at the top of each file and returned to the CLI.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Generated", "OpenApiImportError", "generate", "import_openapi", "load_spec", "render", "run_import"]

NAFTIKO_VERSION = "1.0.0-alpha2"
REST_PORT = 8080
MCP_PORT = 9090
PLACEHOLDER_BASE_URI = "https://api.example.invalid"
"""baseUri written when the document names no server: strict-valid, and `.invalid` never
resolves (RFC 6761), so a forgotten override fails loudly instead of calling a stranger."""

METHODS = ("get", "put", "post", "delete", "patch")
_SKIPPED_METHODS = ("head", "options", "trace")
_PARAMETER_NAME = re.compile(r"^[a-zA-Z0-9\-_*]+$")
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # OpenAPI: described elsewhere
_LOCATION_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 3}
_JSONPATH_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSONPATH_KEYWORDS = {"true", "false", "null", "and", "or", "not", "in", "len", "sorted", "this"}
_HINTS = {
    "GET": {"readOnly": True, "destructive": False, "idempotent": True, "openWorld": True},
    "PUT": {"readOnly": False, "destructive": False, "idempotent": True, "openWorld": True},
    "DELETE": {"readOnly": False, "destructive": True, "idempotent": True, "openWorld": True},
    "POST": {"readOnly": False, "destructive": False, "idempotent": False, "openWorld": True},
    "PATCH": {"readOnly": False, "destructive": False, "idempotent": False, "openWorld": True},
}
TOOL_DESCRIPTION_LIMIT = 300
PARAMETER_DESCRIPTION_LIMIT = 200
_MAX_OUTPUT_DEPTH = 2
_MAX_OUTPUT_FIELDS = 30


class OpenApiImportError(Exception):
    """The document cannot be read or is not an OpenAPI/Swagger document we can import."""


@dataclass
class Generated:
    """One capability file: its name, its document and what the importer had to decide."""

    file_name: str
    namespace: str
    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    @property
    def operations(self) -> int:
        consumes = self.document["capability"]["consumes"][0]
        return sum(len(r["operations"]) for r in consumes["resources"])

    def text(self) -> str:
        return render(self)


# -- public API ---------------------------------------------------------------------------------


def import_openapi(
    spec_path: Path,
    *,
    namespace: str | None = None,
    split_by_tag: bool = False,
    base_uri: str | None = None,
    env_prefix: str | None = None,
) -> dict[str, str]:
    """{file name: YAML text} for the document at `spec_path`. Raises OpenApiImportError."""
    spec = load_spec(Path(spec_path))
    generated = generate(
        spec, source=Path(spec_path).name, namespace=namespace, split_by_tag=split_by_tag, base_uri=base_uri, env_prefix=env_prefix
    )
    return {g.file_name: g.text() for g in generated}


def run_import(
    spec: str,
    out_dir: str | None,
    split_by_tag: bool,
    namespace: str | None,
    base_uri: str | None = None,
    env_prefix: str | None = None,
) -> int:
    """The CLI command. 0: written; 1: the document cannot be imported; 2: usage or I/O error."""
    prog = "naftiko import openapi"
    if split_by_tag and out_dir is None:
        print(f"{prog}: --split-by-tag writes several files: give a folder with -o DIR", file=sys.stderr)
        return 2
    if namespace is not None and not _is_kebab(namespace):
        print(f"{prog}: --namespace {namespace!r} must be kebab-case (letters, digits and '-')", file=sys.stderr)
        return 2
    if base_uri is not None and not _valid_base_uri(base_uri.rstrip("/")):
        print(f"{prog}: --base-uri {base_uri!r} must be an http(s) URL with a host and no query or '{{'", file=sys.stderr)
        return 2
    try:
        document = load_spec(Path(spec))
    except OSError as exc:
        print(f"{prog}: cannot read {spec}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except OpenApiImportError as exc:
        print(f"{prog}: {spec}: {exc}", file=sys.stderr)
        return 1
    try:
        generated = generate(
            document, source=Path(spec).name, namespace=namespace, split_by_tag=split_by_tag, base_uri=base_uri, env_prefix=env_prefix
        )
    except OpenApiImportError as exc:
        print(f"{prog}: {spec}: {exc}", file=sys.stderr)
        return 1
    except (RecursionError, ValueError, TypeError, KeyError, AttributeError) as exc:  # a malformed corner
        print(f"{prog}: {spec}: cannot import this document ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    for item in generated:
        for warning in item.warnings:
            print(f"{prog}: warning: {item.file_name}: {warning}", file=sys.stderr)
    if out_dir is None:
        [item] = generated
        text = item.text()
        problems = _self_check({item.file_name: text})
        for problem in problems:
            print(f"{prog}: warning: {problem}", file=sys.stderr)
        sys.stdout.write(text)
        return 0
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for item in generated:
            target = folder / item.file_name
            if target.is_symlink():
                print(f"{prog}: refusing to overwrite {target}: it is a symbolic link", file=sys.stderr)
                return 2
        for item in generated:
            (folder / item.file_name).write_text(item.text(), encoding="utf-8")
    except OSError as exc:
        print(f"{prog}: cannot write to {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for problem in _self_check({str(folder / g.file_name): None for g in generated}):
        print(f"{prog}: warning: {problem}", file=sys.stderr)
    for item in generated:
        print(f"wrote {folder / item.file_name} ({item.operations} operations)")
    return 0


def _self_check(files: Mapping[str, str | None]) -> list[str]:
    """Strict-validate what was generated; each problem is one line (they should be rare)."""
    from .spec.document import load_document

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in files.items():
            path = Path(name)
            if text is not None:
                path = Path(scratch) / Path(name).name
                path.write_text(text, encoding="utf-8")
            document = load_document(path, strict=True)
            for diagnostic in document.errors:
                problems.append(f"{Path(name).name} does not pass --strict: {diagnostic.message}")
    return problems


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


# -- generation -----------------------------------------------------------------------------------


def generate(
    spec: dict[str, Any],
    *,
    source: str = "openapi",
    namespace: str | None = None,
    split_by_tag: bool = False,
    base_uri: str | None = None,
    env_prefix: str | None = None,
) -> list[Generated]:
    """The capability files for a loaded document (one, or one per first tag)."""
    warnings: list[str] = []
    warn = warnings.append
    resolve = _Resolver(spec, warn)
    info = spec.get("info") or {}
    title = str(info.get("title") or "").strip() or "API"
    root_namespace = namespace or kebab(title) or "api"
    if not _is_kebab(root_namespace):
        raise OpenApiImportError(f"namespace {root_namespace!r} must be kebab-case")
    server = _server_uri(spec, base_uri, warn)
    declared_server = server if base_uri is None else _server_uri(spec, None, lambda _: None)
    operations, skipped = _operations(spec, resolve)
    if not operations:
        raise OpenApiImportError("the document has no operation to import (GET, PUT, POST, DELETE or PATCH)")
    groups: dict[str, list[_Operation]] = {}
    if split_by_tag:
        for op in operations:
            tag = op.tags[0] if op.tags else ""
            groups.setdefault(tag, []).append(op)
    else:
        groups[""] = operations
    results: list[Generated] = []
    used_namespaces: set[str] = set()
    first = next(iter(groups))
    for tag, ops in groups.items():
        ns = _free(_group_namespace(root_namespace, tag) if split_by_tag else root_namespace, used_namespaces)
        used_namespaces.add(ns)
        group_warnings = list(warnings)
        group_warnings.extend(w for op in ops for w in op.warnings)
        group_warnings.extend(
            text for skipped_tag, text in skipped if not split_by_tag or skipped_tag == tag or (skipped_tag not in groups and tag == first)
        )
        for op in ops:
            for url in op.servers[:1]:
                if url.rstrip("/") != declared_server and declared_server != PLACEHOLDER_BASE_URI:
                    group_warnings.append(f"{op.method} {op.path} names its own server {url!r}; it is called on {server}")
        document = _document(spec, info, title, tag, ns, ops, server, env_prefix or _env_name(root_namespace), resolve, group_warnings)
        version = f"Swagger {spec.get('swagger')}" if "swagger" in spec else f"OpenAPI {spec.get('openapi')}"
        header = [
            f"Generated by `naftiko import openapi` from {source}",
            f"({' '.join(str(x) for x in (title, info.get('version')) if x)}, {version}).",
            "Review names, descriptions and credentials before serving it.",
        ]
        results.append(Generated(f"{ns}.yaml", ns, document, _dedupe(group_warnings), header))
    return results


def _group_namespace(root: str, tag: str) -> str:
    if not tag:
        return root
    part = kebab(tag) or "default"
    if part == root or part.startswith(root + "-"):
        return part
    return f"{root}-{part}"


def _free(name: str, used: set[str] | dict[str, Any]) -> str:
    """`name`, or `name-2`, `name-3`… when it is taken."""
    candidate, index = name, 2
    while candidate in used:
        candidate, index = f"{name}-{index}", index + 1
    return candidate


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _server_uri(spec: dict[str, Any], override: str | None, warn) -> str:
    if override:
        return override.rstrip("/")
    if "swagger" in spec:
        host = spec.get("host")
        if not isinstance(host, str) or not host:
            warn(f"the document names no host: baseUri is the placeholder {PLACEHOLDER_BASE_URI}; "
                 "pass --base-uri, or --upstream NAMESPACE=URL at run time")
            return PLACEHOLDER_BASE_URI
        schemes = [s for s in spec.get("schemes") or [] if s in ("https", "http")]
        scheme = "https" if "https" in schemes or not schemes else schemes[0]
        base_path = str(spec.get("basePath") or "")
        url = f"{scheme}://{host}{base_path}".rstrip("/")
    else:
        servers = [s for s in spec.get("servers") or [] if isinstance(s, dict) and isinstance(s.get("url"), str)]
        if not servers:
            warn(f"the document names no server: baseUri is the placeholder {PLACEHOLDER_BASE_URI}; "
                 "pass --base-uri, or --upstream NAMESPACE=URL at run time")
            return PLACEHOLDER_BASE_URI
        url = _server_url(servers[0])
        if len(servers) > 1:
            others = ", ".join(_server_url(s) for s in servers[1:])
            warn(f"baseUri is the first server; others ({others}) can be chosen with --upstream NAMESPACE=URL")
    if url.startswith("//"):
        url = "https:" + url
    elif url.startswith("/") or not re.match(r"^https?://", url):
        warn(f"the server URL {url!r} is relative: baseUri is {PLACEHOLDER_BASE_URI}{url if url.startswith('/') else ''}; "
             "pass --base-uri or --upstream NAMESPACE=URL")
        url = PLACEHOLDER_BASE_URI + (url if url.startswith("/") else "")
    url = url.split("?")[0].split("#")[0].rstrip("/")
    if not _valid_base_uri(url):
        warn(f"the server URL {url!r} is not usable as a baseUri: the placeholder {PLACEHOLDER_BASE_URI} is used instead")
        return PLACEHOLDER_BASE_URI
    return url


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
                skipped.append((first_tag, f"{where} is skipped: Naftiko operations are GET, PUT, POST, DELETE or PATCH"))
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
            params, consumed_path = _parameters(parameters, path, swagger, resolve, where, warn, has_body=body is not None)
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
            return _Body("json", _schema_type(schema, resolve) or "object", _body_description(schema, resolve, body_param.get("description")), bool(body_param.get("required")))
        if form:
            if "multipart/form-data" in consumes and "application/x-www-form-urlencoded" not in consumes:
                warn(f"{where} is skipped: multipart/form-data bodies are not imported")
                return _UNSUPPORTED
            if any(p.get("type") == "file" for p in form):
                warn(f"{where} is skipped: file uploads are not imported")
                return _UNSUPPORTED
            schema = {"type": "object", "properties": {p["name"]: p for p in form}, "required": [p["name"] for p in form if p.get("required")]}
            return _form_body(schema, resolve, False, where, warn)
        return None
    body = resolve(op.get("requestBody"))
    if not isinstance(body, dict):
        return None
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    required = bool(body.get("required"))
    if not content:
        return _Body("json", "object", _brief(body.get("description"), PARAMETER_DESCRIPTION_LIMIT) or "Request body (JSON).", required)
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
        fields.append(_Param(str(name), "body", kind, _param_description(sub, None, "Form field", str(name)), str(name) in needed))
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


def _parameters(parameters, path, swagger, resolve: _Resolver, where, warn, has_body: bool) -> tuple[list[_Param], str]:
    params: list[_Param] = []
    taken: set[str] = {"body"} if has_body else set()
    renamed_path = path
    declared_path = set()
    ordered = sorted(parameters, key=lambda p: _LOCATION_ORDER.get(str(p.get("in")), 9))
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
                wire = _unique(re.sub(r"[^a-zA-Z0-9\-_]", "_", name) or "param", taken)
                warn(f"{where}: path parameter {name!r} is renamed {wire!r} (names must fit [A-Za-z0-9-_*] and be unique)")
                renamed_path = renamed_path.replace("{" + name + "}", "{" + wire + "}")
            if kind in ("object", "array"):
                kind = "string"
            taken.add(wire)
            params.append(_Param(wire, "path", kind, _param_description(schema, parameter.get("description"), "Path parameter", name), True))
            continue
        if not _PARAMETER_NAME.match(name):
            warn(f"{where}: {location} parameter {name!r} is left out: its name does not fit [A-Za-z0-9-_*]"
                 + (" (it is required: calls may fail without it)" if parameter.get("required") else ""))
            continue
        if name in taken:
            warn(f"{where}: {location} parameter {name!r} is left out: another input already has that name")
            continue
        taken.add(name)
        params.append(_Param(name, location, kind, _param_description(schema, parameter.get("description"), f"{location.capitalize()} parameter", name), bool(parameter.get("required"))))
    for name in re.findall(r"\{([^{}]+)\}", path):
        if name not in declared_path:
            wire = name if _PARAMETER_NAME.match(name) and name not in taken else _unique(re.sub(r"[^a-zA-Z0-9\-_]", "_", name) or "param", taken)
            if wire != name:
                renamed_path = renamed_path.replace("{" + name + "}", "{" + wire + "}")
            taken.add(wire)
            warn(f"{where}: path parameter {name!r} is not declared: imported as a string")
            params.append(_Param(wire, "path", "string", f"Path parameter {name}.", True))
    return params, renamed_path


def _unique(name: str, taken: set[str]) -> str:
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name}_{index}", index + 1
    return candidate


def _param_description(schema: Mapping[str, Any], description: Any, what: str, name: str) -> str:
    text = _brief(description, PARAMETER_DESCRIPTION_LIMIT) or _brief(schema.get("description"), PARAMETER_DESCRIPTION_LIMIT)
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
        response = resolve(responses.get(code) if code in responses else responses.get(int(code)) if code.isdigit() else None)
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
            shaped[str(name)] = {"type": child["type"], "mapping": _jsonpath(str(name)), **{k: v for k, v in child.items() if k != "type"}}
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


# -- the capability document ----------------------------------------------------------------------


def _document(spec, info, title, tag, ns, ops: list[_Operation], server, env_prefix, resolve, warnings) -> dict[str, Any]:
    warn = warnings.append
    authentication, binds, cookie_parameters = _authentication(spec, ops, env_prefix, resolve, warn)
    label = f"{title} — {tag}" if tag else title
    count = len(ops)
    about = _brief(info.get("description") or info.get("summary"), 400)
    description = f"{label}: {count} operation{'s' if count != 1 else ''}, imported from its OpenAPI description."
    if about:
        description += " " + about
    document: dict[str, Any] = {
        "naftiko": NAFTIKO_VERSION,
        "info": {"label": label, "description": description, "tags": [title, *([tag] if tag else [])]},
    }
    if binds:
        document["binds"] = [{"namespace": "env", "keys": {name: name for name in binds}}]
    resources, rest_resources, tools = _surfaces(ns, ops, resolve)
    consumes: dict[str, Any] = {
        "type": "http",
        "namespace": ns,
        "description": _cap(f"{label} ({server}).{(' ' + about) if about else ''}", 400),
        "baseUri": server,
    }
    if authentication:
        consumes["authentication"] = authentication
    if cookie_parameters:
        consumes["inputParameters"] = cookie_parameters
    consumes["resources"] = resources
    mcp_description = f"{label}: {count} tool{'s' if count != 1 else ''}." + (f" {about}" if about else "")
    document["capability"] = {
        "consumes": [consumes],
        "exposes": [
            {"type": "rest", "namespace": f"{ns}-rest", "port": REST_PORT, "resources": rest_resources},
            {"type": "mcp", "namespace": f"{ns}-mcp", "port": MCP_PORT, "transport": "http", "description": _cap(mcp_description, 500), "tools": tools},
        ],
    }
    return document


def _surfaces(ns: str, ops: list[_Operation], resolve) -> tuple[list, list, list]:
    consumed: dict[str, dict[str, Any]] = {}
    exposed: dict[str, dict[str, Any]] = {}
    resource_names: dict[str, str] = {}
    used: set[str] = set()
    tools: list[dict[str, Any]] = []
    for op in ops:
        if op.consumed_path not in resource_names:
            name = _free(kebab(op.consumed_path) or "root", used)
            used.add(name)
            resource_names[op.consumed_path] = name
        resource = resource_names[op.consumed_path]
        call = f"{ns}.{op.name}"
        description = _operation_description(op)
        consumed_op: dict[str, Any] = {"name": op.name, "method": op.method}
        if op.summary or description:
            consumed_op["description"] = op.summary or description
        consumed_inputs = [{"name": p.name, "in": p.location} for p in op.params]
        if op.body is not None and op.body.kind == "json":
            consumed_inputs.append({"name": "body", "in": "body"})
        if consumed_inputs:
            consumed_op["inputParameters"] = consumed_inputs
        if op.body is not None and op.body.kind == "form":
            consumed_op["body"] = {"type": "formUrlEncoded", "data": {f.name: "{{" + f.name + "}}" for f in op.body.fields}}
        if op.output_format:
            consumed_op["outputRawFormat"] = op.output_format
        consumed.setdefault(op.consumed_path, {"name": resource, "path": op.consumed_path, "operations": []})["operations"].append(consumed_op)

        rest_op: dict[str, Any] = {"method": op.method, "name": op.name}
        if op.summary:
            rest_op["label"] = op.summary
        rest_op["description"] = description
        rest_op["call"] = call
        rest_inputs = [{"name": p.name, "in": p.location, "type": p.type, "description": p.description} for p in op.params]
        tool_inputs = [{"name": p.name, "type": p.type, "description": p.description, "required": p.required} for p in op.params]
        if op.body is not None and op.body.kind == "json":
            rest_op["with"] = {"body": "rest.body"}
            rest_inputs.append({"name": "body", "in": "body", "type": op.body.type, "description": op.body.description})
            tool_inputs.append({"name": "body", "type": op.body.type, "description": op.body.description, "required": op.body.required})
        elif op.body is not None:
            for f in op.body.fields:
                rest_inputs.append({"name": f.name, "in": "body", "type": f.type, "description": f.description})
                tool_inputs.append({"name": f.name, "type": f.type, "description": f.description, "required": f.required})
        if rest_inputs:
            rest_op["inputParameters"] = rest_inputs
        if op.output is not None:
            rest_op["outputParameters"] = [op.output]
        exposed.setdefault(op.consumed_path, {"path": op.consumed_path, "name": resource, "operations": []})["operations"].append(rest_op)

        tool: dict[str, Any] = {"name": op.name}
        if op.summary:
            tool["label"] = op.summary
        tool["description"] = description
        tool["hints"] = dict(_HINTS[op.method])
        tool["call"] = call
        if op.body is not None and op.body.kind == "json":
            tool["with"] = {"body": "tools.body"}
        if tool_inputs:
            tool["inputParameters"] = tool_inputs
        if op.output is not None:
            tool["outputParameters"] = [op.output]
        tools.append(tool)
    return list(consumed.values()), list(exposed.values()), tools


def _operation_description(op: _Operation) -> str:
    text = _brief(op.description, TOOL_DESCRIPTION_LIMIT)
    summary = _sentence(op.summary) if op.summary else ""
    if not text:
        return summary or f"{op.method} {op.path}."
    if summary and len(text) < 60 and not text.lower().startswith(op.summary.lower().rstrip(".")):
        return _cap(f"{summary} {text}", TOOL_DESCRIPTION_LIMIT)
    return text


# -- authentication -----------------------------------------------------------------------------


def _schemes(spec: dict[str, Any], resolve: _Resolver) -> dict[str, dict[str, Any]]:
    if "swagger" in spec:
        raw = spec.get("securityDefinitions") or {}
    else:
        raw = (spec.get("components") or {}).get("securitySchemes") or {}
    return {str(k): resolve(v) for k, v in raw.items() if isinstance(resolve(v), dict)} if isinstance(raw, dict) else {}


def _authentication(spec, ops: list[_Operation], prefix: str, resolve, warn) -> tuple[dict | None, list[str], list[dict]]:
    schemes = _schemes(spec, resolve)
    if not schemes:
        return None, [], []
    default = spec.get("security") if isinstance(spec.get("security"), list) else None
    chosen: Counter[str] = Counter()
    for op in ops:
        requirements = op.security if op.security is not None else default
        for requirement in requirements or []:
            if isinstance(requirement, dict) and requirement:
                names = [n for n in requirement if n in schemes]
                if names:
                    chosen[names[0]] += 1
                break
    if not chosen:
        if default is None and all(op.security is None for op in ops):
            name = next(iter(schemes))
            warn(f"no operation requires a security scheme: {name!r} is applied to every request")
        else:
            return None, [], []
    else:
        name = chosen.most_common(1)[0][0]
        if len(chosen) > 1:
            others = ", ".join(n for n in chosen if n != name)
            warn(f"operations use several security schemes ({others} besides {name!r}): only {name!r} is applied")
    scheme = schemes[name]
    kind = str(scheme.get("type", "")).lower()

    def var(suffix: str) -> str:
        return f"{prefix}_{suffix}"

    def ref(suffix: str) -> str:
        return "{{env." + var(suffix) + "}}"

    if kind == "basic" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
        return {"type": "basic", "username": ref("USER"), "password": ref("PASS")}, [var("USER"), var("PASS")], []
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return {"type": "bearer", "token": ref("TOKEN")}, [var("TOKEN")], []
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "digest":
        return {"type": "digest", "username": ref("USER"), "password": ref("PASS")}, [var("USER"), var("PASS")], []
    if kind == "apikey":
        key, where = str(scheme.get("name") or "X-API-Key"), str(scheme.get("in") or "header")
        if where == "cookie":
            if not _PARAMETER_NAME.match(key):
                warn(f"API key cookie {key!r} has a name outside [A-Za-z0-9-_*]: it is not sent")
                return None, [], []
            # apikey placement `cookie` is not in the official schema: a consume-level cookie is.
            return None, [var("API_KEY")], [{"name": key, "in": "cookie", "value": ref("API_KEY")}]
        return {"type": "apikey", "key": key, "value": ref("API_KEY"), "placement": "query" if where == "query" else "header"}, [var("API_KEY")], []
    if kind == "oauth2":
        flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
        client = flows.get("clientCredentials") if isinstance(flows.get("clientCredentials"), dict) else None
        if client is None and scheme.get("flow") == "application":  # Swagger 2.0
            client = scheme
        if client is not None and client.get("tokenUrl"):
            auth: dict[str, Any] = {"type": "oauth2", "tokenEndpoint": str(client["tokenUrl"]), "clientId": ref("CLIENT_ID"), "clientSecret": ref("CLIENT_SECRET")}
            scopes = list((client.get("scopes") or {}).keys()) if isinstance(client.get("scopes"), dict) else []
            if scopes:
                auth["scopes"] = scopes
            warn("OAuth2 client credentials (clientId, clientSecret, tokenEndpoint) are outside the official alpha2 schema: "
                 "the file runs, but `naftiko validate --strict` reports them")
            return auth, [var("CLIENT_ID"), var("CLIENT_SECRET")], []
        warn(f"security scheme {name!r} ({kind} without client credentials) needs an interactive login: "
             f"a bearer token is read from {var('TOKEN')} instead")
        return {"type": "bearer", "token": ref("TOKEN")}, [var("TOKEN")], []
    if kind == "openidconnect":
        warn(f"security scheme {name!r} (OpenID Connect) is imported as a bearer token read from {var('TOKEN')}")
        return {"type": "bearer", "token": ref("TOKEN")}, [var("TOKEN")], []
    warn(f"security scheme {name!r} ({kind}) is not supported: requests are sent without credentials")
    return None, [], []


# -- text helpers -------------------------------------------------------------------------------------


def kebab(text: str) -> str:
    """`listPets` → `list-pets`, `add_device` → `add-device`, `Customer.io Track API` → `customer-io-track-api`."""
    text = re.sub(r"([A-Z])([A-Z]+)s(?![a-z])", lambda m: m.group(1) + m.group(2).lower() + "s", str(text))  # IDs, URLs
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return re.sub(r"-{2,}", "-", text)


def _env_name(namespace: str) -> str:
    name = re.sub(r"[^A-Z0-9]+", "_", namespace.upper()).strip("_") or "API"
    return name if name[0].isalpha() else f"API_{name}"


def _is_kebab(name: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z0-9-]+", name))


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"<[^>]+>")
_TEMPLATE_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)  # documentation directives (admonitions, tabs)


def _clean_inline(text: str) -> str:
    text = _TEMPLATE_TAG.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = re.sub(r"\*\*|__", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _brief(text: Any, limit: int) -> str:
    """The first meaningful paragraph of a Markdown description, at most `limit` characters."""
    if not isinstance(text, str) or not text.strip():
        return ""
    for paragraph in re.split(r"\n\s*\n", text):
        stripped = paragraph.strip()
        if not stripped or stripped.startswith(("#", "|", "```", ":::", "{%", "<img", "![", ">")):
            continue
        lines = [line for line in stripped.splitlines() if not re.match(r"\s*([-*+]|\d+\.)\s", line)] or stripped.splitlines()
        cleaned = _clean_inline(" ".join(lines))
        if cleaned.endswith(":"):  # leads into a list or a table: end on the sentence before
            sentences = re.split(r"(?<=[.!?])\s+", cleaned)
            cleaned = " ".join(sentences[:-1]) if len(sentences) > 1 else cleaned[:-1].rstrip() + "."
        if len(cleaned) >= 3:
            return _cap(cleaned, limit)
    return ""


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if end >= limit // 3:
        return cut[: end + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


# -- YAML ---------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def render(generated: Generated) -> str:
    """YAML text, headed by comments: where it came from, and each warning."""
    lines = [f"# {line}" for line in generated.header]
    if generated.warnings:
        lines.append("# Import warnings:")
        for warning in generated.warnings:
            lines.append(f"#   - {warning}".replace("\n", " "))
    body = yaml.dump(generated.document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
    return "\n".join(lines) + ("\n" if lines else "") + body

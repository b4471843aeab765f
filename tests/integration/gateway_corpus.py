"""Real corpus files for the gateway tests: the first validate-accepted files of
../shared/corpus/alpha2 (nearly all want REST on 8080 and MCP on 9090, and many declare the same
routes), and values for calling their operations built from their own OpenAPI documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from naftiko.validation import check_files, discover


def corpus_files(corpus: Path, count: int) -> list[Path]:
    """The first `count` validate-accepted files, no exposure namespace taken twice."""
    chosen: list[Path] = []
    taken: set[str] = set()
    files = discover([str(corpus)])
    for start in range(0, len(files), 64):
        batch = files[start : start + 64]
        for path, report in zip(batch, check_files(batch, together=False)):
            names = set(exposure_namespaces(path))
            if not report.valid or not names or names & taken:
                continue
            taken |= names
            chosen.append(path)
            if len(chosen) == count:
                return chosen
    return chosen


def exposure_namespaces(path: Path) -> dict[str, str]:
    """{namespace: kind} of a file's exposures."""
    data = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
    exposes = (data.get("capability") or {}).get("exposes") or [] if isinstance(data, dict) else []
    return {str(e["namespace"]): str(e["type"]) for e in exposes if isinstance(e, dict) and "namespace" in e}


def copy_flat(files: list[Path], folder: Path) -> list[Path]:
    copies = []
    for path in files:
        copies.append(folder / f"{path.parent.name}__{path.name}")
        shutil.copyfile(path, copies[-1])
    return copies


def port_flags(files: list[Path], rest_port: int, mcp_port: int) -> list[str]:
    """`--port NS=PORT` for every exposure: all REST on one port, all MCP on another."""
    flags = []
    for path in files:
        for namespace, kind in exposure_namespaces(path).items():
            flags += ["--port", f"{namespace}={rest_port if kind == 'rest' else mcp_port}"]
    return flags


def value_of(schema: Any, depth: int = 0) -> Any:
    """A value matching `schema` (first enum value, first branch of oneOf/anyOf, required keys)."""
    if not isinstance(schema, dict) or depth > 6:
        return "v1"
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return value_of(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    simple = {"integer": 7, "number": 1.5, "boolean": True, "null": None}
    if kind in simple:
        return simple[kind]
    if kind == "array":
        return [value_of(schema.get("items"), depth + 1)]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: value_of(properties.get(name), depth + 1) for name in schema.get("required") or []}
    return "v1"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def request_for(template: str, operation: dict[str, Any]) -> tuple[str, dict[str, str], Any]:
    """(path with query, headers, JSON body or None) calling `operation` with made-up values."""
    path, query, headers = template, [], {}
    cookies = []
    for parameter in operation.get("parameters") or []:
        where, name = parameter.get("in"), parameter.get("name")
        if where != "path" and not parameter.get("required"):
            continue
        value = value_of(parameter.get("schema"))
        if where == "path":
            path = path.replace("{" + name + "}", quote(_text(value), safe=""))
        elif where == "query":
            query += [(name, _text(v)) for v in (value if isinstance(value, list) else [value])]
        elif where == "header":
            headers[name] = _text(value)
        elif where == "cookie":
            cookies.append(f"{name}={_text(value)}")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    if query:
        path += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    body = None
    request_body = operation.get("requestBody")
    if isinstance(request_body, dict):
        schema = (request_body.get("content") or {}).get("application/json", {}).get("schema")
        body = value_of(schema or {"type": "object"})
        if body is None:
            body = {}
    return path, headers, body

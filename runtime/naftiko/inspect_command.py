"""`naftiko inspect`: what each capability serves — REST routes and MCP tools with their inputs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from .engine.capability import Capability, Target
from .engine.compile import CompileOptions
from .exposes.rest import resource_path, route_path
from .run_command import load_capabilities
from .spec.diagnostics import CapabilityError
from .validation import UnreadablePath


def describe(capability: Capability) -> dict[str, Any]:
    rest: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    for exposure in capability.exposures:
        for target in exposure.targets:
            located = exposure.kind == "rest"  # tool arguments have no HTTP location
            entry = {
                "namespace": exposure.namespace,
                "port": exposure.port,
                "call": target.calls,
                "inputs": _inputs(target, located),
            }
            if exposure.kind == "rest":
                path = route_path(resource_path(exposure, target))
                rest.append({"method": str(target.spec.get("method", "GET")).upper(), "path": path, **entry})
            elif exposure.kind == "mcp":
                tools.append({"name": target.name, "description": target.description, **entry})
    return {"file": capability.file, "rest": rest, "tools": tools}


def _inputs(target: Target, located: bool) -> list[dict[str, Any]]:
    inputs = []
    for field in target.inputs:
        # a REST caller uses the placeholder's own spelling (`{route-id}` for the input route_id)
        entry: dict[str, Any] = {
            "name": field.wire_name if located else field.name,
            "type": field.type or "any",
            "required": field.required,
        }
        if located:
            entry["location"] = field.location
        entry["description"] = field.description
        inputs.append(entry)
    return inputs


def render_text(descriptions: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for item in descriptions:
        lines.append(item["file"])
        for route in item["rest"]:
            lines.append(f"  REST {route['method']:<6} {route['path']}  (port {route['port']}, calls {route['call']})")
            lines.extend(_input_lines(route["inputs"], located=True))
        for tool in item["tools"]:
            lines.append(f"  MCP  {tool['name']}  (port {tool['port']}, calls {tool['call']})")
            lines.extend(_input_lines(tool["inputs"], located=False))
    return "\n".join(lines)


def _input_lines(inputs: list[dict[str, Any]], located: bool) -> list[str]:
    return [
        f"         {i['name']}: {i['type']}{' (required)' if i['required'] else ''}"
        + (f" in {i['location']}" if located else "")
        + (f" — {i['description']}" if i["description"] else "")
        for i in inputs
    ]


def run_inspect(paths: Sequence[str], output_format: str) -> int:
    try:
        capabilities = load_capabilities(paths, CompileOptions(dry_run=True))
    except UnreadablePath as exc:
        print(f"naftiko inspect: {exc}", file=sys.stderr)
        return 2
    except CapabilityError as exc:
        print(exc, file=sys.stderr)
        return 1
    descriptions = [describe(c) for c in capabilities.values()]
    print(
        json.dumps(descriptions, indent=2, ensure_ascii=False) if output_format == "json" else render_text(descriptions)
    )
    return 0

"""`naftiko inspect --gateway PATH…`: the catalogue `run --gateway` would serve, before serving it:
every REST route under its prefix, every MCP tool under its own endpoint and its union name."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from ..config import RunConfig
from ..engine.compile import CompileOptions
from ..validation import UnreadablePath
from .catalogue import assemble
from .load import load_files
from .members import GatewayPortPlan
from .naming import union_names
from .openapi import prefix


def catalogue(paths: Sequence[str]) -> dict[str, Any]:
    """Routes, tools, files not served and conflicts, as plain data."""
    entries = load_files(paths, RunConfig(paths=tuple(paths), compile=CompileOptions(dry_run=True)))
    assembly = assemble(entries)
    rest: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    for port_plan in assembly.plans:
        if not isinstance(port_plan, GatewayPortPlan):
            continue
        members = sorted(port_plan.members.values(), key=lambda m: m.namespace)
        joined = [m for m in members if m.mcp is not None and m.exposure.auth is None]
        names = union_names((m.namespace, name) for m in joined for name in m.mcp.tools)  # type: ignore[union-attr]
        for member in members:
            where = {"port": port_plan.port, "namespace": member.namespace, "file": member.capability.file}
            for route in member.routes:
                rest.append({"method": route.method, "path": prefix(member.namespace) + route.path, **where})
            for name in member.mcp.tools if member.mcp is not None else ():
                endpoint = f"/mcp{prefix(member.namespace)}"
                tools.append(
                    {"endpoint": endpoint, "name": name, "union": names.get((member.namespace, name)), **where}
                )
    return {
        "rest": rest,
        "tools": tools,
        "not_served": [problem for e in entries for problem in e.problems],
        "conflicts": [why for _, why in assembly.conflicts],
    }


def render_text(found: dict[str, Any]) -> str:
    lines = [f"REST {r['method']:<6} :{r['port']}{r['path']}  ({r['file']})" for r in found["rest"]]
    for tool in found["tools"]:
        union = f"  /mcp: {tool['union']}" if tool["union"] else "  (not in /mcp: it declares authentication)"
        lines.append(f"MCP  :{tool['port']}{tool['endpoint']}  {tool['name']}{union}")
    lines += [f"not served: {problem}" for problem in found["not_served"]]
    lines += [f"conflict: {why}" for why in found["conflicts"]]
    lines.append(
        f"{len(found['rest'])} REST routes, {len(found['tools'])} MCP tools, "
        f"{len(found['not_served'])} problems, {len(found['conflicts'])} conflicts"
    )
    return "\n".join(lines)


def inspect_gateway(paths: Sequence[str], output_format: str) -> int:
    """0 when everything can be served; 1 when a file is not served; 2 on a conflict."""
    try:
        found = catalogue(paths)
    except UnreadablePath as exc:
        print(f"naftiko inspect: {exc}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(found, indent=2, ensure_ascii=False) if output_format == "json" else render_text(found))
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has seen enough
        sys.stdout = None  # type: ignore[assignment] - nothing more to flush at exit
    return 2 if found["conflicts"] else 1 if found["not_served"] else 0

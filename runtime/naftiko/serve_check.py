"""What `naftiko run` would refuse in a file the checks of `spec/` accept, pinned to lines.

`validate` and `run` must agree: a file `validate` accepts, `run` serves. So `validate` takes
the steps `naftiko run --dry-run FILE` takes before it opens a port — compile the capability,
group its exposures by port, build each port's REST routes (a route declared twice), forward
routes, skill catalogue and MCP server — and reports each refusal at its line and column.
Secrets are not needed (dry-run): a bind that cannot be resolved is `run`'s concern alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .engine.capability import Capability
from .engine.compile import CompileOptions, compile_capability
from .exposes.forward import ForwardError, check_forwards, collect_forwards
from .exposes.rest import RouteConflict, collect_routes, duplicate_route_message, route_shape
from .exposes.skill import SkillCatalog, SkillError, check_skills
from .server import SERVED_KINDS, PlanError, plan
from .spec.diagnostics import CapabilityError, Diagnostic, JsonPath
from .spec.document import Document

Place = tuple[str, int, int, str]  # file, line, column, JSON path


@dataclass(frozen=True)
class Footprint:
    """What a file claims when served, to find conflicts between files served together
    (`naftiko run a.yaml b.yaml`, `naftiko run DIR`): ports, routes and MCP tools."""

    exposures: tuple[tuple[int, str, Place], ...] = ()  # port, kind
    routes: tuple[tuple[int, str, str, str, Place], ...] = ()  # port, method, shape, path as written
    tools: tuple[tuple[int, str, Place], ...] = ()  # port, tool name


def serving_problems(document: Document) -> tuple[list[Diagnostic], Footprint]:
    """Every reason `naftiko run --dry-run` would refuse this (valid) document ([] when it
    serves), and what it claims when served beside other files."""
    source = document.source
    assert source is not None
    try:
        capability = compile_capability(document, CompileOptions(dry_run=True))
    except CapabilityError as exc:
        return list(exc.diagnostics), Footprint()
    problems: list[Diagnostic] = []

    def report(message: str, at: JsonPath) -> None:
        problems.append(source.diagnostic("error", message, at))

    _check_exposures(capability, report)
    if problems:
        return problems, Footprint()
    try:
        plans = plan([capability])
    except PlanError as exc:  # a refusal the checks above do not foresee: still located, at the exposures
        report(str(exc), ("capability", "exposes"))
        return problems, Footprint()
    for port_plan in plans:
        _check_port(capability, port_plan, report)
    return (problems, Footprint()) if problems else ([], _footprint(capability))


def _footprint(capability: Capability) -> Footprint:
    def place(at: JsonPath) -> Place:
        diagnostic = capability.document.source.diagnostic("error", "", at)  # type: ignore[union-attr]
        return (diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.path)

    exposures, routes, tools = [], [], []
    for index, exposure in enumerate(capability.exposures):
        port = exposure.port
        if exposure.kind not in SERVED_KINDS or exposure.spec.get("transport") == "stdio" or port is None:
            continue
        exposures.append((port, exposure.kind, place(("capability", "exposes", index))))
        if exposure.kind == "rest":
            for route in collect_routes([(capability, exposure)]):
                routes.append((port, route.method, route_shape(route.path), route.path, place(route.target.at)))
        elif exposure.kind == "mcp":
            tools.extend((port, target.name, place(target.at)) for target in exposure.targets)
    return Footprint(tuple(exposures), tuple(routes), tuple(tools))


def conflicts_between(footprints: Sequence[Footprint]) -> list[tuple[Place, str]]:
    """What `naftiko run` refuses in files served together that it serves one by one: a port
    claimed by two kinds, a route or an MCP tool declared in two files on one port. Each
    problem is located at its later place and names the earlier one."""
    found: list[tuple[Place, str]] = []
    kinds: dict[int, tuple[str, Place]] = {}
    routes: dict[tuple[int, str, str], tuple[str, Place]] = {}
    tools: dict[tuple[int, str], Place] = {}
    for footprint in footprints:
        for port, kind, where in footprint.exposures:
            first = kinds.setdefault(port, (kind, where))
            if first[0] != kind and first[1][0] != where[0]:
                found.append(
                    (
                        where,
                        f"port {port} is claimed by a {first[0]} exposure at {_at(first[1])} and by this {kind} exposure at {_at(where)}",
                    )
                )
        for port, method, shape, path, where in footprint.routes:
            first_path, first_where = routes.setdefault((port, method, shape), (path, where))
            if first_where[0] != where[0]:
                written = path if path == first_path else f"{first_path} (also written {path})"
                found.append(
                    (
                        where,
                        f"route {method} {written} on port {port} is declared twice: at {_at(first_where)} and at {_at(where)}",
                    )
                )
        for port, name, where in footprint.tools:
            first_where = tools.setdefault((port, name), where)
            if first_where[0] != where[0]:
                found.append(
                    (
                        where,
                        f"MCP tool {name!r} on port {port} is declared twice: at {_at(first_where)} and at {_at(where)}",
                    )
                )
    return found


def _at(place: Place) -> str:
    return f"{place[0]}:{place[1]}:{place[2]}"


def _check_exposures(capability: Capability, report: Callable[[str, JsonPath], None]) -> None:
    """`server.plan`'s checks, exposure by exposure, so each one is located."""
    ports: dict[int, tuple[str, int]] = {}  # port → (kind, exposure index)
    for index, exposure in enumerate(capability.exposures):
        at: JsonPath = ("capability", "exposes", index)
        if exposure.kind not in SERVED_KINDS or exposure.spec.get("transport") == "stdio":
            continue
        checks = check_forwards(capability, exposure) if exposure.kind == "rest" else []
        checks += check_skills(capability, exposure) if exposure.kind == "skill" else []
        for message in checks:
            report(message, at)
        key = exposure.namespace or exposure.kind
        port = exposure.port
        if port is None:
            report(f"exposure {key!r} has no port: give it one (or run it with --port {key}=PORT)", at)
            continue
        claimed = ports.setdefault(port, (exposure.kind, index))
        if claimed[0] != exposure.kind:
            line = capability.where(("capability", "exposes", claimed[1])).rsplit(":", 2)[-2]
            report(
                f"port {port} is claimed by a {claimed[0]} exposure (line {line}) and by this {exposure.kind} exposure",
                (*at, "port"),
            )


def _check_port(capability: Capability, port_plan, report: Callable[[str, JsonPath], None]) -> None:
    first: JsonPath = ("capability", "exposes", capability.exposures.index(port_plan.entries[0][1]))
    if port_plan.kind == "rest":
        try:
            collect_routes(port_plan.entries)
        except RouteConflict as exc:
            for group in exc.groups:
                report(duplicate_route_message(group), group[-1].target.at)
        try:
            collect_forwards(port_plan.entries)
        except ForwardError as exc:
            report(str(exc), first)
    elif port_plan.kind == "skill":
        try:
            SkillCatalog(port_plan.entries)
        except SkillError as exc:
            report(str(exc), first)
    elif port_plan.kind == "mcp":
        from .exposes.mcp import McpServer

        if len({id(e.auth) for _, e in port_plan.entries}) > 1:
            report(f"MCP exposures sharing port {port_plan.port} declare different authentication", first)
        try:
            McpServer(port_plan.entries)
        except ValueError as exc:
            report(str(exc), first)

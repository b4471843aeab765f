"""What `naftiko run` would refuse in a file the checks of `spec/` accept, pinned to lines.

`validate` and `run` must agree: a file `validate` accepts, `run` serves. So `validate` takes
the steps `naftiko run --dry-run FILE` takes before it opens a port — compile the capability,
group its exposures by port, build each port's REST routes (a route declared twice), forward
routes, skill catalogue and MCP server — and reports each refusal at its line and column.
Secrets are not needed (dry-run): a bind that cannot be resolved is `run`'s concern alone.
"""

from __future__ import annotations

from collections.abc import Callable

from .engine.capability import Capability
from .engine.compile import CompileOptions, compile_capability
from .exposes.forward import ForwardError, check_forwards, collect_forwards
from .exposes.rest import RouteConflict, collect_routes, duplicate_route_message
from .exposes.skill import SkillCatalog, SkillError, check_skills
from .server import SERVED_KINDS, PlanError, plan
from .spec.diagnostics import CapabilityError, Diagnostic, JsonPath
from .spec.document import Document


def serving_problems(document: Document) -> list[Diagnostic]:
    """Every reason `naftiko run --dry-run` would refuse this (valid) document; [] when it serves."""
    source = document.source
    assert source is not None
    try:
        capability = compile_capability(document, CompileOptions(dry_run=True))
    except CapabilityError as exc:
        return list(exc.diagnostics)
    problems: list[Diagnostic] = []

    def report(message: str, at: JsonPath) -> None:
        problems.append(source.diagnostic("error", message, at))

    _check_exposures(capability, report)
    if problems:
        return problems
    try:
        plans = plan([capability])
    except PlanError as exc:  # a refusal the checks above do not foresee: still located, at the exposures
        report(str(exc), ("capability", "exposes"))
        return problems
    for port_plan in plans:
        _check_port(capability, port_plan, report)
    return problems


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
            report(f"port {port} is claimed by a {claimed[0]} exposure (line {line}) and by this {exposure.kind} exposure", (*at, "port"))


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

"""One gateway member per served REST or MCP exposure: its own router or MCP server, built
once when its file is loaded and kept, untouched, until that file changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..engine.capability import Capability, Exposure
from ..exposes.forward import ForwardError, collect_forwards
from ..exposes.mcp import McpServer
from ..exposes.rest import RestRouter, Route, collect_routes
from ..http import Responder
from ..server import PlanError, PortPlan

GATEWAY_KINDS = ("rest", "mcp")


@dataclass(eq=False)
class Member:
    """What serves exposure `namespace` under `/namespace` (REST) or `/mcp/namespace` (MCP)."""

    capability: Capability
    exposure: Exposure
    port: int
    routes: Sequence[Route] = ()
    router: RestRouter | None = None
    mcp: McpServer | None = None
    handlers: Mapping[str, Responder] = field(default_factory=dict)  # /mcp/NS, made when first served

    @property
    def namespace(self) -> str:
        return self.exposure.namespace


@dataclass
class GatewayPortPlan(PortPlan):
    """A REST or MCP port of the gateway: its exposures by namespace."""

    members: dict[str, Member] = field(default_factory=dict)


def members_of(plans: Sequence[PortPlan]) -> list[Member]:
    """The members of one file's port plans; raises ValueError or PlanError (naming the file
    and, for a duplicate route, the places) when one of its exposures cannot be served alone."""
    members = []
    for port_plan in plans:
        if port_plan.kind not in GATEWAY_KINDS:
            continue
        for capability, exposure in port_plan.entries:
            member = Member(capability, exposure, port_plan.port)
            if exposure.kind == "rest":
                member.routes = collect_routes([(capability, exposure)])
                try:
                    forwards = collect_forwards([(capability, exposure)])
                except ForwardError as exc:
                    raise PlanError(str(exc)) from None
                member.router = RestRouter(member.routes, forwards)
            else:
                member.mcp = McpServer([(capability, exposure)])
            members.append(member)
    return members

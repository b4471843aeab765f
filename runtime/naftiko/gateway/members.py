"""One gateway member per served REST or MCP exposure: its own router or MCP server, built
once when its file is loaded and kept, untouched, until that file changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..engine.capability import Capability, Exposure
from ..exposes.forward import collect_forwards
from ..exposes.mcp import McpServer
from ..exposes.rest import RestRouter, Route, RouteConflict, collect_routes
from ..http import Responder
from ..server import PortPlan

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


class MemberError(ValueError):
    """An exposure that cannot be served alone; `where` is its `file:line:column`."""

    def __init__(self, where: str, message: str):
        self.where = where
        super().__init__(message)


def members_of(plans: Sequence[PortPlan]) -> list[Member]:
    """The members of one file's port plans; raises RouteConflict (located at the routes) or
    MemberError (located at the exposure) when one of its exposures cannot be served alone."""
    members = []
    for port_plan in plans:
        if port_plan.kind not in GATEWAY_KINDS:
            continue
        for capability, exposure in port_plan.entries:
            try:
                members.append(_member(capability, exposure, port_plan.port))
            except RouteConflict:
                raise
            except ValueError as exc:  # ForwardError, MCP names twice, a prompt file missing
                index = next(i for i, e in enumerate(capability.exposures) if e is exposure)
                message = str(exc).removeprefix(f"{capability.file}: ")
                raise MemberError(capability.where(("capability", "exposes", index)), message) from None
    return members


def _member(capability: Capability, exposure: Exposure, port: int) -> Member:
    member = Member(capability, exposure, port)
    if exposure.kind == "rest":
        member.routes = collect_routes([(capability, exposure)])
        member.router = RestRouter(member.routes, collect_forwards([(capability, exposure)]))
    else:
        member.mcp = McpServer([(capability, exposure)])
    return member

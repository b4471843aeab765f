"""A gateway port: REST members under `/NS`, MCP members at `/mcp/NS` and their union at `/mcp`;
`/health`, `/metrics` and (REST) the merged `/openapi.json` at the root.

A reload builds nothing for the members whose file did not change: `prepare` assembles the
members it is given (already built when their file was loaded) and makes only the union anew.
MCP sessions outlive reloads, of a member whose file changed and of the union alike.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ..exposes.mcp_http import mcp_routes
from ..exposes.origin_policy import OriginPolicy
from ..exposes.problems import problem
from ..http import Answer, Request, Responder, Response
from ..server import PortPlan, PortServer, _not_allowed, _Served
from .members import GatewayPortPlan, Member
from .openapi import Documents, prefix, prefixed_routes
from .union import McpUnion

_JSON = "application/json; charset=utf-8"


@dataclass
class _GatewayServed(_Served):
    members: Mapping[str, Member] = field(default_factory=dict)
    union: McpUnion | None = None
    union_handlers: Mapping[str, Responder] = field(default_factory=dict)


class GatewayPortServer(PortServer):
    def __init__(self, port_plan: GatewayPortPlan, *args: Any):
        self.members: Mapping[str, Member] = {}
        self.union: McpUnion | None = None
        self.union_handlers: Mapping[str, Responder] = {}
        self._union_sessions: OrderedDict[str, Any] = OrderedDict()
        self.documents = Documents()
        super().__init__(port_plan, None, *args)

    def prepare(self, port_plan: PortPlan) -> _Served:
        assert isinstance(port_plan, GatewayPortPlan)
        settings = self.settings
        members = dict(sorted(port_plan.members.items()))
        public = [settings.public_urls[ns] for ns in members if ns in settings.public_urls]
        policy = OriginPolicy(self.address, settings.allow_origins, settings.forwarded_allow_ips, public)
        served = _GatewayServed(policy, entries=list(port_plan.entries), members=members)
        if self.kind == "mcp" and self.union is not None and _same(members, self.members):
            served.union, served.union_handlers = self.union, self.union_handlers  # nothing changed here
        elif self.kind == "mcp":
            for member in members.values():
                self._serve_mcp(member)
            served.union = McpUnion(list(members.values()))
            served.union.sessions = self._union_sessions
            served.union_handlers = mcp_routes(served.union, None, settings.allow_origins)
        return served

    def _serve_mcp(self, member: Member) -> None:
        assert member.mcp is not None
        previous = self.members.get(member.namespace)
        if previous is not None and previous is not member and previous.mcp is not None:
            member.mcp.sessions = previous.mcp.sessions  # the file changed; its clients' sessions stay
        if not member.handlers:
            member.handlers = mcp_routes(member.mcp, member.exposure.auth, self.settings.allow_origins)

    def install(self, served: _Served) -> None:
        assert isinstance(served, _GatewayServed)
        super().install(served)
        self.members, self.union, self.union_handlers = served.members, served.union, served.union_handlers
        self.documents = Documents()
        self.metrics.describe(served.entries, prefixed_routes(served.members.values()))
        if served.union is not None:
            self.metrics.tools |= served.union.tools.keys()

    def _route(self, request: Request) -> Answer:
        path = request.raw_path.partition("?")[0]
        if request.oversized or path in ("/health", "/metrics") or (path == "/openapi.json" and self.kind != "rest"):
            return super()._route(request)
        if path == "/openapi.json":
            request.route = path
            if request.method not in ("GET", "HEAD"):
                return _not_allowed(["GET", "HEAD"])
            return self._merged_openapi(request)
        if self.kind == "mcp":
            return self._route_mcp(request, path)
        head, _, rest = path[1:].partition("/")
        member = self.members.get(unquote(head))
        if member is None or member.router is None:
            return _not_found("no exposure namespace is served under this path's first segment")
        inner = "/" + rest
        if inner == "/openapi.json":
            request.route = prefix(member.namespace) + inner
            if request.method not in ("GET", "HEAD"):
                return _not_allowed(["GET", "HEAD"])
            base = self._base(request, self.settings.public_urls.get(member.namespace))
            return Response(200, self.documents.member(member, base), content_type=_JSON)
        matched = member.router.match(inner)
        if matched is None:
            return _not_found("no route matches this path")
        handlers, params, template = matched
        request.route = prefix(member.namespace) + template
        handler = handlers.get(request.method)
        if handler is None:
            return _not_allowed(sorted(handlers))
        return handler.handle(request, params)

    def _route_mcp(self, request: Request, path: str) -> Answer:
        if path == "/mcp":
            handlers = self.union_handlers
        elif path.startswith("/mcp/"):
            member = self.members.get(unquote(path[5:]))
            if member is None:
                return _not_found("no MCP server of that namespace on this port")
            handlers = member.handlers
            path = "/mcp" + prefix(member.namespace)  # one metrics series however the path was spelled
        else:
            return _not_found("MCP is served at /mcp and /mcp/NAMESPACE")
        request.route = path
        handler = handlers.get(request.method)
        if handler is None:
            return _not_allowed(sorted(handlers))
        return handler(request)

    async def _merged_openapi(self, request: Request) -> Response:
        """Built in a thread when first asked for (a second or more for thousands of files): the
        other requests keep being answered meanwhile."""
        public = next((self.settings.public_urls[ns] for ns in self.members if ns in self.settings.public_urls), None)
        members = list(self.members.values())
        body = await asyncio.to_thread(self.documents.merged, members, self._base(request, public))
        return Response(200, body, content_type=_JSON)

    def _base(self, request: Request, public: str | None) -> str:
        """The root URL clients use: `--public-url`, else what a trusted proxy says, else ours."""
        return public or self.policy.forwarded_base(request) or self.base_url


def _same(members: Mapping[str, Member], others: Mapping[str, Member]) -> bool:
    return members.keys() == others.keys() and all(m is others[ns] for ns, m in members.items())


def _not_found(detail: str) -> Response:
    return problem(404, "not-found", "Not found", detail)

"""Serving: one HTTP server (naftiko.http) per (address, port), exposures sharing a port merged onto it.

Each server answers its REST routes (plus `/openapi.json`, forward resources included), its
MCP endpoint or its skill catalogue, and then `/health` and `/metrics`; a control port answers
only its control routes (health, status, the metrics of every server of the process). Every request is logged as one JSON line on stderr. Stopping drains
in-flight requests before the process exits.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .access_log import AccessLog, new_request_id
from .auth.metadata_layer import resource_servers, with_resource_metadata
from .config import ServeSettings
from .engine.capability import Capability, Exposure
from .exposes.control import Control, ControlPlane, Servers, ServerView
from .exposes.forward import ForwardError, check_forwards, collect_forwards
from .exposes.mcp_jsonrpc import INVALID_REQUEST, encode, error_response
from .exposes.openapi import build_openapi
from .exposes.origin_policy import OriginPolicy, checked, with_cors
from .exposes.problems import problem
from .exposes.rest import RestRouter, collect_routes
from .exposes.skill import SkillCatalog, SkillError, check_skills
from .http import Answer, HttpServer, Request, Responder, Response
from .observability import retire_unused, server_tracing

log = logging.getLogger("naftiko")
DEFAULT_ADDRESS = "127.0.0.1"
SERVED_KINDS = ("rest", "mcp", "skill", "control")


class PlanError(Exception):
    """Exposures that cannot be served together (a port claimed by two kinds, a duplicate route)."""


@dataclass
class PortPlan:
    address: str
    port: int
    kind: str
    entries: list[tuple[Capability, Exposure]] = field(default_factory=list)


def plan(
    capabilities: Sequence[Capability], host: str | None = None, ports: Mapping[str, int] | None = None
) -> list[PortPlan]:
    """Group the HTTP exposures of every capability by port (`--port NS=PORT` wins over the file)."""
    ports = ports or {}
    plans: dict[int, PortPlan] = {}
    for capability in capabilities:
        for exposure in capability.exposures:
            if exposure.kind not in SERVED_KINDS or exposure.spec.get("transport") == "stdio":
                continue
            problems = check_forwards(capability, exposure) if exposure.kind == "rest" else []
            problems += check_skills(capability, exposure) if exposure.kind == "skill" else []
            if problems:
                raise PlanError(f"{capability.file}: " + "; ".join(problems))
            key = exposure.namespace or exposure.kind  # a control exposure has no namespace: --port control=PORT
            port = ports.get(key, exposure.port)
            if port is None:
                raise PlanError(f"{capability.file}: exposure {key!r} has no port (use --port {key}=PORT)")
            address = host or str(exposure.spec.get("address") or DEFAULT_ADDRESS)
            existing = plans.get(port)
            if existing is None:
                plans[port] = PortPlan(address, port, exposure.kind, [(capability, exposure)])
                continue
            if existing.kind != exposure.kind:
                other_file = existing.entries[0][0].file
                raise PlanError(
                    f"port {port} is claimed by a {existing.kind} exposure in {other_file} and a {exposure.kind} exposure in {capability.file}"
                )
            existing.entries.append((capability, exposure))
    return list(plans.values())


def port_in_use(port_plan: PortPlan) -> PlanError:
    names = sorted({e.namespace or e.kind for _, e in port_plan.entries})
    flags = " or ".join(f"--port {name}=PORT" for name in names)
    return PlanError(
        f"port {port_plan.port} on {port_plan.address} is already in use (wanted by {', '.join(names)}); choose another with {flags}"
    )


McpRoutes = Callable[["PortPlan"], Mapping[str, Responder]]


@dataclass
class _Served:
    policy: OriginPolicy
    router: RestRouter | None = None
    openapi: dict | None = None
    openapi_bytes: bytes = b""
    mcp_handlers: Mapping[str, Responder] = field(default_factory=dict)
    handler: SkillCatalog | Control | None = None  # skill and control ports
    entries: list[tuple[Capability, Exposure]] = field(default_factory=list)


class PortServer:
    """One listening (address, port). Its routes and tools can be replaced while it serves:
    requests already running finish on the version they started with."""

    def __init__(
        self,
        port_plan: PortPlan,
        mcp_routes: McpRoutes | None = None,
        servers: Servers | None = None,
        settings: ServeSettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        plane: ControlPlane | None = None,
    ):
        """`servers`: what a control port reports on (default: this server alone); `plane`:
        what it acts on (reload, traces)."""
        self.address, self.port, self.kind = port_plan.address, port_plan.port, port_plan.kind
        self.mcp_routes = mcp_routes
        self.servers: Servers = servers or (lambda: [self.view()])
        self.plane = plane or ControlPlane()
        self.settings = settings = settings or ServeSettings()
        self.scheme = "https" if ssl_context is not None else "http"
        self.metrics = self.plane.metrics(self.kind, port_plan.port)  # supervisors/: a fleet member's
        self.access_log = AccessLog()
        self.http = HttpServer(self.handle, settings.limits, ssl_context)
        self.policy: OriginPolicy
        self.app: Responder = self._route
        self.router: RestRouter | None = None
        self.openapi: dict | None = None
        self.openapi_bytes = b""
        self._openapi_by_base: dict[str, bytes] = {}
        self.mcp_handlers: Mapping[str, Responder] = {}
        self.handler: SkillCatalog | Control | None = None
        self.entries: list[tuple[Capability, Exposure]] = []
        self.install(self.prepare(port_plan))

    async def listen(self) -> int:
        """Start serving; returns the port (the system's choice when the plan says 0)."""
        try:
            self.port = await self.http.listen(self.address, self.port, reuse_port=self.settings.reuse_port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise port_in_use(PortPlan(self.address, self.port, self.kind, self.entries)) from None
        return self.port

    @property
    def base_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}"

    async def close(self, timeout: float = 30.0) -> None:
        """Stop listening and let requests in flight finish (at most `timeout` seconds)."""
        await self.http.close(timeout)
        self.access_log.flush()

    def view(self) -> ServerView:
        return ServerView(self.kind, self.address, self.port, self.entries, self.metrics)

    def prepare(self, port_plan: PortPlan) -> _Served:
        """Build what `port_plan` serves; raises on a conflict, changing nothing."""
        entries = list(port_plan.entries)
        settings = self.settings
        public = [settings.public_urls[e.namespace] for _, e in entries if e.namespace in settings.public_urls]
        policy = OriginPolicy(self.address, settings.allow_origins, settings.forwarded_allow_ips, public)
        if self.kind == "rest":
            routes = collect_routes(port_plan.entries)
            try:
                forwards = collect_forwards(port_plan.entries)
            except ForwardError as exc:
                raise PlanError(str(exc)) from None
            document = build_openapi(routes, public[0] if public else self.base_url)
            openapi = json.dumps(document, ensure_ascii=False).encode()
            return _Served(policy, RestRouter(routes, forwards), None if public else document, openapi, entries=entries)
        if self.kind == "skill":
            try:
                return _Served(policy, handler=SkillCatalog(port_plan.entries), entries=entries)
            except SkillError as exc:
                raise PlanError(str(exc)) from None
        if self.kind == "control":
            return _Served(policy, handler=Control(port_plan.entries, self.servers, self.plane), entries=entries)
        return _Served(policy, mcp_handlers=self.mcp_routes(port_plan) if self.mcp_routes else {}, entries=entries)

    def install(self, served: _Served) -> None:
        self.policy, self.router, self.mcp_handlers = served.policy, served.router, served.mcp_handlers
        self.openapi, self.openapi_bytes, self._openapi_by_base = served.openapi, served.openapi_bytes, {}
        self.handler, self.entries = served.handler, served.entries
        self.metrics.describe(served.entries, served.router.routes if served.router is not None else ())
        self.app = self._layers(served.policy)

    def _layers(self, policy: OriginPolicy) -> Responder:
        """The request path, innermost first; a layer is installed only when switched on
        (STYLE.md d): the router, the Host/Origin checks, CORS for `--allow-origin`, tracing when
        a capability served here turns it on (observability/trace_config.py). Ports with an oauth2
        exposure also serve its RFC 9728 metadata document (auth/metadata_layer.py)."""
        browser = self.kind == "rest"
        app = with_resource_metadata(resource_servers(e.auth for _, e in self.entries), self._route)
        app = checked(policy, app, browser)
        if browser and policy.allow_origins:
            app = with_cors(policy, app)
        tracing = server_tracing(self.entries) if self.kind in ("rest", "mcp") else None
        if tracing is not None:
            app = tracing.server_layer(app, self.kind)
        return app

    async def handle(self, request: Request) -> Response:
        """Every request: answer it, then count it and log it (one JSON line)."""
        started = time.perf_counter()
        request_id = request.headers.get("X-Request-Id") or new_request_id()
        try:
            answer = self.app(request)
            response = answer if isinstance(answer, Response) else await answer
        except Exception:  # noqa: BLE001 - one bad request must never take the server down
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = problem(
                500, "internal-error", "Internal error", f"request {request_id} failed; see the server log"
            )
        elapsed = time.perf_counter() - started
        route = request.route or "(unmatched)"
        self.metrics.observe(request.method, route, response.status, elapsed, request.result, request.operation)
        response.headers["X-Request-Id"] = request_id
        self.access_log.record(
            request.method,
            route,
            response.status,
            getattr(request.result, "status", None),
            elapsed,
            request_id,
            request.client,
            request.trace,
        )
        return response

    def _route(self, request: Request) -> Answer:
        """The answer, or the handler's coroutine that will give it (awaited once, by `handle`)."""
        if request.oversized:
            return self._too_large()
        path = request.raw_path.partition("?")[0]
        if (
            self.kind != "control"
            and path in ("/health", "/metrics")
            or self.kind == "rest"
            and path == "/openapi.json"
        ):
            request.route = path
            if request.method not in ("GET", "HEAD"):
                return _not_allowed(["GET", "HEAD"])
            if path == "/health":
                return Response(200, b'{"status":"ok"}', content_type="application/json; charset=utf-8")
            if path == "/metrics":
                return Response(text=self.metrics.render(), content_type="text/plain")
            return Response(200, self._openapi_for(request), content_type="application/json; charset=utf-8")
        if self.kind == "rest":
            assert self.router is not None
            matched = self.router.match(request.raw_path)
            if matched is None:
                return _not_found()
            handlers, params, request.route = matched
            handler = handlers.get(request.method)
            if handler is None:
                return _not_allowed(sorted(handlers))
            return handler.handle(request, params)
        if self.kind == "mcp":
            if path != "/mcp":
                return _not_found()
            request.route = "/mcp"
            mcp_handler = self.mcp_handlers.get(request.method)
            if mcp_handler is None:
                return _not_allowed(sorted(self.mcp_handlers))
            return mcp_handler(request)
        assert self.handler is not None
        request.route = self.handler.route_of(request.path)
        return self.handler.handle(request)

    def _openapi_for(self, request: Request) -> bytes:
        """The document, its server URL the one a trusted proxy says the client used, unless
        `--public-url` fixed it."""
        base = self.policy.forwarded_base(request) if self.openapi is not None else None
        if base is None:
            return self.openapi_bytes
        cached = self._openapi_by_base.get(base)
        if cached is None:
            document = {**self.openapi, "servers": [{**self.openapi["servers"][0], "url": base}]}
            cached = json.dumps(document, ensure_ascii=False).encode()
            if len(self._openapi_by_base) < 16:
                self._openapi_by_base[base] = cached
        return cached

    def _too_large(self) -> Response:
        detail = f"request bodies are limited to {self.settings.limits.max_body_bytes:,} bytes"
        if self.kind == "mcp":
            return Response(
                413,
                encode(error_response(None, INVALID_REQUEST, f"Payload Too Large: {detail}")),
                content_type="application/json",
            )
        return problem(413, "payload-too-large", "Payload too large", detail)


def _not_found() -> Response:
    return problem(404, "not-found", "Not found", "no route matches this path")


def _not_allowed(allowed: Sequence[str]) -> Response:
    response = problem(405, "method-not-allowed", "Method not allowed", f"allowed methods: {','.join(allowed)}")
    response.headers["Allow"] = ",".join(allowed)
    return response


class Runtime:
    """The servers of one `naftiko run`: started together, updated on reload, stopped together."""

    def __init__(self, mcp_routes: McpRoutes | None = None, settings: ServeSettings | None = None):
        """Raises PlanError when the TLS certificate or key cannot be loaded."""
        self.mcp_routes = mcp_routes
        self.settings = settings or ServeSettings()
        self.ssl = _server_ssl(self.settings)
        self.servers: dict[int, PortServer] = {}
        self.plane = ControlPlane()  # `naftiko run` gives it the reload

    async def start(self, plans: Sequence[PortPlan]) -> list[str]:
        """Bind every port (all or nothing); returns the URLs served."""
        try:
            return [await self._open(port_plan) for port_plan in plans]
        except BaseException:
            await self.stop()
            raise

    async def apply(self, plans: Sequence[PortPlan]) -> list[str]:
        """Move to a new set of exposures: update ports kept, open new ones, close the others.

        Every new plan is checked (routes and tools built) before anything changes.
        """
        by_port = {p.port: p for p in plans}
        updates = {
            port: server.prepare(by_port[port])
            for port, server in self.servers.items()
            if port in by_port and by_port[port].kind == server.kind
        }
        changes = []
        for port, server in list(self.servers.items()):
            if port in updates:
                server.install(updates[port])
            else:
                await server.close()
                del self.servers[port]
                changes.append(f"closed port {port}")
        for port_plan in plans:
            if port_plan.port not in self.servers:
                changes.append(f"serving {await self._open(port_plan)}")
        retire_unused(capability for port_plan in plans for capability, _ in port_plan.entries)
        return changes

    def views(self) -> list[ServerView]:
        """Every server of this runtime, as the control port reports them."""
        return [server.view() for server in self.servers.values()]

    async def _open(self, port_plan: PortPlan) -> str:
        server = PortServer(port_plan, self.mcp_routes, self.views, self.settings, self.ssl, self.plane)
        await server.listen()
        self.servers[port_plan.port] = server
        return f"{server.base_url} ({port_plan.kind})"

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish, then close."""
        # Every port stops listening at once, then they drain together.
        await asyncio.gather(*(server.close() for server in self.servers.values()))
        self.servers.clear()


def _server_ssl(settings: ServeSettings) -> ssl.SSLContext | None:
    if settings.ssl_certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise PlanError(f"--ssl-certfile/--ssl-keyfile: cannot load the certificate and key: {reason}") from None
    return context

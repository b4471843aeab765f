"""Serving: one aiohttp server per (address, port), exposures sharing a port merged onto it.

Each server answers its REST routes (plus `/openapi.json`) or its MCP endpoint, and always
`/health` and `/metrics`. Every request is logged as one JSON line on stderr. Stopping drains
in-flight requests before the process exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .engine.capability import Capability, Exposure
from .exposes.metrics import Metrics
from .exposes.openapi import build_openapi
from .exposes.problems import problem
from .exposes.rest import RESULT_KEY, RestHandler, collect_routes

log = logging.getLogger("naftiko")
MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_ADDRESS = "127.0.0.1"
SERVED_KINDS = ("rest", "mcp")


class PlanError(Exception):
    """Exposures that cannot be served together (a port claimed by two kinds, a duplicate route)."""


@dataclass
class PortPlan:
    address: str
    port: int
    kind: str
    entries: list[tuple[Capability, Exposure]] = field(default_factory=list)


def plan(capabilities: Sequence[Capability], host: str | None = None, ports: Mapping[str, int] | None = None) -> list[PortPlan]:
    """Group the HTTP exposures of every capability by port (`--port NS=PORT` wins over the file)."""
    ports = ports or {}
    plans: dict[int, PortPlan] = {}
    for capability in capabilities:
        for exposure in capability.exposures:
            if exposure.kind not in SERVED_KINDS or exposure.spec.get("transport") == "stdio":
                continue
            port = ports.get(exposure.namespace, exposure.port)
            if port is None:
                raise PlanError(f"{capability.file}: exposure {exposure.namespace!r} has no port (use --port {exposure.namespace}=PORT)")
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


Observer = Callable[[web.Request, web.StreamResponse, float], None]


def build_app(port_plan: PortPlan, mcp_routes: Callable[[PortPlan], list[web.RouteDef]] | None = None) -> web.Application:
    metrics = Metrics()
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[_observe_middleware(metrics)])

    async def render_metrics(request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8")

    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", render_metrics)
    if port_plan.kind == "rest":
        routes = collect_routes(port_plan.entries)
        for route in routes:
            app.router.add_route(route.method, route.path, RestHandler(route).handle)
        openapi = json.dumps(build_openapi(routes, f"http://{port_plan.address}:{port_plan.port}"), ensure_ascii=False)

        async def serve_openapi(request: web.Request) -> web.Response:
            return web.Response(text=openapi, content_type="application/json")

        app.router.add_get("/openapi.json", serve_openapi)
    elif mcp_routes is not None:
        app.add_routes(mcp_routes(port_plan))
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _observe_middleware(metrics: Metrics):
    @web.middleware
    async def observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request.headers.get("X-Request-Id") or secrets.token_hex(8)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _problem_for(exc)
        except Exception:  # noqa: BLE001 - one bad request must never take the server down
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = problem(500, "internal-error", "Internal error", f"request {request_id} failed; see the server log")
        elapsed = time.perf_counter() - started
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(unmatched)"
        result = request.get(RESULT_KEY)
        metrics.observe(request.method, route, response.status, elapsed, result)
        response.headers["X-Request-Id"] = request_id
        _log_request(request, route, response.status, result, elapsed, request_id)
        return response

    return observe


def _problem_for(exc: web.HTTPException) -> web.Response:
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        response = problem(405, "method-not-allowed", "Method not allowed", f"allowed methods: {allowed}")
        response.headers["Allow"] = allowed
        return response
    if exc.status == 404:
        return problem(404, "not-found", "Not found", "no route matches this path")
    if exc.status == 413:
        return problem(413, "payload-too-large", "Payload too large", f"request bodies are limited to {MAX_REQUEST_BYTES:,} bytes")
    return problem(exc.status, "http-error", exc.reason or "HTTP error")


def _log_request(request: web.Request, route: str, status: int, result: Any, elapsed: float, request_id: str) -> None:
    upstream = getattr(result, "status", None)
    line = {
        "method": request.method,
        "route": route,
        "status": status,
        "upstreamStatus": upstream,
        "latencyMs": round(elapsed * 1000, 3),
        "requestId": request_id,
    }
    sys.stderr.write(json.dumps(line) + "\n")


class Runtime:
    """The servers of one `naftiko run`, started together and stopped together."""

    def __init__(self, plans: Sequence[PortPlan], mcp_routes: Callable[[PortPlan], list[web.RouteDef]] | None = None):
        self.plans = plans
        self.mcp_routes = mcp_routes
        self.runners: list[web.AppRunner] = []

    async def start(self) -> list[str]:
        """Bind every port (all or nothing); returns the URLs served."""
        urls = []
        try:
            for port_plan in self.plans:
                runner = web.AppRunner(build_app(port_plan, self.mcp_routes), access_log=None, handle_signals=False)
                await runner.setup()
                self.runners.append(runner)
                site = web.TCPSite(runner, port_plan.address, port_plan.port, shutdown_timeout=30.0)
                await site.start()
                urls.append(f"http://{port_plan.address}:{port_plan.port} ({port_plan.kind})")
        except BaseException:
            await self.stop()
            raise
        return urls

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish, then close."""
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()



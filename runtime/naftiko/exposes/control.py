"""Control exposure (`type: control`): health, status and metrics of the running process (SEMANTICS §7.1).

On its own port:
* `management.health` (default true): `GET /health/live` → `{"status":"UP"}`; `GET
  /health/ready` → `{"status":"UP"|"DEGRADED","adapters":[…]}`, 503 unless every other
  adapter is started.
* `management.info: true`: `GET /status` → the capabilities, exposures and ports served,
  engine version and uptime.
* `management.scripting` present: `GET /scripting` → the scripting governance settings
  (this runtime has no script engine: `available: false`).
* observability enabled (default) and `metrics.local.enabled` (default true): `GET /metrics`
  → Prometheus text with the request figures of every server of the process (label `port`).
* `observability.enabled: false` removes `/metrics`. `/traces` is not served (no tracing yet).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import __version__
from ..engine.capability import Capability, Exposure
from ..http import Request, Response, json_response
from .metrics import Metrics, exposition
from .problems import problem

STARTED = time.monotonic()
SCRIPTING_DEFAULTS = {"enabled": True, "timeout": 60000, "statementLimit": 100000}


class ServerView:
    """What the control port sees of one server of the process."""

    def __init__(self, kind: str, address: str, port: int, entries: Sequence[tuple[Capability, Exposure]], metrics: Metrics | None, started: bool = True):
        self.kind, self.address, self.port, self.entries, self.metrics, self.started = kind, address, port, entries, metrics, started


Servers = Callable[[], Sequence[ServerView]]


def _flag(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


class Control:
    """The control routes of one control port (the first control exposure on it decides the settings)."""

    def __init__(self, entries: Sequence[tuple[Capability, Exposure]], servers: Servers):
        self.capability, self.exposure = entries[0]
        self.entries = list(entries)
        self.servers = servers
        spec = self.exposure.spec
        management = spec.get("management") if isinstance(spec.get("management"), Mapping) else {}
        observability = spec.get("observability") if isinstance(spec.get("observability"), Mapping) else {}
        metrics = observability.get("metrics") if isinstance(observability.get("metrics"), Mapping) else {}
        local = metrics.get("local") if isinstance(metrics.get("local"), Mapping) else {}
        self.scripting = management.get("scripting") if isinstance(management.get("scripting"), Mapping) else None
        self.routes: dict[str, Callable[[Request], Response]] = {}
        if _flag(management.get("health"), True):
            self.routes["/health/live"] = self.live
            self.routes["/health/ready"] = self.ready
        if _flag(management.get("info"), False):
            self.routes["/status"] = self.status
        if self.scripting is not None:
            self.routes["/scripting"] = self.scripting_settings
        if _flag(observability.get("enabled"), True) and _flag(local.get("enabled"), True):
            self.routes["/metrics"] = self.metrics
        self.auths = [e.auth for _, e in entries if e.auth is not None]

    def route_of(self, path: str) -> str:
        """The route for metrics and the log; any other path is one label, not one each."""
        path = path.rstrip("/") or "/"
        return path if path in self.routes else "(unmatched)"

    async def handle(self, request: Request) -> Response:
        for auth in self.auths:
            if not auth.allows(request):
                return auth.challenge()
        route = self.routes.get(request.path.rstrip("/") or "/")
        if route is None:
            return problem(404, "not-found", "Not found", "no route matches this path")
        if request.method not in ("GET", "HEAD"):
            response = problem(405, "method-not-allowed", "Method not allowed", "allowed methods: GET")
            response.headers["Allow"] = "GET"
            return response
        return route(request)

    # -- documents ---------------------------------------------------------------------------

    def adapters(self) -> list[dict[str, Any]]:
        out = []
        for server in self.servers():
            for _, exposure in server.entries:
                entry: dict[str, Any] = {"type": exposure.kind}
                if exposure.namespace:
                    entry["namespace"] = exposure.namespace
                entry.update({"address": server.address, "port": server.port, "state": "started" if server.started else "stopped"})
                out.append(entry)
        return out

    def live(self, request: Request) -> Response:
        return json_response({"status": "UP"})

    def ready(self, request: Request) -> Response:
        adapters = self.adapters()
        degraded = any(a["state"] != "started" for a in adapters if a["type"] != "control")
        return json_response({"status": "DEGRADED" if degraded else "UP", "adapters": adapters}, status=503 if degraded else 200)

    def status(self, request: Request) -> Response:
        capabilities: dict[str, Capability] = {}
        for server in self.servers():
            for capability, _ in server.entries:
                capabilities.setdefault(capability.file, capability)
        info = self._info(self.capability)
        body = {
            "capability": {"label": info.get("label"), "specVersion": self._spec_version(self.capability)},
            "capabilities": [
                {"file": c.file, "label": self._info(c).get("label"), "specVersion": self._spec_version(c)} for c in capabilities.values()
            ],
            "engine": {"name": "naftiko-python", "version": __version__, "python": sys.version.split()[0]},
            "uptime": _iso_duration(time.monotonic() - STARTED),
            "otel": {"status": "inactive"},
            "adapters": self.adapters(),
        }
        return json_response(body)

    def scripting_settings(self, request: Request) -> Response:
        settings = {**SCRIPTING_DEFAULTS, **dict(self.scripting or {})}
        return json_response({**settings, "available": False, "executions": 0})

    def metrics(self, request: Request) -> Response:
        return Response(text=render_metrics(self.servers()), content_type="text/plain")

    @staticmethod
    def _info(capability: Capability) -> Mapping[str, Any]:
        info = (capability.document.resolved or {}).get("info")
        return info if isinstance(info, Mapping) else {}

    @staticmethod
    def _spec_version(capability: Capability) -> Any:
        return (capability.document.resolved or {}).get("naftiko")


def _iso_duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = f"{seconds - whole:.3f}"[1:]
    return f"PT{hours}H{minutes}M{secs}{fraction}S"


def render_metrics(servers: Sequence[ServerView]) -> str:
    """The request figures of every server, one Prometheus exposition (label `port`)."""
    with_metrics = [s for s in servers if s.metrics is not None and s.kind != "control"]
    capabilities = {c.file for s in servers for c, _ in s.entries}
    lines = [
        "# HELP naftiko_capability_active Capabilities loaded by this process.",
        "# TYPE naftiko_capability_active gauge",
        f"naftiko_capability_active {len(capabilities)}",
        *exposition([(f'port="{s.port}",', s.metrics) for s in with_metrics]),
    ]
    return "\n".join(lines) + "\n"

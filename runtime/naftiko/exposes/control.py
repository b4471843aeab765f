"""Control exposure (`type: control`): the management plane of the running process (SEMANTICS §7.1).

On its own port:
* `management.health` (default true): `GET /health/live` → `{"status":"UP"}`; `GET
  /health/ready` → `{"status":"UP"|"DEGRADED","adapters":[…]}`, 503 unless every other
  adapter is started. Always open, even with `authentication` (load balancers, probes).
* `management.info: true`: `GET /status` → the capabilities, exposures and ports served,
  engine version and uptime; `GET /config` → the effective configuration, nothing secret in
  it (control_config.py).
* `management.validate: true`: `POST /config/validate` (control_validate.py).
* `management.reload: true`: `POST /config/reload` → the files read again from disk and served
  (watch.Reloader.reload_all): 200 once the new operations are served; 422 (a broken file)
  or 409 (a conflict) with the errors, the previous configuration still serving.
* `management.logs`: `/logs`, `/logs/{logger}`, `/logs/stream` (control_logs.py).
* `management.scripting` present: `GET /scripting` → the effective scripting settings and
  counts of script calls (naftiko/scripting).
* observability enabled (default): `GET /metrics` (`metrics.local.enabled`, default true) →
  Prometheus text with the request figures of every server of the process (label `port`);
  `GET /traces`, `GET /traces/{traceId}` (`traces.local.enabled`, default true;
  control_traces.py). `observability.enabled: false` removes both.
With `authentication`, every route but the health probes answers 401 without credentials.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..auth import every, guard
from ..engine.capability import Capability, Exposure
from ..http import Answer, Request, Response, json_response
from ..observability import trace_buffer_of
from ..observability.trace_config import tracing_status
from . import control_logs
from .control_config import effective_config
from .control_traces import DEFAULT_BUFFER_SIZE, Traces
from .control_validate import Validation
from .metrics import Metrics, exposition
from .problems import problem

STARTED = time.monotonic()
SCRIPTING_DEFAULTS = {"enabled": True, "timeout": 60000, "statementLimit": 100000}
OPEN_ROUTES = frozenset({"/health/live", "/health/ready"})  # probes never need credentials
_PARAMETERS = (("/logs/", "/logs/{logger}"), ("/traces/", "/traces/{traceId}"))  # prefix → route template


class ServerView:
    """What the control port sees of one server of the process."""

    def __init__(
        self,
        kind: str,
        address: str,
        port: int,
        entries: Sequence[tuple[Capability, Exposure]],
        metrics: Metrics | None,
        started: bool = True,
    ):
        self.kind, self.address, self.port, self.entries, self.metrics, self.started = (
            kind,
            address,
            port,
            entries,
            metrics,
            started,
        )


Servers = Callable[[], Sequence[ServerView]]


def _local_metrics(kind: str, port: int) -> Metrics:
    return Metrics()


def _render_local(servers: Sequence[ServerView]) -> str:
    return render_metrics(servers)


@dataclass
class ControlPlane:
    """What a control port acts on besides the servers, given by `naftiko run`: the reload of
    the files on disk (watch.Reloader.reload_all), and the metrics: each server's `metrics(kind, port)`
    and the control port's `render_metrics`, this process's own, or a fleet's (supervisors/)
    chosen once at start."""

    reload: Callable[[], Awaitable[Any]] | None = None
    metrics: Callable[[str, int], Metrics] = _local_metrics  # (kind, port) → a server's metrics
    render_metrics: Callable[[Sequence[ServerView]], str] = _render_local


def _flag(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _section(spec: Mapping[str, Any], *names: str) -> Mapping[str, Any]:
    for name in names:
        value = spec.get(name)
        spec = value if isinstance(value, Mapping) else {}
    return spec


class Control:
    """The control routes of one control port (the first control exposure on it decides the settings)."""

    def __init__(
        self, entries: Sequence[tuple[Capability, Exposure]], servers: Servers, plane: ControlPlane | None = None
    ):
        self.capability, self.exposure = entries[0]
        self.entries = list(entries)
        self.servers = servers
        self.plane = plane or ControlPlane()
        spec = self.exposure.spec
        management = _section(spec, "management")
        observability = _section(spec, "observability")
        observed = _flag(observability.get("enabled"), True)
        self.scripting = management.get("scripting") if isinstance(management.get("scripting"), Mapping) else None
        self.routes: dict[str, dict[str, Callable[[Request], Answer]]] = {}
        if _flag(management.get("health"), True):
            self._add("/health/live", GET=self.live)
            self._add("/health/ready", GET=self.ready)
        if _flag(management.get("info"), False):
            self._add("/status", GET=self.status)
            self._add("/config", GET=self.config)
        if _flag(management.get("validate"), False):
            self._add("/config/validate", POST=Validation(self.capability.document.base_dir))
        if _flag(management.get("reload"), False):
            self._add("/config/reload", POST=self.reload)
        logs = control_logs.LogSettings(management.get("logs"))
        if logs.level_control:
            self._add("/logs", GET=control_logs.loggers)
            self._add("/logs/{logger}", GET=control_logs.logger, PUT=control_logs.logger)
        if logs.stream:
            self._add("/logs/stream", GET=control_logs.stream(logs))
        if self.scripting is not None:
            self._add("/scripting", GET=self.scripting_settings)
        if observed and _flag(_section(observability, "metrics", "local").get("enabled"), True):
            self._add("/metrics", GET=self.metrics)
        local_traces = _section(observability, "traces", "local")
        if observed and _flag(local_traces.get("enabled"), True):
            size = local_traces.get("buffer-size")
            traces = Traces(
                lambda: trace_buffer_of(self.capability),
                size if isinstance(size, int) and not isinstance(size, bool) else DEFAULT_BUFFER_SIZE,
            )
            self._add("/traces", GET=traces.summaries)
            self._add("/traces/{traceId}", GET=traces.one)
        self.guarded = guard(every([e.auth for _, e in entries]), self.dispatch)  # naftiko/auth/guard.py

    def _add(self, route: str, **methods: Callable[[Request], Answer]) -> None:
        self.routes[route] = methods

    def route_of(self, path: str) -> str:
        """The route for metrics and the log; any other path is one label, not one each."""
        path = path.rstrip("/") or "/"
        if path in self.routes:
            return path
        for prefix, template in _PARAMETERS:
            if path.startswith(prefix) and template in self.routes:
                return template
        return "(unmatched)"

    def handle(self, request: Request) -> Answer:
        route = request.route or self.route_of(request.path)
        return self.dispatch(request, route) if route in OPEN_ROUTES else self.guarded(request, route)

    def dispatch(self, request: Request, route: str) -> Answer:
        methods = self.routes.get(route)
        if methods is None:
            return problem(404, "not-found", "Not found", "no route matches this path")
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            return problem(
                403,
                "origin-not-allowed",
                "Forbidden",
                "the control port takes changes only from its own origin, never from a web page elsewhere",
            )
        handler = methods.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            allowed = ", ".join(sorted({*methods, "HEAD"} if "GET" in methods else methods))
            response = problem(405, "method-not-allowed", "Method not allowed", f"allowed methods: {allowed}")
            response.headers["Allow"] = allowed
            return response
        return handler(request)

    # -- documents ---------------------------------------------------------------------------

    def adapters(self) -> list[dict[str, Any]]:
        out = []
        for server in self.servers():
            for _, exposure in server.entries:
                entry: dict[str, Any] = {"type": exposure.kind}
                if exposure.namespace:
                    entry["namespace"] = exposure.namespace
                entry.update(
                    {
                        "address": server.address,
                        "port": server.port,
                        "state": "started" if server.started else "stopped",
                    }
                )
                out.append(entry)
        return out

    def live(self, request: Request) -> Response:
        return json_response({"status": "UP"})

    def ready(self, request: Request) -> Response:
        adapters = self.adapters()
        degraded = any(a["state"] != "started" for a in adapters if a["type"] != "control")
        return json_response(
            {"status": "DEGRADED" if degraded else "UP", "adapters": adapters}, status=503 if degraded else 200
        )

    def status(self, request: Request) -> Response:
        capabilities: dict[str, Capability] = {}
        for server in self.servers():
            for capability, _ in server.entries:
                capabilities.setdefault(capability.file, capability)
        info = self._info(self.capability)
        body = {
            "capability": {"label": info.get("label"), "specVersion": self._spec_version(self.capability)},
            "capabilities": [
                {"file": c.file, "label": self._info(c).get("label"), "specVersion": self._spec_version(c)}
                for c in capabilities.values()
            ],
            "engine": {"name": "naftiko-python", "version": __version__, "python": sys.version.split()[0]},
            "uptime": _iso_duration(time.monotonic() - STARTED),
            "otel": tracing_status(self.capability),
            "adapters": self.adapters(),
        }
        return json_response(body)

    def scripting_settings(self, request: Request) -> Response:
        """The effective settings (the file's, NAFTIKO_SCRIPTING, the defaults) and the calls so far."""
        runtime = self.capability.scripting
        if runtime is None:
            return json_response({**SCRIPTING_DEFAULTS, **dict(self.scripting or {}), "available": False})
        return json_response({**runtime.settings.as_json(), **runtime.stats()})

    def metrics(self, request: Request) -> Response:
        return Response(text=self.plane.render_metrics(self.servers()), content_type="text/plain; version=0.0.4")

    def config(self, request: Request) -> Response:
        return json_response(effective_config(self.servers()))

    async def reload(self, request: Request) -> Response:
        if self.plane.reload is None:
            return problem(
                503,
                "reload-unavailable",
                "Reload unavailable",
                "this process was not started by `naftiko run` with files to read again",
            )
        outcome = await self.plane.reload()
        if outcome.status == 200:
            return json_response(
                {"status": "reloaded", "detail": outcome.detail, "changes": outcome.changes, "files": outcome.files}
            )
        kind, title = (
            ("invalid-capability", "Invalid capability")
            if outcome.status == 422
            else ("reload-conflict", "Reload conflict")
        )
        return problem(outcome.status, kind, title, outcome.detail, errors=outcome.errors)

    @staticmethod
    def _info(capability: Capability) -> Mapping[str, Any]:
        info = (capability.document.resolved or {}).get("info")
        return info if isinstance(info, Mapping) else {}

    @staticmethod
    def _spec_version(capability: Capability) -> Any:
        return (capability.document.resolved or {}).get("naftiko")


def _same_origin(request: Request) -> bool:
    """No `Origin` (not a browser), or the port's own: a page elsewhere must not reload the
    configuration or change log levels (CSRF)."""
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    return origin is None or host is not None and origin.rstrip("/").lower() == f"{request.scheme}://{host.lower()}"


def _iso_duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = f"{seconds - whole:.3f}"[1:]
    return f"PT{hours}H{minutes}M{secs}{fraction}S"


def render_metrics(servers: Sequence[ServerView]) -> str:
    """The request figures of every server, one Prometheus exposition (label `port`)."""
    with_metrics = [s for s in servers if s.metrics is not None and s.kind != "control"]
    lines = [*capability_gauge(servers), *exposition([(f'port="{s.port}",', s.metrics) for s in with_metrics])]
    return "\n".join(lines) + "\n"


def capability_gauge(servers: Sequence[ServerView]) -> list[str]:
    capabilities = {c.file for s in servers for c, _ in s.entries}
    return [
        "# HELP naftiko_capability_active Capabilities loaded by this process.",
        "# TYPE naftiko_capability_active gauge",
        f"naftiko_capability_active {len(capabilities)}",
    ]

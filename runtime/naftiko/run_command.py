"""`naftiko run`: load capabilities, refuse to start on any problem, serve until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import state
from .config import RunConfig, ServeSettings, UsageError
from .consumes.proxy import ProxyConfigError
from .consumes.tls import UpstreamTlsError
from .engine.capability import Capability
from .engine.compile import CompileOptions, compile_capability
from .observability import close_all, server_tracing
from .server import PlanError, PortPlan, Runtime, plan
from .spec.diagnostics import CapabilityError
from .spec.document import load_document
from .validation import UnreadablePath, discover
from .watch import Reloader

if TYPE_CHECKING:
    from .supervisors.member import Member

log = logging.getLogger("naftiko")
DEFAULT_CAPABILITY = Path(__file__).parent / "defaults" / "track-customers.yaml"


def load_capabilities(paths: Sequence[str], options: CompileOptions) -> dict[Path, Capability]:
    """Every capability under `paths`; files holding only shared consumes (imports) are skipped.

    Raises CapabilityError with every problem of every file, so they are all shown at once.
    """
    problems = []
    capabilities = {}
    for path in discover(paths):
        document = load_document(path)
        if document.valid and "capability" not in (document.data or {}):
            continue
        try:
            capabilities[path] = compile_capability(document, options)
        except CapabilityError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise CapabilityError(problems)
    return capabilities


def run(config: RunConfig, member: Member | None = None) -> int:
    """Serve `config` in this process, or with `--workers N` start the supervisor of N workers
    (supervisors/); a worker runs this too, as `member` of the fleet."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    state.use(state.open_state(config.redis_url))  # before compiling: clients take their buckets from it
    if config.gateway:
        from .gateway.serve import run_gateway

        return run_gateway(config)
    paths = list(config.paths)
    try:
        if not paths:
            paths = [str(DEFAULT_CAPABILITY)]
            log.info("no PATH given: serving the embedded default %s", DEFAULT_CAPABILITY.name)
        loaded = load_capabilities(paths, config.compile)
        capabilities = list(loaded.values())
        if not capabilities:
            raise UsageError("no capability found in the paths given")
        config.check_names(
            (c.namespace for capability in capabilities for c in capability.clients),
            (e.namespace or e.kind for capability in capabilities for e in capability.exposures),
        )
        if config.stdio or _stdio_only(capabilities):
            if config.workers > 1:
                raise UsageError("--workers: the capabilities serve MCP over stdio only, which one process does")
            return _run_loop(_serve_stdio(capabilities))

        def planner(current: Sequence[Capability]) -> list[PortPlan]:
            return plan(current, config.host, config.ports)

        plans = planner(capabilities)
        if not plans:
            raise UsageError(
                "the capabilities expose nothing this runtime serves over HTTP (rest, mcp, skill, control)"
            )
    except (UsageError, UnreadablePath, PlanError, UpstreamTlsError, ProxyConfigError) as exc:
        print(f"naftiko run: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"naftiko run: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except CapabilityError as exc:
        print(exc, file=sys.stderr)
        return 2
    # A folder is watched by default: dropping a file into it is how capabilities are deployed.
    watching = config.watch or any(Path(p).is_dir() for p in paths)

    def reloader(runtime: Runtime) -> Reloader:  # also the control port's POST /config/reload
        return Reloader(paths, config.compile, runtime, planner, loaded)

    if config.workers > 1 and member is None:
        from .supervisors import Supervisor

        return Supervisor(config, plans).run()
    return _run_loop(_serve(plans, config.serve, reloader, watching, member))


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Serve on uvloop (libuv) where it is installed: about 15 % less server CPU per MCP call
    than asyncio's own loop (bench/run_all.py, 2026-11-23); asyncio's loop elsewhere (Windows).
    The spans still batched are exported before the loop ends."""

    async def serve() -> int:
        try:
            return await main
        finally:
            await close_all()

    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve())
    return uvloop.run(serve())


def _stdio_only(capabilities: Sequence[Capability]) -> bool:
    exposures = [e for c in capabilities for e in c.exposures if e.kind in ("rest", "mcp")]
    return bool(exposures) and all(e.kind == "mcp" and e.spec.get("transport") == "stdio" for e in exposures)


def _mcp_route_factory(allowed_origins: Sequence[str] = ()):
    """Builds the /mcp handlers of a port; sessions outlive reloads, so clients keep theirs."""
    from .exposes.mcp import McpServer
    from .exposes.mcp_http import mcp_routes

    sessions: dict[int, Any] = {}

    def build(port_plan: PortPlan):
        auths = {id(e.auth): e.auth for _, e in port_plan.entries}
        if len(auths) > 1:
            raise PlanError(f"MCP exposures sharing port {port_plan.port} declare different authentication")
        server = McpServer(port_plan.entries)
        server.sessions = sessions.setdefault(port_plan.port, server.sessions)
        return mcp_routes(server, next(iter(auths.values())), allowed_origins)

    return build


async def _serve(
    plans: list[PortPlan],
    settings: ServeSettings,
    reloader: Callable[[Runtime], Reloader],
    watch: bool,
    member: Member | None = None,
    runtime_class: type[Runtime] = Runtime,
) -> int:
    try:
        runtime = runtime_class(_mcp_route_factory(settings.allow_origins), settings)
        if member is not None:
            member.join(runtime.plane)
        urls = await runtime.start(plans)
    except (OSError, ValueError, PlanError) as exc:
        print(f"naftiko run: cannot start: {exc}", file=sys.stderr)
        return 2
    for url in urls:
        log.info("serving %s", url)
    watcher = reloader(runtime)
    runtime.plane.reload = watcher.reload_all
    watching = asyncio.get_running_loop().create_task(watcher.watch()) if watch else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if member is not None:
        member.serving(runtime.plane, watcher.reload_all, stop.set)
    await stop.wait()
    log.info("stopping: draining in-flight requests")
    if watching is not None:
        watching.cancel()
    await runtime.stop()
    served = watcher.capabilities.values()
    for capability in served:
        await capability.close()
    await state.current().close()
    return 0


async def _serve_stdio(capabilities: list[Capability]) -> int:
    from .exposes.mcp import McpServer
    from .exposes.mcp_stdio import run_stdio

    entries = [(c, e) for c in capabilities for e in c.exposures if e.kind == "mcp"]
    if not entries:
        print("naftiko run: --stdio needs an mcp exposure", file=sys.stderr)
        return 2
    server = McpServer(entries)
    tracing = server_tracing(entries)  # a SERVER span per tools/call when a capability traces
    try:
        await run_stdio(server, tracing.stdio_layer(server.handle) if tracing is not None else server.handle)
    finally:
        for capability in capabilities:
            await capability.close()
        await state.current().close()
    return 0

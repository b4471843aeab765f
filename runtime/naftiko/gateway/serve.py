"""`naftiko run --gateway`: load every file on its own, refuse to start only on a conflict
between files (exit 2 naming both), serve the rest while the broken ones are reported."""

from __future__ import annotations

import logging
import sys
import time

from ..config import RunConfig, UsageError
from ..server import PlanError, Runtime
from ..validation import UnreadablePath
from .catalogue import assemble, namespaces
from .load import load_files, report
from .reload import GatewayReloader
from .runtime import GatewayRuntime

log = logging.getLogger("naftiko")


def run_gateway(config: RunConfig) -> int:
    from ..run_command import _run_loop, _serve

    started = time.perf_counter()
    try:
        if not config.paths:
            raise UsageError("--gateway needs the capability files or folders to serve")
        if config.stdio:
            raise UsageError("--gateway serves over HTTP and cannot go with --stdio")
        if config.workers > 1:
            raise UsageError("--gateway serves in one process: it cannot go with --workers yet")
        entries = load_files(config.paths, config)
        for entry in entries:
            report(entry)
        assembly = assemble(entries)
        if assembly.conflicts:
            for _, why in assembly.conflicts:
                print(f"naftiko run: {why}", file=sys.stderr)
            return 2
        config.check_names(*namespaces(entries))
        if not assembly.plans:
            raise UsageError("no file in the paths given can be served over HTTP (rest, mcp, skill, control)")
    except (UsageError, UnreadablePath, PlanError) as exc:
        print(f"naftiko run: {exc}", file=sys.stderr)
        return 2
    served = [e.path for e in entries if e.served]
    broken = sum(1 for e in entries if e.problems)
    log.info(
        "gateway: %d files loaded in %.1f s, %d served, %d not served (reported above)",
        len(entries),
        time.perf_counter() - started,
        len(served),
        broken,
    )

    def reloader(runtime: Runtime) -> GatewayReloader:
        return GatewayReloader(config, runtime, {e.path: e for e in entries}, served)

    return _run_loop(_serve(assembly.plans, config.serve, reloader, True, runtime_class=GatewayRuntime))

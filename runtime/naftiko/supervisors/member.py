"""A worker's side of the fleet: its link to the supervisor, and its start (`worker_main`).

The link is one end of a socket pair. The worker writes two messages: `ready` (every port
served) and `reloaded` (a `POST /config/reload` it answered was applied: the supervisor sends
SIGHUP to the other workers, which read the files again). The supervisor never writes, so the
end becoming readable means it is gone (even killed with SIGKILL): the worker drains and
stops instead of serving on as an orphan.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from ..config import RunConfig
from ..exposes.control import ControlPlane

log = logging.getLogger("naftiko")
READY, RELOADED = "ready", "reloaded"
METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"  # read when prometheus_client is imported: by workers only
Reload = Callable[[], Awaitable[Any]]


class Member:
    def __init__(self, connection: Connection):
        self.connection = connection
        self._reloads: set[asyncio.Task] = set()

    def join(self, plane: ControlPlane) -> None:
        """Count this worker's requests in the fleet's figures (before any server exists)."""
        from .fleet_metrics import FleetFigures

        figures = FleetFigures()
        plane.metrics, plane.render_metrics = figures.metrics, figures.render

    def serving(self, plane: ControlPlane, reload_all: Reload, stop: Callable[[], None]) -> None:
        """Every port is served: SIGHUP reloads, a control-port reload reaches the others, the
        supervisor's end closing stops this worker; then tell the supervisor."""
        loop = asyncio.get_running_loop()
        plane.reload = self._relayed(reload_all)
        loop.add_signal_handler(signal.SIGHUP, self._reload, reload_all)
        loop.add_reader(self.connection.fileno(), self._supervisor_gone, loop, stop)
        self.connection.send(READY)

    def _relayed(self, reload_all: Reload) -> Reload:
        async def reload() -> Any:
            outcome = await reload_all()
            if outcome.status == 200:
                try:
                    self.connection.send(RELOADED)
                except OSError:  # the supervisor is gone; this worker is stopping
                    log.warning("the other workers were not told to reload: the supervisor is gone")
            return outcome

        return reload

    def _reload(self, reload_all: Reload) -> None:
        task = asyncio.get_running_loop().create_task(reload_all())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def _supervisor_gone(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
        loop.remove_reader(self.connection.fileno())
        log.warning("the supervisor is gone: stopping this worker")
        stop()


def worker_main(config: RunConfig, connection: Connection) -> None:
    """A spawned worker: serve `config` (ports shared with the other workers) until told to stop."""
    from ..run_command import run

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=f"worker {os.getpid()}: %(message)s")
    shared = replace(config, serve=replace(config.serve, reuse_port=True))
    sys.exit(run(shared, Member(connection)))

"""The supervisor: N spawned workers, watched, replaced when they die, stopped together.

One loop waits on everything at once (`multiprocessing.connection.wait`): each worker's
process sentinel (it died), each worker's link (`ready`, `reloaded`), and a socket the signal
handlers write to (`signal.set_wakeup_fd`): handlers only queue the signal, the loop acts on it
(uvicorn's way). SIGTERM/SIGINT: every worker gets SIGTERM, drains and exits; the supervisor
waits for them (SIGKILL after DRAIN_SECONDS) and exits 0. SIGHUP: every worker reloads.

A worker that dies is logged and replaced after a back-off: none after it served a while
(STEADY_SECONDS), then 0.5 s doubling to 30 s while replacements keep dying young, so a
crash loop (a file broken on disk, a full disk) costs little. A worker that dies before the
fleet first became ready stops the start: exit 2, its own message above.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from ..config import RunConfig
from ..server import PlanError, PortPlan
from .member import METRICS_DIRECTORY, READY, RELOADED, worker_main
from .ports import hold_ports

log = logging.getLogger("naftiko")
START_SECONDS = 120.0  # for every worker to load its files and serve
DRAIN_SECONDS = 35.0  # a worker's drain takes at most 30 s (PortServer.close)
STEADY_SECONDS = 10.0
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass
class _Worker:
    slot: int
    process: BaseProcess
    link: Connection
    started: float
    ready: bool = False
    reload_due: bool = False  # a reload came while it was starting: SIGHUP once it serves


@dataclass
class _Slot:
    failures: int = 0  # replacements in a row that died young
    due: float | None = None  # when the replacement starts


class Supervisor:
    """Runs `config.workers` workers of `config`; `plans` are the ports they will serve."""

    def __init__(self, config: RunConfig, plans: Sequence[PortPlan]):
        self.config, self.plans = config, plans
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked mid-flight
        self.workers: dict[int, _Worker] = {}
        self.slots = [_Slot() for _ in range(config.workers)]
        self.fleet_ready = False

    def run(self) -> int:
        with ExitStack() as held:
            try:
                hold_ports(self.plans, held)
            except PlanError as exc:
                print(f"naftiko run: {exc}", file=sys.stderr)
                return 2
            os.environ[METRICS_DIRECTORY] = held.enter_context(tempfile.TemporaryDirectory(prefix="naftiko-metrics-"))
            wakeup = held.enter_context(_SignalQueue())
            for slot in range(len(self.slots)):
                self._start(slot)
            return self._supervise(wakeup)

    def _supervise(self, signals: _SignalQueue) -> int:
        start_by = time.monotonic() + START_SECONDS
        while True:
            now = time.monotonic()
            if not self.fleet_ready and now > start_by:
                log.error("the workers did not all start within %.0f s: stopping", START_SECONDS)
                return self._stop(2)
            due = [s.due for s in self.slots if s.due is not None]
            timeout = max(0.0, min([*due, now + 1.0]) - now)
            sentinels = {w.process.sentinel: w for w in self.workers.values()}
            links = {w.link: w for w in self.workers.values() if not w.link.closed}
            ready = wait([signals.reader, *sentinels, *links], timeout)
            for signum in signals.take():  # first: a Ctrl-C also stops the workers, not to be replaced
                if signum == signal.SIGHUP:
                    self._relay_reload(None)
                else:
                    log.info("stopping: every worker drains its in-flight requests")
                    return self._stop(0)
            for link in (r for r in ready if r in links):
                self._message(links[link])
            for worker in [w for w in sentinels.values() if w.process.exitcode is not None]:
                if not self.fleet_ready:
                    log.error("worker %d (pid %d) exited while starting: stopping", worker.slot, worker.process.pid)
                    return self._stop(2)
                self._died(worker)
            for slot, state in enumerate(self.slots):
                if state.due is not None and state.due <= time.monotonic():
                    self._start(slot)

    def _start(self, slot: int) -> None:
        self.slots[slot].due = None
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=worker_main, args=(self.config, theirs), name=f"naftiko-worker-{slot}", daemon=False
        )
        try:
            process.start()
        except OSError as exc:  # no memory or process slot left: try again after the back-off
            ours.close()
            delay = self._back_off(slot, young=True)
            log.error("worker %d could not be started (%s); trying again in %.1f s", slot, exc, delay)
            return
        finally:
            theirs.close()
        self.workers[slot] = _Worker(slot, process, ours, time.monotonic())
        if self.fleet_ready:
            log.info("worker %d replaced: pid %d", slot, process.pid)

    def _message(self, worker: _Worker) -> None:
        try:
            message = worker.link.recv()
        except (EOFError, OSError):
            worker.link.close()  # it is dying: its sentinel will say so
            return
        if message == READY:
            worker.ready = True
            log.info("worker %d (pid %d) serving", worker.slot, worker.process.pid)
            if worker.reload_due:  # it may have read the files before they changed
                _hang_up(worker)
            if not self.fleet_ready and all(w.ready for w in self.workers.values()):
                self.fleet_ready = True
                pids = ", ".join(str(w.process.pid) for w in self.workers.values())
                log.info("%d workers serving (pids %s)", len(self.workers), pids)
        elif message == RELOADED:
            self._relay_reload(worker)

    def _relay_reload(self, origin: _Worker | None) -> None:
        """Every worker but the one that already reloaded reads the files again (SIGHUP); one
        still starting gets it once it serves (before, SIGHUP's default action would end it)."""
        for worker in self.workers.values():
            if worker is origin or worker.process.exitcode is not None:
                continue
            if worker.ready:
                _hang_up(worker)
            else:
                worker.reload_due = True

    def _died(self, worker: _Worker) -> None:
        worker.link.close()
        del self.workers[worker.slot]
        delay = self._back_off(worker.slot, young=time.monotonic() - worker.started < STEADY_SECONDS)
        log.warning(
            "worker %d (pid %d) %s; a replacement starts in %.1f s",
            worker.slot,
            worker.process.pid,
            _exit_reason(worker.process.exitcode),
            delay,
        )

    def _back_off(self, slot: int, young: bool) -> float:
        """Schedule the slot's next start; returns the delay (longer while starts keep failing young)."""
        state = self.slots[slot]
        state.failures = state.failures + 1 if young else 0
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (state.failures - 1)) if state.failures else 0.0
        state.due = time.monotonic() + delay
        return delay

    def _stop(self, code: int) -> int:
        """SIGTERM to every worker, then wait for them (SIGKILL to any still there after DRAIN_SECONDS)."""
        for worker in self.workers.values():
            if worker.process.exitcode is None:
                worker.process.terminate()
        deadline = time.monotonic() + DRAIN_SECONDS
        for worker in self.workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.error(
                    "worker %d (pid %d) still running after %.0f s: killed",
                    worker.slot,
                    worker.process.pid,
                    DRAIN_SECONDS,
                )
                worker.process.kill()
                worker.process.join(5)
            worker.link.close()
        self.workers.clear()
        _stop_resource_tracker()
        return code


def _stop_resource_tracker() -> None:
    """Spawning starts multiprocessing's resource tracker, a child of ours that would exit by
    itself a moment after we do: stop and reap it, so nothing outlives the supervisor. Its
    `_stop` is private (there since Python 3.8); without it the tracker still ends alone."""
    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        stop()


def _hang_up(worker: _Worker) -> None:
    with suppress(ProcessLookupError):  # it has just died: its replacement reads the files anyway
        os.kill(worker.process.pid, signal.SIGHUP)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class _SignalQueue:
    """SIGTERM, SIGINT and SIGHUP as bytes on a socket the loop waits on (`signal.set_wakeup_fd`)."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict[int, object] = {}
        self._previous_fd = -1

    def __enter__(self) -> _SignalQueue:
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, _queued)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_fd)
        self.reader.close()
        self._writer.close()

    def take(self) -> list[int]:
        try:
            return list(self.reader.recv(64))
        except BlockingIOError:
            return []


def _queued(signum: int, frame: object) -> None:
    """The byte set_wakeup_fd writes is the whole of the handling."""

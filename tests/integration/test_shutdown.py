"""Graceful stop: `naftiko run` as a process on the seed, a slow fake upstream (its own thread and
event loop, 0.5 s per answer), 32 REST calls in flight, then SIGTERM. Every in-flight call must
complete with 200, new connections must be refused while they drain, and the exit code is 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from aiohttp import web

from support import SEED, free_port

DELAY = 0.5
CONCURRENCY = 32


class SlowUpstream:
    """An aiohttp app answering `{"ok": true}` after DELAY seconds, served from its own thread."""

    def __init__(self) -> None:
        self.seen = 0
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen += 1
        await asyncio.sleep(DELAY)
        return web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def slow_upstream() -> Iterator[SlowUpstream]:
    upstream = SlowUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True


def put(url: str) -> tuple[int, bytes, float]:
    request = urllib.request.Request(
        url, data=b'{"email":"a@b.c"}', method="PUT", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read(), time.monotonic()


@dataclass
class Stopped:
    answers: list[tuple[int, bytes, float]]
    rest_refused_at: float
    mcp_refused_during_drain: bool
    returncode: int
    stderr: str


def run_and_stop(upstream: SlowUpstream) -> Stopped:
    """Serve the seed, put CONCURRENCY calls in flight at the upstream, SIGTERM, watch the ports."""
    rest_port, mcp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMER_IO")}
    env.update(CUSTOMER_IO_USER="site-id-123", CUSTOMER_IO_PASS="api-key-SECRET-456")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "naftiko.cli", "run", str(SEED),
            "--upstream", f"track-customers=http://127.0.0.1:{upstream.port}/api/v1",
            "--port", f"track-customers-rest={rest_port}", "--port", f"track-customers-mcp={mcp_port}",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/health", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "naftiko run did not become ready"
                time.sleep(0.05)

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            calls = [pool.submit(put, f"http://127.0.0.1:{rest_port}/v1/customers/c{i}") for i in range(CONCURRENCY)]
            deadline = time.monotonic() + 10
            while upstream.seen < CONCURRENCY:  # all of them are at the upstream: truly in flight
                assert time.monotonic() < deadline, f"only {upstream.seen} calls reached the upstream"
                time.sleep(0.005)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            deadline = signalled + DELAY * 0.8
            while not refused(rest_port):  # the listener closes at once, while the calls drain
                assert time.monotonic() < deadline, "new REST connections were still accepted after SIGTERM"
                time.sleep(0.01)
            rest_refused_at = time.monotonic()
            mcp_refused = refused(mcp_port)
            answers = [call.result(timeout=30) for call in calls]
        _, err = process.communicate(timeout=30)
        return Stopped(answers, rest_refused_at, mcp_refused, process.returncode, err)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_sigterm_drains_in_flight_calls_refuses_new_ones_and_exits_0(slow_upstream: SlowUpstream) -> None:
    stopped = run_and_stop(slow_upstream)
    assert [status for status, _, _ in stopped.answers] == [200] * CONCURRENCY
    assert all(body.replace(b" ", b"") == b'{"ok":true}' for _, body, _ in stopped.answers)
    assert stopped.rest_refused_at < min(done for _, _, done in stopped.answers)  # refused while still draining
    assert stopped.returncode == 0, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert slow_upstream.seen == CONCURRENCY  # nothing resent, nothing lost


def test_sigterm_stops_listening_on_every_port_at_once(slow_upstream: SlowUpstream) -> None:
    stopped = run_and_stop(slow_upstream)
    assert stopped.returncode == 0
    assert stopped.mcp_refused_during_drain

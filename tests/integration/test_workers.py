"""`naftiko run --workers 2` (issue #18 item 1): real supervisor and worker processes on free
loopback ports, a real upstream (aiohttp in a thread), real HTTP clients on fresh connections
(so the kernel's SO_REUSEPORT spreading reaches both workers).

Which worker answered is read from the access log's `pid`; the workers' pids from the
supervisor's log (`2 workers serving (pids A, B)`). Requests are repeated until both pids
are seen, bounded by a deadline: 40 fresh connections all landing on one of two workers has a
probability of 2^-39.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from run_process import Upstream, run_to_exit
from support import eventually, free_port

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Fleet probe
capability:
  consumes:
    - type: http
      namespace: items-api
      baseUri: {upstream}
      resources:
        - name: items
          path: /items/{{{{id}}}}
          operations:
            - name: get-item
              method: GET
  exposes:
    - type: rest
      namespace: items-rest
      port: {rest}
      resources:
        - path: /{route}/{{{{id}}}}
          operations:
            - method: GET
              name: get-item
              call: items-api.get-item
    - type: control
      port: {control}
      management:
        health: true
        reload: true
"""


class Fleet:
    """`naftiko run --workers N FILE` (no --workers when N is None), stderr in a file; the
    serving pids once all serve."""

    def __init__(self, folder: Path, upstream: Upstream, *flags: str, workers: int | None = 2):
        self.rest, self.control = free_port(), free_port()
        self.file = folder / "items.yaml"
        self.upstream = upstream
        self.write("items")
        self._stderr = tempfile.NamedTemporaryFile(prefix="naftiko-fleet-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "naftiko.cli", "run", *(["--workers", str(workers)] if workers else []), *flags,
             str(self.file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
        )  # fmt: skip
        if workers is None:
            self.wait_stderr(rf"serving http://127.0.0.1:{self.rest} ", timeout=60)
            self.pids = {self.process.pid}
            return
        found = self.wait_stderr(rf"{workers} workers serving \(pids ([\d, ]+)\)", timeout=60)
        self.pids = {int(pid) for pid in found.group(1).split(", ")}

    def write(self, route: str) -> None:
        text = CAPABILITY.format(upstream=self.upstream.base, rest=self.rest, control=self.control, route=route)
        self.file.write_text(text)

    def stderr(self) -> str:
        return Path(self._stderr.name).read_text(encoding="utf-8", errors="replace")

    def wait_stderr(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.stderr())
            if found:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} (exit {self.process.returncode}) in:\n{self.stderr()[-3000:]}")
            time.sleep(0.05)

    def access(self, route: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stderr().splitlines() if line.startswith('{"method"')]
        return [line for line in lines if line["route"] == route]

    def children(self) -> set[int]:
        """Every process the supervisor started (its workers, multiprocessing's resource tracker)."""
        found = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return {int(pid) for pid in found}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@contextmanager
def fleet(tmp_path: Path, *flags: str, workers: int | None = 2, delay: float = 0.0) -> Iterator[Fleet]:
    with Upstream(delay=delay) as upstream:
        running = Fleet(tmp_path, upstream, *flags, workers=workers)
        try:
            yield running
        finally:
            running.stop()
            Path(running._stderr.name).unlink(missing_ok=True)


def get(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    """One request on a fresh connection (urllib opens one per request)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answered_by(running: Fleet, route: str, path: str, pids: set[int], status: int = 200) -> bool:
    """Send requests to `path` until every pid of `pids` has answered `route` with `status`."""

    def seen() -> set[int]:
        return {line["pid"] for line in running.access(route) if line["status"] == status}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        get(running.rest, path)
        if eventually(lambda: pids <= seen(), timeout=0.1):  # the access log is written every 50 ms
            return True
    return False


def requests_total(text: str, route: str) -> float:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return sum(s.value for s in families["naftiko_requests"].samples if s.labels.get("route") == route)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_both_workers_answer_and_the_control_port_counts_the_whole_fleet(tmp_path: Path) -> None:
    with fleet(tmp_path) as running:
        assert len(running.pids) == 2 and running.process.pid not in running.pids
        assert answered_by(running, "/items/{id}", "/items/1", running.pids)
        sent = len(running.upstream.requests)  # every answered GET was one upstream call
        answered = [line for line in running.access("/items/{id}") if line["status"] == 200]
        assert len(answered) == sent and {line["pid"] for line in answered} == running.pids
        # Whichever worker answers /metrics reports what both answered.
        for _ in range(60):
            code, body = get(running.control, "/metrics")
            assert code == 200
            assert requests_total(body.decode(), "/items/{id}") == sent
            if eventually(lambda: {line["pid"] for line in running.access("/metrics")} == running.pids, timeout=0.1):
                break
        assert {line["pid"] for line in running.access("/metrics")} == running.pids
        # The REST port's own /metrics counts that port in every worker too.
        for _ in range(4):
            code, body = get(running.rest, "/metrics")
            assert code == 200 and requests_total(body.decode(), "/items/{id}") == sent


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_drains_and_stops_every_worker_and_exits_0(tmp_path: Path, signum: signal.Signals) -> None:
    with fleet(tmp_path, delay=1.5) as running:
        children = running.children()
        assert running.pids <= children
        answers: list[int] = []
        in_flight = threading.Thread(target=lambda: answers.append(get(running.rest, "/items/1")[0]))
        in_flight.start()
        assert eventually(lambda: running.upstream.in_flight == 1, timeout=15)
        running.process.send_signal(signum)
        in_flight.join(30)
        assert answers == [200]  # the request in flight when the signal came was answered
        assert running.process.wait(45) == 0
        assert all(gone(pid) for pid in children), [pid for pid in children if not gone(pid)]
        assert running.stderr().count("stopping: draining in-flight requests") == 2


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    with fleet(tmp_path) as running:
        running.process.kill()
        running.process.wait(10)
        assert eventually(lambda: all(gone(pid) for pid in running.pids), timeout=40)
        assert running.stderr().count("the supervisor is gone: stopping this worker") == 2


def test_a_killed_worker_is_replaced_and_logged(tmp_path: Path) -> None:
    with fleet(tmp_path) as running:
        victim = min(running.pids)
        os.kill(victim, signal.SIGKILL)
        died = running.wait_stderr(rf"worker (\d) \(pid {victim}\) was killed by SIGKILL; a replacement starts in")
        replaced = running.wait_stderr(rf"worker {died.group(1)} replaced: pid (\d+)")
        newcomer = int(replaced.group(1))
        running.wait_stderr(rf"worker {died.group(1)} \(pid {newcomer}\) serving", timeout=60)
        survivors = (running.pids - {victim}) | {newcomer}
        assert survivors <= running.children() and gone(victim)
        assert answered_by(running, "/items/{id}", "/items/2", survivors)
        assert running.stop() == 0


def test_replacements_that_keep_failing_back_off_until_the_file_is_fixed(tmp_path: Path) -> None:
    with fleet(tmp_path) as running:
        running.file.write_text("naftiko: 1.0.0-alpha2\ncapability: [broken\n")
        victim = min(running.pids)
        os.kill(victim, signal.SIGKILL)
        pattern = r"worker (\d) \(pid \d+\) exited with code 2; a replacement starts in ([\d.]+) s"
        eventually(lambda: len(re.findall(pattern, running.stderr())) >= 3, timeout=60)
        failures = re.findall(pattern, running.stderr())
        delays = [float(delay) for _, delay in failures]
        assert len(delays) >= 3 and delays[:3] == sorted(delays[:3]) and delays[2] >= 2 * delays[0] > 0, failures
        assert answered_by(running, "/items/{id}", "/items/1", running.pids - {victim})  # the other serves on
        serving = rf"worker {failures[0][0]} \(pid \d+\) serving"
        started = len(re.findall(serving, running.stderr()))  # the slot's first worker, before it was killed
        running.write("items")
        assert eventually(lambda: len(re.findall(serving, running.stderr())) > started, timeout=60)
        assert running.stop() == 0


def test_a_reload_on_the_control_port_reaches_every_worker(tmp_path: Path) -> None:
    with fleet(tmp_path) as running:
        running.write("things")
        code, body = get(running.control, "/config/reload", method="POST")
        assert code == 200, body
        assert json.loads(body)["status"] == "reloaded"
        # The worker that answered had reloaded; the other reloads on the supervisor's SIGHUP.
        assert answered_by(running, "/things/{id}", "/things/1", running.pids)
        assert answered_by(running, "(unmatched)", "/items/1", running.pids, status=404)
        # SIGHUP to the process started reloads every worker.
        running.write("stuff")
        running.process.send_signal(signal.SIGHUP)
        assert answered_by(running, "/stuff/{id}", "/stuff/1", running.pids)


def test_watch_reaches_every_worker(tmp_path: Path) -> None:
    with fleet(tmp_path, "--watch") as running:
        assert answered_by(running, "/items/{id}", "/items/1", running.pids)
        running.write("things")
        assert answered_by(running, "/things/{id}", "/things/1", running.pids)


def test_without_workers_the_process_started_serves_alone(tmp_path: Path) -> None:
    """No --workers: no supervisor, no child; the access log's pid is the process's own."""
    with fleet(tmp_path, workers=None) as running:
        assert answered_by(running, "/items/{id}", "/items/1", {running.process.pid})
        assert running.children() == set()
        assert "workers serving" not in running.stderr()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers needs a whole number between 1 and 64, got '0'"),
        (["--workers", "two"], "--workers needs a whole number between 1 and 64, got 'two'"),
        (["--workers", "2", "--stdio"], "--workers cannot go with --stdio"),
    ],
)
def test_bad_workers_flags_exit_2_naming_the_flag(flags: list[str], message: str) -> None:
    code, stderr = run_to_exit(*flags)
    assert code == 2 and message in stderr and "Traceback" not in stderr


def test_workers_are_refused_for_capabilities_served_over_stdio_only(tmp_path: Path) -> None:
    stdio_only = (
        CAPABILITY.split("  exposes:")[0]
        + """  exposes:
    - type: mcp
      namespace: items-mcp
      transport: stdio
      tools:
        - name: get-item
          description: Get one item
          call: items-api.get-item
"""
    )
    (tmp_path / "stdio.yaml").write_text(stdio_only.format(upstream="http://127.0.0.1:9/api"))
    code, stderr = run_to_exit("--workers", "2", str(tmp_path / "stdio.yaml"))
    assert code == 2 and "--workers: the capabilities serve MCP over stdio only" in stderr, stderr


def test_a_port_taken_by_another_program_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "items.yaml").write_text(
            CAPABILITY.format(upstream="http://127.0.0.1:9/api", rest=port, control=free_port(), route="items")
        )
        code, stderr = run_to_exit("--workers", "2", str(tmp_path / "items.yaml"))
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in stderr and "--port items-rest=PORT" in stderr
    assert "worker" not in stderr and "Traceback" not in stderr


def test_an_address_this_host_does_not_have_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    (tmp_path / "items.yaml").write_text(
        CAPABILITY.format(upstream="http://127.0.0.1:9/api", rest=free_port(), control=free_port(), route="items")
    )
    code, stderr = run_to_exit("--workers", "2", "--host", "192.0.2.1", str(tmp_path / "items.yaml"))  # TEST-NET-1
    assert code == 2 and "naftiko run: cannot bind 192.0.2.1 port" in stderr, stderr
    assert "worker" not in stderr and "Traceback" not in stderr

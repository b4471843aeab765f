"""Shared pieces of the benchmarks: processes, CPU/RSS readings, and a light aiohttp load generator.

Processes: started in their own process group with stdout/stderr to a log file, optionally pinned
to a CPU, and always stopped (SIGTERM, then SIGKILL of the group) when the `Processes` context
exits, failure or not. CPU time is utime+stime from /proc/PID/stat, summed over the process and
its descendants (nginx's master and worker), so it is the server's own cost, not the client's.
Load: raw aiohttp posts, bounded by a call count and a time cap; MCP sessions do `initialize` once,
keep the Mcp-Session-Id, send `notifications/initialized`, then `tools/call`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
PROTOCOL_VERSION = "2025-06-18"


# ---------------------------------------------------------------- processes


def cost_parser(description: str) -> argparse.ArgumentParser:
    """The options of a same-run on/off cost bench (tracing_cost.py, oauth_cost.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=int, default=3000, help="calls per batch (default 3000)")
    parser.add_argument("--concurrency", type=int, default=16, help="sessions of the concurrent batches (default 16)")
    parser.add_argument(
        "--repeats", type=int, default=9, help="pairs of batches (off, on) of each mode; medians are reported"
    )
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers to the last CPU")
    return parser


def pin_servers(no_pin: bool) -> set[int] | None:
    """The CPUs for the servers measured (the last one), this process (the load) kept off it;
    None when there is one CPU or `--no-pin`."""
    ncpu = os.cpu_count() or 1
    if ncpu < 2 or no_pin:
        return None
    os.sched_setaffinity(0, set(range(ncpu - 1)))
    return {ncpu - 1}


@dataclass
class OnOff:
    """Server CPU per call of the same load on an `off` and an `on` server, batch after batch."""

    per_call: dict[tuple[str, str], list[float]]  # (server, mode) → ms per call of each batch
    ratios: dict[str, list[float]]  # mode → on/off of each pair of neighbouring batches

    def line(self, mode: str, label: str, on_name: str = "on") -> str:
        """One report line: the median per call of each server, and the cost as the median of
        the pairs' ratios (neighbouring batches share the machine's mood) with the middle half
        of them, so a reader sees how far one run may be from the next."""
        off, on = statistics.median(self.per_call[("off", mode)]), statistics.median(self.per_call[("on", mode)])
        return (
            f"  {label:<18} off {off:.3f} ms  {on_name} {on:.3f} ms  {(on - off) * 1000:+.1f} µs"
            f"  {cost_of(self.ratios[mode], 'pairs')}"
        )


def cost_of(ratios: Sequence[float], what: str) -> str:
    """`cost +X % (middle half of N <what> +L % … +H %)` for on/off ratios."""
    ordered = sorted(ratios)
    low, high = ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]
    return f"cost {statistics.median(ordered) - 1:+.1%} (middle half of {len(ordered)} {what} {low - 1:+.1%} … {high - 1:+.1%})"


def alternate_on_off(
    run: Callable[[str, int], tuple[LoadResult, dict[str, float]]], concurrency: int, repeats: int
) -> OnOff:
    """`repeats` × (a sequential then a `concurrency` batch) on each of the `off` and `on` servers:
    `run(server, concurrency)` drives one batch and returns its result and CPU readings. The two
    batches of a pair run back to back, in turns off-first and on-first, so neither server is
    always the one measured after the other's work; the machine is let quiet before each."""
    per_call: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for repeat in range(repeats):
        for mode, sessions in (("seq", 1), ("conc", concurrency)):
            pair = {}
            for name in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
                wait_for_quiet()
                result, readings = run(name, sessions)
                if result.errors:
                    raise SystemExit(f"{name} {mode}: {result.errors} errors, first: {result.first_error}")
                pair[name] = readings["server"] / result.calls * 1000
                per_call.setdefault((name, mode), []).append(pair[name])
            ratios.setdefault(mode, []).append(pair["on"] / pair["off"])
    return OnOff(per_call, ratios)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the process and its descendants: the scheduler's run time of each live
    thread (/proc/PID/task/TID/schedstat, in ns: utime+stime count whole 10 ms ticks, too coarse
    for a batch of a few hundred ms), plus the cutime+cstime (reaped children) of each process,
    so a child that exits mid-window is not lost. A thread that ends mid-window is."""
    ticks, nanoseconds = 0, 0
    for one in process_tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = os.listdir(f"/proc/{one}/task")
        except OSError:
            continue
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (stat fields 16-17)
        for task in tasks:
            try:
                nanoseconds += int(Path(f"/proc/{one}/task/{task}/schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return ticks / CLK_TCK + nanoseconds / 1e9


def rss_mb(pid: int) -> float:
    total = 0
    for one in process_tree(pid):
        try:
            total += int(Path(f"/proc/{one}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total / (1024 * 1024)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def foreign_cpu_seconds() -> float:
    """CPU seconds (utime+stime+cutime+cstime) of every user-space process that is not this one or
    one of its descendants: other people's work on a shared machine. Kernel threads are left out
    (softirq work for our own loopback traffic lands there)."""
    ours = set(process_tree(os.getpid()))
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in ours or pid == 2:
            continue
        fields = _stat(pid)
        if fields is None or fields[1] == "2":  # ppid 2: a kernel thread
            continue
        total += sum(int(f) for f in fields[11:15])
    return total / CLK_TCK


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all CPUs, /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def wait_for_quiet(threshold: float = 0.25, max_wait: float = 20.0, window: float = 0.5) -> float:
    """Wait (at most `max_wait` s) until other processes use less than `threshold` cores over
    `window` s. Returns the last level seen (cores). Other people's work on a shared machine would
    otherwise slip into the figures."""
    deadline = time.perf_counter() + max_wait
    while True:
        b0, t0 = foreign_cpu_seconds(), time.perf_counter()
        time.sleep(window)
        busy = (foreign_cpu_seconds() - b0) / (time.perf_counter() - t0)
        if busy < threshold or time.perf_counter() > deadline:
            return busy


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Every process a benchmark starts; all stopped on exit, whatever happened."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: list[Proc] = []

    def __enter__(self) -> Processes:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cpus: set[int] | None = None,
        cwd: str | None = None,
    ) -> Proc:
        log = self.logdir / f"{name}.log"
        handle = open(log, "ab")  # noqa: SIM115 - handed to the child, closed here after the fork

        def pin() -> None:
            os.setsid()
            if cpus:
                os.sched_setaffinity(0, cpus)

        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            preexec_fn=pin,  # noqa: PLW1509 - setsid and CPU affinity; the harness starts no threads
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 10.0) -> None:
        if proc.alive():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # leftovers of the group (workers), then the leader if it ignored SIGTERM
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    proc: Proc | None = None,
    interval: float = 0.005,
) -> float:
    """Seconds until `check()` holds; raises if the process dies or time runs out."""
    started = time.perf_counter()
    while True:
        if check():
            return time.perf_counter() - started
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(
                f"{proc.name if proc else 'process'} not ready after {timeout:.0f} s:\n{proc.tail() if proc else ''}"
            )
        time.sleep(interval)


def http_answers(
    url: str,
    method: str = "GET",
    ok: Callable[[int], bool] = lambda status: status == 200,
    headers: Mapping[str, str] | None = None,
) -> Callable[[], bool]:
    """A check for wait_until: True once `url` answers an accepted status (raw socket, no client overhead)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"{method} {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode()

    def check() -> bool:
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=2) as sock:
                sock.sendall(request)
                head = sock.recv(64)
            return head.startswith(b"HTTP/1.") and ok(int(head.split()[1]))
        except (OSError, ValueError, IndexError):
            return False

    return check


# ---------------------------------------------------------------- load


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def parse_jsonrpc(content_type: str, body: bytes) -> Any:
    """The JSON-RPC message of an answer given as JSON or as SSE events (the last `data:` event)."""
    if content_type.startswith("text/event-stream"):
        data = None
        for line in body.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].strip()
        return json.loads(data) if data else None
    return json.loads(body) if body else None


def jsonrpc_payload_bytes(content_type: str, body: bytes) -> int:
    """Size of the JSON-RPC message itself (the SSE framing stripped)."""
    if content_type.startswith("text/event-stream"):
        return sum(len(line[5:].strip()) for line in body.split(b"\n") if line.startswith(b"data:"))
    return len(body)


class McpError(Exception):
    pass


@dataclass
class McpSession:
    """One MCP streamable-HTTP session over a shared aiohttp ClientSession."""

    http: aiohttp.ClientSession
    url: str
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    session_id: str | None = None
    next_id: int = 1

    def headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **self.extra_headers,
        }
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
        return headers

    async def post(self, message: Mapping[str, Any]) -> tuple[Any, str, bytes, Mapping[str, str]]:
        async with self.http.post(self.url, data=json.dumps(message).encode(), headers=self.headers()) as response:
            body = await response.read()
            if response.status >= 400:
                raise McpError(f"HTTP {response.status}: {body[:300]!r}")
            content_type = response.headers.get("Content-Type", "")
            return (
                parse_jsonrpc(content_type, body) if body else None,
                content_type,
                body,
                response.headers,
            )

    async def initialize(self) -> dict[str, Any]:
        message = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "naftiko-bench", "version": "1"},
            },
        }
        reply, _, _, headers = await self.post(message)
        if not isinstance(reply, dict) or "result" not in reply:
            raise McpError(f"initialize failed: {reply!r}")
        self.session_id = headers.get("Mcp-Session-Id")
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply["result"]

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> tuple[Any, int]:
        self.next_id += 1
        message: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": self.next_id,
            "method": method,
        }
        if params is not None:
            message["params"] = params
        reply, content_type, body, _ = await self.post(message)
        if not isinstance(reply, dict) or "result" not in reply:
            raise McpError(f"{method} failed: {json.dumps(reply)[:400] if reply is not None else body[:400]!r}")
        return reply["result"], jsonrpc_payload_bytes(content_type, body)

    async def list_tools(self) -> tuple[list[dict[str, Any]], int, int]:
        """Every tool, following nextCursor; returns (tools, total bytes of the answers, pages)."""
        tools: list[dict[str, Any]] = []
        size = pages = 0
        cursor = None
        while pages < 100:
            result, page_size = await self.request("tools/list", {"cursor": cursor} if cursor else None)
            tools += result.get("tools", [])
            size += page_size
            pages += 1
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return tools, size, pages

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        result, _ = await self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise McpError(f"tool {name} answered isError: {json.dumps(result)[:400]}")
        return result


def connector(limit: int) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit,
        force_close=False,
        enable_cleanup_closed=False,
    )


@dataclass
class LoadResult:
    calls: int
    errors: int
    wall: float
    latencies: list[float]
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.calls / self.wall if self.wall > 0 else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


async def run_workers(workers: Sequence[Callable[[int], Any]], total: int, time_cap: float) -> LoadResult:
    """Share `total` calls among the workers (each an async callable taking the call index); stop at `time_cap` s."""
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    counter = iter(range(total))
    deadline = time.perf_counter() + time_cap

    async def loop(worker: Callable[[int], Any]) -> None:
        nonlocal errors, first_error
        for index in counter:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            try:
                await worker(index)
            except Exception as exc:  # noqa: BLE001 - counted and reported, never fatal
                errors += 1
                if first_error is None:
                    first_error = f"{type(exc).__name__}: {exc}"[:500]
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in workers))
    wall = time.perf_counter() - started
    return LoadResult(len(latencies), errors, wall, latencies, first_error)

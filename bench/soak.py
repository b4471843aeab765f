"""Soak: 20,000 mixed REST and MCP calls at 32 concurrency, 10 % of them hitting injected faults.

Run:   python bench/soak.py [--calls 20000] [--concurrency 32] [--fault-rate 0.1] [--max-seconds 900]

Loopback only. `naftiko run` serves the seed (runtime/naftiko/defaults/track-customers.yaml) as a
subprocess, pointed with --upstream at a fake upstream served from a thread of this process. The
customer id in each call's path tells the fake which answer to give: `ok`, `slow` (0.3 s, under the
timeout), `e500`, `e503` (retried for PUT/DELETE), `e429` (Retry-After: 0.05), `reset` (headers and
part of the body, then the connection is aborted) or `badjson` (200 with broken JSON). Each answer is
checked against what DESIGN §4.6/§4.7 documents for that fault. Prints counts (sent, answered, by
REST status and by MCP isError, mismatches), scans the server's stderr for unhandled exceptions, and
measures the server's RSS after warm-up (the first 10 % of calls) and at the end: growth < 20 MB is
the bar. Exits 1 when a check fails. Bounded in count (--calls) and in time (--max-seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "runtime" / "naftiko" / "defaults" / "track-customers.yaml"
MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
FAULTS = ["e500", "e503", "e429", "reset", "badjson", "slow"]
# (REST method, path suffix, MCP tool)
OPERATIONS = [
    ("PUT", "", "identify-customer"),
    ("DELETE", "", "delete-customer"),
    ("POST", "/suppress", "suppress-customer"),
    ("POST", "/unsuppress", "unsuppress-customer"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- fake upstream (own thread, own loop) ----------------------------------------------------------


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.hits: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        kind = request.match_info["id"].split("-", 1)[0]
        self.hits[kind] += 1
        if kind == "slow":
            await asyncio.sleep(0.3)
        elif kind == "e500":
            return web.json_response({"meta": {"error": "boom"}}, status=500)
        elif kind == "e503":
            return web.json_response({"meta": {"error": "busy"}}, status=503)
        elif kind == "e429":
            return web.json_response({"meta": {"error": "slow down"}}, status=429, headers={"Retry-After": "0.05"})
        elif kind == "badjson":
            return web.Response(body=b'{"ok": tru', content_type="application/json")
        elif kind == "reset":
            response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "1000"})
            await response.prepare(request)
            await response.write(b'{"partial": "xxxxxxxx')
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("injected reset")
        return web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/api/v1/customers/{id}{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def expected_rest(kind: str, method: str) -> int:
    if kind in ("ok", "slow"):
        return 200
    if kind == "e429":
        return 429  # a 4xx passes through (after the retries, for PUT/DELETE)
    return 502  # 5xx, reset, unusable body


# --- load ---------------------------------------------------------------------------------------


class Soak:
    def __init__(self, rest: str, mcp: str, calls: int, concurrency: int, fault_rate: float, deadline: float, on_warm):
        self.rest, self.mcp = rest, mcp
        self.calls, self.concurrency, self.fault_rate, self.deadline = calls, concurrency, fault_rate, deadline
        self.on_warm = on_warm
        self.random = random.Random(20261122)
        self.next = 0
        self.sent = 0
        self.answered = 0
        self.rest_status: Counter[str] = Counter()
        self.mcp_outcome: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.mismatches: Counter[str] = Counter()
        self.transport_errors: Counter[str] = Counter()

    async def one(self, session: aiohttp.ClientSession, index: int) -> None:
        kind = self.random.choice(FAULTS) if self.random.random() < self.fault_rate else "ok"
        method, suffix, tool = self.random.choice(OPERATIONS)
        identifier = f"{kind}-{index}"
        surface = "rest" if index % 2 else "mcp"
        self.kinds[kind] += 1
        self.sent += 1
        try:
            if surface == "rest":
                kwargs = {"json": {"email": "a@b.c"}} if method == "PUT" else {}
                async with session.request(
                    method, f"{self.rest}/v1/customers/{identifier}{suffix}", **kwargs
                ) as response:
                    await response.read()
                    self.rest_status[str(response.status)] += 1
                    if response.status != expected_rest(kind, method):
                        self.mismatches[f"rest {method} {kind} -> {response.status}"] += 1
            else:
                arguments: dict = {"identifier": identifier}
                if tool == "identify-customer":
                    arguments["body"] = {"email": "a@b.c"}
                message = {
                    "jsonrpc": "2.0",
                    "id": index,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments, "_meta": ENVELOPE},
                }
                headers = {
                    "Accept": "application/json, text/event-stream",
                    "MCP-Protocol-Version": MODERN,
                    "Mcp-Method": "tools/call",
                    "Mcp-Name": tool,
                }
                async with session.post(self.mcp, json=message, headers=headers) as response:
                    reply = json.loads(await response.read())
                    if "result" in reply:
                        is_error = reply["result"].get("isError")
                        self.mcp_outcome[f"isError={str(is_error).lower()}"] += 1
                        if is_error != (kind not in ("ok", "slow")):
                            self.mismatches[f"mcp {tool} {kind} -> isError={is_error}"] += 1
                    else:
                        self.mcp_outcome[f"jsonrpc error {reply.get('error', {}).get('code')}"] += 1
                        self.mismatches[f"mcp {tool} {kind} -> jsonrpc error"] += 1
            self.answered += 1
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            self.transport_errors[type(exc).__name__] += 1

    async def worker(self, session: aiohttp.ClientSession) -> None:
        while self.next < self.calls and time.monotonic() < self.deadline:
            index = self.next
            self.next += 1
            if index == self.calls // 10:
                self.on_warm()
            await self.one(session, index)

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            await asyncio.gather(*(self.worker(session) for _ in range(self.concurrency)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the fake's injected resets are not news
    upstream = Upstream()
    upstream.start()
    rest_port, mcp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMER_IO")}
    env.update(CUSTOMER_IO_USER="soak-site", CUSTOMER_IO_PASS="soak-key")
    stderr = tempfile.NamedTemporaryFile("w+", prefix="naftiko-soak-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "-m", "naftiko.cli", "run", str(SEED),
         "--upstream", f"track-customers=http://127.0.0.1:{upstream.port}/api/v1",
         "--port", f"track-customers-rest={rest_port}", "--port", f"track-customers-mcp={mcp_port}"],
        stdout=subprocess.DEVNULL, stderr=stderr, env=env,
    )  # fmt: skip
    failures: list[str] = []
    try:
        rest, mcp = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{mcp_port}/mcp"
        ready_by = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                print(Path(stderr.name).read_text(), file=sys.stderr)
                return 1
            try:
                socket.create_connection(("127.0.0.1", rest_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", mcp_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > ready_by:
                    raise
                time.sleep(0.05)

        rss = {"start": rss_mb(server.pid)}
        started = time.monotonic()
        soak = Soak(rest, mcp, args.calls, args.concurrency, args.fault_rate, started + args.max_seconds,
                    lambda: rss.setdefault("warm", rss_mb(server.pid)))  # fmt: skip
        asyncio.run(soak.run())
        elapsed = time.monotonic() - started
        rss["end"] = rss_mb(server.pid)

        print(
            f"calls: sent {soak.sent}, answered {soak.answered} in {elapsed:.1f} s ({soak.answered / elapsed:.0f}/s), concurrency {args.concurrency}"
        )
        print("injected:", dict(sorted(soak.kinds.items())))
        print("upstream hits:", dict(sorted(upstream.hits.items())))
        print("REST by status:", dict(sorted(soak.rest_status.items())))
        print("MCP by outcome:", dict(sorted(soak.mcp_outcome.items())))
        print("mismatches with the documented answer:", dict(soak.mismatches) or 0)
        print("client transport errors:", dict(soak.transport_errors) or 0)
        growth = rss["end"] - rss.get("warm", rss["start"])
        print(
            f"server RSS: start {rss['start']:.1f} MB, after warm-up {rss.get('warm', float('nan')):.1f} MB, end {rss['end']:.1f} MB, growth {growth:+.1f} MB (bar < 20 MB)"
        )
        if soak.sent < args.calls:
            failures.append(f"stopped by --max-seconds after {soak.sent} calls")
        if soak.answered != soak.sent:
            failures.append(f"{soak.sent - soak.answered} calls unanswered")
        if soak.mismatches:
            failures.append("answers differ from the documented ones")
        if growth >= 20:
            failures.append(f"RSS grew {growth:.1f} MB after warm-up")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        upstream.stop()
    log = Path(stderr.name).read_text()
    lines = log.splitlines()
    suspicious = [
        line
        for line in lines
        if "Traceback" in line or "Unhandled" in line or "Error handling request" in line or "Task exception" in line
    ]
    non_json = [line for line in lines if not line.startswith("{")]
    print(
        f"server stderr: {len(lines)} lines, {len(non_json)} not request-log JSON, {len(suspicious)} unhandled-exception lines; exit code {server.returncode} ({stderr.name})"
    )
    for line in sorted(set(non_json))[:8]:
        print("   ", line[:200])
    if suspicious:
        failures.append("unhandled exception in the server's stderr")
    if server.returncode != 0:
        failures.append(f"server exit code {server.returncode}")
    print("RESULT:", "PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

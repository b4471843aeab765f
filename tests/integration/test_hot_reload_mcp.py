"""Hot reload over MCP: a file dropped into a served folder adds its tool to the MCP port while a
slow call is in flight; the call completes, the existing session keeps working, and a broken
edit leaves the previous version serving.

`naftiko run FOLDER` runs as a subprocess (asyncio, so the test's event loop never waits on it),
serving a copy of capabilities/track-customers.yaml on free ports. Not --dry-run: --dry-run is
process-wide and answers every call without sending it, so it cannot hold a call in flight; the
Track namespace is pointed (--upstream) at a fake upstream served from a thread on 127.0.0.1,
which takes SLOW_SECONDS to answer one customer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from support import REPO, free_port

TRACK_CUSTOMERS = REPO / "capabilities" / "track-customers.yaml"
PROTOCOL = "2025-06-18"
SLOW_SECONDS = 2.5  # longer than the 2 s a reload may take, so the reload lands mid-call
SLOW_CUSTOMER = "slow-customer"

NEW_CAPABILITY = """naftiko: 1.0.0-alpha2
info:
  label: Orders (hot reload test)
  description: Looks up an order on the fake upstream.
capability:
  consumes:
  - type: http
    namespace: orders
    baseUri: {upstream}
    resources:
    - name: order
      path: /orders/{{id}}
      operations:
      - name: get-order
        method: GET
        outputRawFormat: json
  exposes:
  - type: mcp
    namespace: orders-mcp
    port: {port}
    transport: http
    description: Orders, added while the server runs.
    tools:
    - name: {tool}
      description: Look up an order
      inputParameters:
      - name: id
        type: string
        description: The order id.
        required: true
      call: orders.get-order
"""


class SlowUpstream(BaseHTTPRequestHandler):
    """Answers JSON at once, except for SLOW_CUSTOMER's calls, which take SLOW_SECONDS."""

    slow_started: ClassVar[threading.Event] = threading.Event()
    seen: ClassVar[list[tuple[str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path))
        if SLOW_CUSTOMER in self.path:
            self.slow_started.set()
            time.sleep(SLOW_SECONDS)
        body = json.dumps({"path": self.path, "status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass


class Mcp:
    """One MCP session over streamable HTTP, with raw JSON-RPC posts (answers in JSON or SSE)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url, self.session_id, self.next_id = http, url, None, 0

    async def post(self, payload: dict) -> tuple[int, Any]:
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROTOCOL}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        async with self.http.post(self.url, json=payload, headers=headers) as response:
            self.session_id = self.session_id or response.headers.get("Mcp-Session-Id")
            text = await response.text()
            if response.content_type == "text/event-stream":
                messages = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
                return response.status, next((m for m in messages if m.get("id") == payload.get("id")), None)
            return response.status, json.loads(text) if text else None

    async def initialize(self) -> None:
        status, answer = await self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "test-hot-reload-mcp", "version": "1"},
            },
        )
        assert answer["result"]["protocolVersion"] == PROTOCOL and self.session_id, answer
        status, _ = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert status == 202, status

    async def request(self, method: str, params: dict | None = None) -> tuple[int, dict]:
        self.next_id += 1
        status, answer = await self.post(
            {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        )
        assert status == 200, (method, status, answer)  # 404 would mean the session was lost
        return status, answer

    async def tools(self) -> set[str]:
        _, answer = await self.request("tools/list")
        return {tool["name"] for tool in answer["result"]["tools"]}

    async def call(self, name: str, arguments: dict) -> dict:
        _, answer = await self.request("tools/call", {"name": name, "arguments": arguments})
        assert "result" in answer, answer
        return answer["result"]


async def eventually(check, timeout: float) -> float | None:
    """Seconds until `check()` held (polled every 50 ms), or None when it never did."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        await asyncio.sleep(0.05)


def replace(path: Path, text: str) -> None:
    """Write next to the folder, then rename in: the watcher never sees half a file."""
    staging = path.parent.parent / (path.name + ".staging")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


async def test_file_dropped_while_a_call_is_in_flight_keeps_sessions_and_calls(tmp_path: Path) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
    upstream.daemon_threads = True
    SlowUpstream.slow_started.clear()
    SlowUpstream.seen.clear()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    upstream_url = f"http://127.0.0.1:{upstream.server_address[1]}"

    folder = tmp_path / "capabilities"
    folder.mkdir()
    rest_port, mcp_port = free_port(), free_port()
    text = TRACK_CUSTOMERS.read_text(encoding="utf-8")
    assert text.count("port: 8080") == 1 and text.count("port: 9090") == 1
    (folder / "track-customers.yaml").write_text(
        text.replace("port: 8080", f"port: {rest_port}").replace("port: 9090", f"port: {mcp_port}"), encoding="utf-8"
    )
    stderr_path = tmp_path / "naftiko.stderr"
    env = {**os.environ, "CUSTOMER_IO_USER": "site-id", "CUSTOMER_IO_PASS": "api-key"}
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "naftiko.cli",
            "run",
            "--upstream",
            f"track-customers={upstream_url}/api/v1",
            str(folder),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
    started_at = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def healthy() -> bool:
                assert process.returncode is None, stderr_path.read_text()
                try:
                    async with http.get(f"http://127.0.0.1:{mcp_port}/health") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            assert await eventually(healthy, timeout=30) is not None, stderr_path.read_text()
            session = Mcp(http, f"http://127.0.0.1:{mcp_port}/mcp")
            await session.initialize()
            old_tools = await session.tools()
            assert old_tools == {"identify-customer", "delete-customer", "suppress-customer", "unsuppress-customer"}

            # A slow call in flight (its own connection, same session).
            in_flight = asyncio.create_task(session.call("suppress-customer", {"identifier": SLOW_CUSTOMER}))
            assert await asyncio.to_thread(SlowUpstream.slow_started.wait, 10), (
                "the slow call never reached the upstream"
            )

            # A new file with a new tool on the same MCP port: listed within 2 s, mid-call.
            replace(
                folder / "orders.yaml", NEW_CAPABILITY.format(upstream=upstream_url, port=mcp_port, tool="get-order")
            )

            async def listed() -> bool:
                return "get-order" in await session.tools()

            took = await eventually(listed, timeout=2.0)
            assert took is not None, "get-order was not listed within 2 s:\n" + stderr_path.read_text()
            assert not in_flight.done(), "the reload did not happen while the slow call was in flight"

            # The in-flight call completes with the upstream's answer.
            result = await asyncio.wait_for(in_flight, timeout=SLOW_SECONDS + 10)
            assert result["isError"] is False, result
            assert result["structuredContent"]["path"] == f"/api/v1/customers/{SLOW_CUSTOMER}/suppress", result
            assert ("POST", f"/api/v1/customers/{SLOW_CUSTOMER}/suppress") in SlowUpstream.seen

            # The session opened before the reload keeps working, for old and new tools alike.
            assert await session.tools() == old_tools | {"get-order"}
            order = await session.call("get-order", {"id": "order-1"})
            assert order["isError"] is False and order["structuredContent"]["path"] == "/orders/order-1", order
            unsuppressed = await session.call("unsuppress-customer", {"identifier": "cust-42"})
            assert unsuppressed["isError"] is False, unsuppressed

            # A broken edit of the new file: reported, and the previous version keeps serving.
            replace(
                folder / "orders.yaml",
                NEW_CAPABILITY.format(upstream=upstream_url, port=mcp_port, tool="get-order").replace(
                    "    tools:\n", "    tools: [broken\n"
                ),
            )
            await asyncio.sleep(1.5)
            assert "get-order" in await session.tools()
            order = await session.call("get-order", {"id": "order-2"})
            assert order["isError"] is False and order["structuredContent"]["path"] == "/orders/order-2", order
            assert "previous version keeps serving" in stderr_path.read_text()

            # A fresh session sees the same tools.
            fresh = Mcp(http, f"http://127.0.0.1:{mcp_port}/mcp")
            await fresh.initialize()
            assert await fresh.tools() == old_tools | {"get-order"}
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            code = await process.wait()
        upstream.shutdown()
        upstream.server_close()
    err = stderr_path.read_text()
    assert code == 0, err
    assert "previous version keeps serving" in err and "orders.yaml" in err, err
    print(f"new tool listed after {took:.2f} s; total {time.monotonic() - started_at:.1f} s")

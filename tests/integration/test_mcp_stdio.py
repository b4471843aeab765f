"""MCP over stdio: `naftiko run --stdio` as a child process, driven by the official Python SDK and
by raw newline-delimited JSON-RPC. The fake upstream runs on the test's loop, so the child is
always an asyncio subprocess (never a blocking call)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from mcp import Client, StdioServerParameters

from support import SEED, FakeUpstream

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
BASIC = "Basic " + base64.b64encode(b"site-id-123:api-key-SECRET-456").decode()
INITIALIZE = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}


def command(upstream_url: str) -> list[str]:
    return ["-m", "naftiko.cli", "run", "--stdio", str(SEED), "--upstream", f"track-customers={upstream_url}/api/v1"]


class Child:
    """`naftiko run --stdio` with pipes: one JSON-RPC message per line."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process

    async def send(self, message: Any) -> None:
        line = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        assert self.process.stdin is not None
        self.process.stdin.write(line)
        await self.process.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line, "the server closed stdout"
        return json.loads(line)

    async def finish(self) -> tuple[int, bytes, bytes]:
        """Close stdin (EOF); the server must exit by itself, having written only JSON lines."""
        assert self.process.stdin is not None and self.process.stdout is not None and self.process.stderr is not None
        self.process.stdin.close()
        out, err = await asyncio.wait_for(asyncio.gather(self.process.stdout.read(), self.process.stderr.read()), 30)
        return await asyncio.wait_for(self.process.wait(), 30), out, err


@asynccontextmanager
async def child(upstream_url: str) -> AsyncIterator[Child]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CUSTOMER_IO")}, **CREDENTIALS}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command(upstream_url),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield Child(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_official_client_over_stdio(upstream: FakeUpstream, mode: str) -> None:
    upstream.respond = lambda request, body: web.json_response({"ok": True})
    server = StdioServerParameters(command=sys.executable, args=command(upstream.url), env=CREDENTIALS)
    async with Client(server, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else mcp_types.LATEST_PROTOCOL_VERSION)
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool(
            "identify-customer", {"identifier": "cust-1", "body": {"email": "ada@example.com"}}
        )
    assert tools["identify-customer"].input_schema["required"] == ["identifier"]
    assert tools["identify-customer"].input_schema["properties"]["body"]["type"] == "object"
    assert result.is_error is False and result.structured_content == {"ok": True}
    [request] = upstream.requests
    assert (request.method, request.path, request.headers["Authorization"]) == (
        "PUT",
        "/api/v1/customers/cust-1",
        BASIC,
    )
    assert request.json() == {"email": "ada@example.com"}


async def test_raw_lines_notifications_garbage_and_clean_end_of_input(upstream: FakeUpstream) -> None:
    async with child(upstream.url) as server:
        await server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
        assert (await server.receive())["result"]["protocolVersion"] == "2025-06-18"
        await server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await server.send(b"\n")
        await server.send(b"{not json\n")
        assert await server.receive() == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32700, "message": "Parse error: a line is one JSON-RPC message"},
        }
        await server.send(
            {
                "jsonrpc": "2.0",
                "id": "a",
                "method": "tools/call",
                "params": {"name": "delete-customer", "arguments": {"identifier": "c1"}},
            }
        )
        call = await server.receive()
        await server.send({"jsonrpc": "2.0", "id": 3, "method": "nope"})
        assert (await server.receive())["error"]["code"] == -32601
        code, out, err = await server.finish()
    assert call["id"] == "a" and call["result"]["isError"] is False
    assert [(r.method, r.path) for r in upstream.requests] == [("DELETE", "/api/v1/customers/c1")]
    assert code == 0 and out == b""  # nothing but the answers above ever reached stdout
    assert b"Traceback" not in err and b"api-key-SECRET-456" not in err


async def test_calls_run_concurrently_and_can_be_cancelled() -> None:
    arrived, release = asyncio.Queue[str](), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await arrived.put(request.path)
        await release.wait()
        return web.json_response({"done": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    upstream = TestServer(app, host="127.0.0.1")
    await upstream.start_server()
    try:
        async with child(str(upstream.make_url("")).rstrip("/")) as server:
            await server.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE})
            await server.receive()
            for request_id, identifier in ((1, "slow"), (2, "cancelled")):
                await server.send(
                    {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "method": "tools/call",
                        "params": {"name": "suppress-customer", "arguments": {"identifier": identifier}},
                    }
                )
                await asyncio.wait_for(arrived.get(), 30)
            await server.send(
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2, "reason": "user"}}
            )
            await server.send({"jsonrpc": "2.0", "id": 3, "method": "ping"})
            assert await server.receive() == {"jsonrpc": "2.0", "id": 3, "result": {}}  # not stuck behind the calls
            release.set()
            first = await server.receive()
            code, out, _ = await server.finish()
    finally:
        release.set()
        await upstream.close()
    assert first["id"] == 1 and first["result"]["structuredContent"] == {"done": "/api/v1/customers/slow/suppress"}
    assert code == 0 and out == b""  # the cancelled call got no answer

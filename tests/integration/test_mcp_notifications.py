"""What an MCP server tells a client unasked-for in the response body: progress and log
notifications while a tool runs (an SSE answer on HTTP, lines on stdio), resource updates on the
session's own stream (`GET /mcp`) when a subscribed file changes, and completion answers.
Real servers on 127.0.0.1, the recording fake upstream, raw JSON-RPC so every frame is seen."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.exposes.mcp import McpServer
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.spec.document import load_document
from support import FakeUpstream, mcp_serving

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
info:
  label: "Notifications"
  description: "A two-step tool, a watched file and a template"
capability:
  exposes:
    - type: mcp
      port: 9190
      namespace: notes
      description: "Notification fixtures"
      tools:
        - name: two-steps
          description: "Two upstream steps"
          steps:
            - {name: first, type: call, call: up.get-item, with: {n: "1"}}
            - {name: second, type: call, call: up.get-item, with: {n: "2"}}
          mappings:
            - {targetName: done, value: "$.second.done"}
          outputParameters:
            - {name: done, type: boolean}
      resources:
        - {name: watched, label: Watched, uri: "test://watched", description: "A file", mimeType: text/plain,
           location: "file://./watched.txt"}
        - {name: item, label: Item, uri: "test://items/{n}", description: "An item", call: up.get-item,
           with: {n: "{{n}}"}}
      prompts:
        - name: greet
          label: Greet
          description: "A greeting"
          arguments:
            - {name: who, description: "Whom to greet"}
          template:
            - {role: user, content: "Hello {{who}}"}
  consumes:
    - type: http
      namespace: up
      baseUri: "http://127.0.0.1:9"
      resources:
        - path: "items/{{n}}"
          name: items
          operations:
            - {method: GET, name: get-item}
"""
MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def capability_file(tmp_path: Path, upstream: FakeUpstream) -> Path:
    upstream.respond = lambda request, body: web.json_response({"done": True})
    (tmp_path / "watched.txt").write_text("first\n", encoding="utf-8")
    path = tmp_path / "notes.yaml"
    path.write_text(CAPABILITY, encoding="utf-8")
    return path


@pytest.fixture
async def url(capability_file: Path, upstream: FakeUpstream) -> AsyncIterator[str]:
    capability = compile_capability(load_document(capability_file), CompileOptions(upstreams={"up": upstream.url}))
    server = mcp_serving(mcp_routes(McpServer([(capability, e) for e in capability.exposures]), None))
    await server.start_server()
    yield server.make_url("/mcp")
    await server.close()
    await capability.close()


def frames(text: str, content_type: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a JSON or SSE answer."""
    if content_type == "application/json":
        return [json.loads(text)]
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


class Client:
    def __init__(self, http: aiohttp.ClientSession, url: str):
        self.http, self.url, self.session_id, self.next_id = http, url, None, 0

    async def post(self, method: str, params: dict[str, Any], **headers: str) -> tuple[str, list[dict[str, Any]]]:
        """The answer's content type and its messages, the response last."""
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        async with self.http.post(self.url, json=message, headers={**ACCEPT, **headers}) as response:
            self.session_id = response.headers.get("Mcp-Session-Id", self.session_id)
            return response.content_type, frames(await response.text(), response.content_type)

    async def initialize(self) -> None:
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        _, [reply] = await self.post("initialize", params)
        assert reply["result"]["capabilities"]["resources"] == {"subscribe": True}
        assert reply["result"]["capabilities"]["completions"] == {}


async def test_a_call_reports_progress_and_logs_before_its_result(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        client = Client(http, url)
        await client.initialize()
        content_type, [reply] = await client.post("tools/call", {"name": "two-steps", "arguments": {}})
        assert content_type == "application/json" and reply["result"]["structuredContent"] == {"done": True}
        _, [reply] = await client.post("logging/setLevel", {"level": "info"})
        assert reply["result"] == {}
        params = {"name": "two-steps", "arguments": {}, "_meta": {"progressToken": "p-1"}}
        content_type, messages = await client.post("tools/call", params)
    assert content_type == "text/event-stream"
    *notifications, reply = messages
    assert reply["result"]["structuredContent"] == {"done": True}
    progress = [m["params"] for m in notifications if m["method"] == "notifications/progress"]
    assert [p["progress"] for p in progress] == [0, 1, 2, 2] and {p["total"] for p in progress} == {2}
    assert {p["progressToken"] for p in progress} == {"p-1"}
    logs = [m["params"] for m in notifications if m["method"] == "notifications/message"]
    assert [log["level"] for log in logs] == ["info"] * 4
    assert "step first finished (1/2)" in logs[1]["data"] and "done" in logs[3]["data"]


async def test_a_2026_request_hears_logs_only_when_it_sets_a_level(url: str) -> None:
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "two-steps"}
    async with aiohttp.ClientSession() as http:
        client = Client(http, url)
        content_type, [reply] = await client.post(
            "tools/call", {"name": "two-steps", "arguments": {}, "_meta": ENVELOPE}, **headers
        )
        assert content_type == "application/json" and reply["result"]["structuredContent"] == {"done": True}
        meta = {**ENVELOPE, "io.modelcontextprotocol/logLevel": "warning"}
        content_type, [reply] = await client.post("tools/call", {"name": "two-steps", "_meta": meta}, **headers)
        assert content_type == "application/json"  # nothing at warning or above: no stream needed
        meta = {**ENVELOPE, "io.modelcontextprotocol/logLevel": "debug"}
        content_type, messages = await client.post("tools/call", {"name": "two-steps", "_meta": meta}, **headers)
    assert content_type == "text/event-stream"
    assert [m.get("method") for m in messages] == ["notifications/message"] * 4 + [None]
    assert messages[-1]["result"]["resultType"] == "complete"


async def test_a_subscribed_file_that_changes_is_announced_on_the_session_stream(
    url: str, capability_file: Path
) -> None:
    watched = capability_file.parent / "watched.txt"
    async with aiohttp.ClientSession() as http:
        client = Client(http, url)
        await client.initialize()
        stream = await http.get(url, headers={"Accept": "text/event-stream", "Mcp-Session-Id": client.session_id})
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        _, [reply] = await client.post("resources/subscribe", {"uri": "test://watched"})
        assert reply["result"] == {}
        watched.write_text("second, longer\n", encoding="utf-8")
        updated = await asyncio.wait_for(next_message(stream), 10)
        assert updated == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "test://watched"},
        }
        _, [reply] = await client.post("resources/unsubscribe", {"uri": "test://watched"})
        assert reply["result"] == {}
        watched.write_text("third, longer still\n", encoding="utf-8")
        await asyncio.sleep(1.2)  # more than a poll period: an update would have been sent by now
        async with http.delete(url, headers={"Mcp-Session-Id": client.session_id}) as response:
            assert response.status == 204
        assert await asyncio.wait_for(next_message(stream), 10) is None  # the session ended: so did its stream
        stream.release()


async def next_message(stream: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """The next event's message, or None at the end of the stream (comment lines skipped)."""
    async for line in stream.content:
        if line.startswith(b"data:"):
            return json.loads(line[5:])
    return None


async def test_unknown_resources_and_completions(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        client = Client(http, url)
        await client.initialize()
        for method in ("resources/read", "resources/subscribe"):
            _, [reply] = await client.post(method, {"uri": "test://nope"})
            assert reply["error"]["code"] == -32602 and reply["error"]["data"] == {"uri": "test://nope"}
        argument = {"name": "who", "value": "Ad"}
        _, [reply] = await client.post(
            "completion/complete", {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": argument}
        )
        assert reply["result"] == {"completion": {"values": [], "total": 0, "hasMore": False}}
        ref = {"type": "ref/resource", "uri": "test://items/{n}"}
        _, [reply] = await client.post("completion/complete", {"ref": ref, "argument": {"name": "n", "value": ""}})
        assert reply["result"]["completion"]["values"] == []
        for ref, argument in [
            ({"type": "ref/prompt", "name": "nope"}, {"name": "who"}),
            ({"type": "ref/prompt", "name": "greet"}, {"name": "nope"}),
            ({"type": "ref/resource", "uri": "test://nope/{x}"}, {"name": "x"}),
            ({"type": "ref/tool", "name": "two-steps"}, {"name": "x"}),
        ]:
            _, [reply] = await client.post("completion/complete", {"ref": ref, "argument": argument})
            assert reply["error"]["code"] == -32602, (ref, argument)


async def test_stdio_writes_notifications_between_the_answers(capability_file: Path, upstream: FakeUpstream) -> None:
    lines = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "info"}},
    ]
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "two-steps", "_meta": {"progressToken": 7}},
    }
    command = [
        sys.executable,
        "-m",
        "naftiko.cli",
        "run",
        "--stdio",
        str(capability_file),
        "--upstream",
        f"up={upstream.url}",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert process.stdin is not None and process.stdout is not None
    for line in lines:
        process.stdin.write(json.dumps(line).encode() + b"\n")
    await process.stdin.drain()
    answers = [json.loads(await asyncio.wait_for(process.stdout.readline(), 30)) for _ in range(2)]
    assert [a["id"] for a in answers] == [1, 2]
    process.stdin.write(json.dumps(call).encode() + b"\n")
    messages = [json.loads(await asyncio.wait_for(process.stdout.readline(), 30)) for _ in range(9)]
    assert messages[-1]["id"] == 3 and messages[-1]["result"]["structuredContent"] == {"done": True}
    assert [m["method"] for m in messages[:-1]] == ["notifications/progress", "notifications/message"] * 4
    assert [m["params"]["progress"] for m in messages[:-1] if m["method"] == "notifications/progress"] == [0, 1, 2, 2]
    # a 2026-07-28 request says its own level (none at warning here), whatever the session's
    modern = {**call, "id": 4, "params": {"name": "two-steps", "_meta": {**ENVELOPE, "progressToken": 8}}}
    modern["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = "warning"
    process.stdin.write(json.dumps(modern).encode() + b"\n")
    process.stdin.close()
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    messages = [json.loads(line) for line in out.splitlines()]
    assert messages[-1]["id"] == 4 and messages[-1]["result"]["structuredContent"] == {"done": True}
    assert [m["method"] for m in messages[:-1]] == ["notifications/progress"] * 4

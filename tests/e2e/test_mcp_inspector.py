"""The official TypeScript client, through the MCP Inspector CLI, against the MCP exposure.

Needs Node 22 and `@modelcontextprotocol/inspector@2` under $NAFTIKO_NODE_TOOLS (`.ci/run`
installs both); skips otherwise. The server runs in process with the recording fake upstream,
and the Inspector as an asyncio subprocess, so the fake upstream's loop is never blocked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.exposes.mcp import McpServer
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.spec.document import load_document
from node_tools import node22, node_tool
from support import SEED, FakeUpstream, mcp_serving

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
BASIC = "Basic " + base64.b64encode(b"site-id-123:api-key-SECRET-456").decode()


@pytest.fixture
async def mcp_url(upstream: FakeUpstream) -> AsyncIterator[str]:
    capability = compile_capability(
        load_document(SEED),
        CompileOptions(upstreams={"track-customers": upstream.url + "/api/v1"}, environ=CREDENTIALS),
    )
    server = mcp_serving(
        mcp_routes(McpServer([(capability, e) for e in capability.exposures if e.kind == "mcp"]), None)
    )
    await server.start_server()
    yield str(server.make_url("/mcp"))
    await server.close()
    await capability.close()


async def inspector(url: str, home: Path, *args: str) -> tuple[int, Any, str]:
    node, cli = node22(), node_tool("mcp-inspector")
    env = {**os.environ, "HOME": str(home), "MCP_CATALOG_PATH": str(home / "mcp.json")}
    process = await asyncio.create_subprocess_exec(
        node,
        cli,
        "--cli",
        url,
        "--transport",
        "http",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    try:
        answer = json.loads(out)
    except ValueError:
        answer = out.decode()
    return process.returncode or 0, answer, err.decode()


async def test_inspector_lists_the_seed_tools(mcp_url: str, tmp_path: Path) -> None:
    code, answer, err = await inspector(mcp_url, tmp_path, "--method", "tools/list")
    assert code == 0, err
    tools = {t["name"]: t for t in answer["tools"]}
    assert list(tools) == ["identify-customer", "delete-customer", "suppress-customer", "unsuppress-customer"]
    schema = tools["identify-customer"]["inputSchema"]
    assert schema["required"] == ["identifier"] and schema["properties"]["body"]["type"] == "object"
    assert tools["delete-customer"]["annotations"]["destructiveHint"] is True


async def test_inspector_calls_a_tool(mcp_url: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.respond = lambda request, body: web.json_response({"ok": True})
    arguments = ["--tool-arg", "identifier=cust-1", 'body={"email":"ada@example.com","plan":"pro"}']
    code, answer, err = await inspector(
        mcp_url, tmp_path, "--method", "tools/call", "--tool-name", "identify-customer", *arguments
    )
    assert code == 0, err
    assert answer["isError"] is False and answer["structuredContent"] == {"ok": True}
    [request] = upstream.requests
    assert (request.method, request.path, request.headers["Authorization"]) == (
        "PUT",
        "/api/v1/customers/cust-1",
        BASIC,
    )
    assert request.json() == {"email": "ada@example.com", "plan": "pro"}


async def test_inspector_reports_an_unknown_tool(mcp_url: str, tmp_path: Path) -> None:
    code, answer, err = await inspector(mcp_url, tmp_path, "--method", "tools/call", "--tool-name", "send-email")
    assert code != 0 and "send-email" in json.dumps(answer) + err

"""MCP over Streamable HTTP, in process: real aiohttp server on 127.0.0.1, recording fake upstream,
the official Python SDK as the client (raw JSON-RPC posts where a version or an error is forced)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import mcp_types
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from naftiko.engine.capability import Capability, Exposure
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.exposes.mcp import McpServer
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.exposes.server_auth import ServerAuth
from naftiko.spec.document import load_document
from support import SEED, FakeUpstream, free_port, mcp_serving, shared_path

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
BASIC = "Basic " + base64.b64encode(b"site-id-123:api-key-SECRET-456").decode()
MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
SEED_CALLS = [
    ("identify-customer", "PUT", "/api/v1/customers/cust-1"),
    ("delete-customer", "DELETE", "/api/v1/customers/cust-1"),
    ("suppress-customer", "POST", "/api/v1/customers/cust-1/suppress"),
    ("unsuppress-customer", "POST", "/api/v1/customers/cust-1/unsuppress"),
]


def compile_seed(upstream_url: str, path: Path = SEED, **options: Any) -> Capability:
    document = load_document(path)
    assert document.valid, document.errors
    return compile_capability(
        document, CompileOptions(upstreams={"track-customers": upstream_url}, environ=CREDENTIALS, **options)
    )


def mcp_entries(capability: Capability) -> list[tuple[Capability, Exposure]]:
    return [(capability, e) for e in capability.exposures if e.kind == "mcp"]


@asynccontextmanager
async def serving(
    server: McpServer, auth: ServerAuth | None = None, origins: tuple[str, ...] = ()
) -> AsyncIterator[str]:
    test_server = mcp_serving(mcp_routes(server, auth, origins))
    await test_server.start_server()
    try:
        yield str(test_server.make_url("/mcp"))
    finally:
        await test_server.close()


@pytest.fixture
async def seed(upstream: FakeUpstream) -> AsyncIterator[Capability]:
    capability = compile_seed(upstream.url + "/api/v1")
    yield capability
    await capability.close()


@pytest.fixture
async def url(seed: Capability) -> AsyncIterator[str]:
    async with serving(McpServer(mcp_entries(seed))) as address:
        yield address


class Raw:
    """JSON-RPC over plain aiohttp, to force versions, headers and malformed messages."""

    def __init__(self, url: str, **headers: str):
        self.url = url
        self.headers = headers
        self.session_id: str | None = None
        self.version: str | None = None

    async def post(
        self, payload: Any, headers: dict[str, str] | None = None, data: bytes | None = None
    ) -> tuple[int, dict[str, str], Any]:
        sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **self.headers}
        if self.session_id:
            sent["Mcp-Session-Id"] = self.session_id
        if self.version:
            sent["MCP-Protocol-Version"] = self.version
        sent.update(headers or {})
        body = data if data is not None else json.dumps(payload).encode()
        async with aiohttp.ClientSession() as http, http.post(self.url, data=body, headers=sent) as response:
            text = await response.text()
            return response.status, dict(response.headers), (json.loads(text) if text else None)

    async def initialize(self, version: str = "2025-11-25") -> dict[str, Any]:
        params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
        status, sent_headers, reply = await self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        )
        assert status == 200, reply
        self.session_id = sent_headers["Mcp-Session-Id"]
        self.version = reply["result"]["protocolVersion"]
        assert (await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}))[0] == 202
        return reply["result"]

    async def request(self, method: str, params: dict[str, Any] | None = None, id: int = 1) -> tuple[int, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        status, _, reply = await self.post(message)
        return status, reply

    async def modern(self, method: str, params: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
        params = {**(params or {}), "_meta": ENVELOPE}
        routing = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if "name" in params or "uri" in params:
            routing["Mcp-Name"] = params.get("name") or params["uri"]
        status, _, reply = await self.post(
            {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, {**routing, **headers}
        )
        return status, reply


@asynccontextmanager
async def legacy_client(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


# -- the official client --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_official_client_lists_the_seed_tools_with_real_schemas(url: str, mode: str) -> None:
    async with Client(url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else mcp_types.LATEST_PROTOCOL_VERSION)
        assert client.server_info is not None and client.server_info.name == "track-customers-mcp"
        assert "MCP adapter" in (client.instructions or "")
        capabilities = client.server_capabilities
        assert capabilities.tools is not None and capabilities.resources is None and capabilities.prompts is None
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert list(tools) == ["identify-customer", "delete-customer", "suppress-customer", "unsuppress-customer"]
    identify = tools["identify-customer"].input_schema
    assert identify["type"] == "object" and identify["required"] == ["identifier"]
    assert (
        identify["properties"]["body"]["type"] == "object" and identify["properties"]["identifier"]["type"] == "string"
    )
    for tool in tools.values():
        assert "identifier" in tool.input_schema["required"] and tool.output_schema is None
    delete = tools["delete-customer"].annotations
    assert delete is not None and (delete.destructive_hint, delete.idempotent_hint, delete.read_only_hint) == (
        True,
        True,
        False,
    )
    assert delete.open_world_hint is None  # not set in the file, so not asserted


@pytest.mark.parametrize(("tool", "method", "path"), SEED_CALLS)
async def test_official_client_calls_each_seed_tool(
    url: str, upstream: FakeUpstream, tool: str, method: str, path: str
) -> None:
    upstream.respond = lambda request, body: web.json_response({"accepted": True})
    arguments: dict[str, Any] = {"identifier": "cust-1"}
    if tool == "identify-customer":
        arguments["body"] = {"email": "ada@example.com", "plan": "pro", "created_at": 1705312800}
    async with legacy_client(url) as session:
        result = await session.call_tool(tool, arguments)
    assert result.is_error is False
    assert json.loads(result.content[0].text) == {"accepted": True} and result.structured_content == {"accepted": True}
    [request] = upstream.requests
    assert (request.method, request.path) == (method, path)
    assert request.headers["Authorization"] == BASIC
    assert request.json() == arguments.get("body")


async def test_modern_client_calls_without_a_handshake(url: str, upstream: FakeUpstream) -> None:
    async with Client(url) as client:
        assert client.protocol_version == MODERN
        result = await client.call_tool("suppress-customer", {"identifier": "c/1"})
    assert result.is_error is False
    [request] = upstream.requests
    assert (request.method, request.path) == ("POST", "/api/v1/customers/c%2F1/suppress")


async def test_empty_upstream_body_is_text_null_without_structured_content(url: str) -> None:
    async with legacy_client(url) as session:  # Customer.io answers 200 with no body
        result = await session.call_tool("delete-customer", {"identifier": "c1"})
    assert result.is_error is False and result.content[0].text == "null" and result.structured_content is None


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({}, "identifier"),
        ({"identifier": 42}, "identifier"),
        ({"identifier": "c1", "email": "x"}, "email"),
        ({"identifier": "c1", "body": "text"}, "body"),
    ],
)
async def test_bad_arguments_are_invalid_params_naming_the_argument(
    url: str, upstream: FakeUpstream, arguments: dict, argument: str
) -> None:
    async with legacy_client(url) as session:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("identify-customer", arguments)
    assert raised.value.error.code == -32602 and argument in raised.value.error.message
    assert raised.value.error.data == {"argument": argument}
    assert upstream.requests == []


async def test_unknown_tool_is_invalid_params(url: str) -> None:
    async with legacy_client(url) as session:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("send-email", {})
    assert raised.value.error.code == -32602 and "send-email" in raised.value.error.message


async def test_upstream_error_is_a_tool_error_with_status_and_body(url: str, upstream: FakeUpstream) -> None:
    upstream.respond = lambda request, body: web.json_response({"meta": {"error": "boom"}}, status=500)
    async with legacy_client(url) as session:
        result = await session.call_tool("delete-customer", {"identifier": "c1"})
    assert result.is_error is True and result.structured_content is None
    assert json.loads(result.content[0].text) == {
        "ok": False,
        "error": "upstream_error",
        "status": 500,
        "body": {"meta": {"error": "boom"}},
    }


async def test_unreachable_upstream_is_a_tool_error_with_the_message() -> None:
    capability = compile_seed(f"http://127.0.0.1:{free_port()}/api/v1")
    async with serving(McpServer(mcp_entries(capability))) as address, legacy_client(address) as session:
        result = await session.call_tool("delete-customer", {"identifier": "c1"})
    await capability.close()
    assert result.is_error is True
    text = json.loads(result.content[0].text)
    assert text["error"] == "upstream_unreachable" and "127.0.0.1" in text["message"]
    assert "api-key-SECRET-456" not in result.content[0].text


async def test_dry_run_answers_with_the_request_and_masks_secrets(upstream: FakeUpstream) -> None:
    capability = compile_seed(upstream.url + "/api/v1", dry_run=True)
    async with serving(McpServer(mcp_entries(capability))) as address, legacy_client(address) as session:
        result = await session.call_tool("identify-customer", {"identifier": "c1", "body": {"email": "a@b.c"}})
    await capability.close()
    assert upstream.requests == [] and result.is_error is False
    request = result.structured_content
    assert request is not None and json.loads(result.content[0].text) == request
    assert (request["method"], request["url"], request["body"]) == (
        "PUT",
        upstream.url + "/api/v1/customers/c1",
        {"email": "a@b.c"},
    )
    assert "api-key-SECRET-456" not in result.content[0].text and "site-id-123" not in result.content[0].text


# -- versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
async def test_each_handshake_version_is_negotiated_and_served(url: str, upstream: FakeUpstream, version: str) -> None:
    raw = Raw(url)
    result = await raw.initialize(version)
    assert result["protocolVersion"] == version and result["serverInfo"]["name"] == "track-customers-mcp"
    assert result["capabilities"] == {"tools": {}, "logging": {}}
    status, reply = await raw.request("tools/list")
    assert status == 200 and len(reply["result"]["tools"]) == 4 and "nextCursor" not in reply["result"]
    status, reply = await raw.request("tools/call", {"name": "unsuppress-customer", "arguments": {"identifier": "c1"}})
    assert status == 200 and reply["result"]["isError"] is False and "resultType" not in reply["result"]
    assert [(r.method, r.path) for r in upstream.requests] == [("POST", "/api/v1/customers/c1/unsuppress")]
    assert (await raw.request("ping"))[1] == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert (await raw.request("logging/setLevel", {"level": "warning"}))[1]["result"] == {}


async def test_an_unknown_requested_version_gets_our_latest(url: str) -> None:
    assert (await Raw(url).initialize("2099-01-01"))["protocolVersion"] == "2025-11-25"


async def test_stateless_version_needs_no_handshake_and_no_session(url: str, upstream: FakeUpstream) -> None:
    raw = Raw(url)
    status, reply = await raw.modern("server/discover")
    assert status == 200 and reply["result"]["supportedVersions"] == [MODERN]
    assert reply["result"]["capabilities"] == {"tools": {}} and reply["result"]["resultType"] == "complete"
    status, reply = await raw.modern("tools/list")
    assert status == 200 and len(reply["result"]["tools"]) == 4
    assert {"ttlMs", "cacheScope", "resultType"} <= set(reply["result"])
    status, reply = await raw.modern("tools/call", {"name": "delete-customer", "arguments": {"identifier": "c1"}})
    assert status == 200 and reply["result"]["isError"] is False
    assert reply["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "track-customers-mcp"
    assert [(r.method, r.path) for r in upstream.requests] == [("DELETE", "/api/v1/customers/c1")]
    status, reply = await raw.modern("ping")  # removed at 2026-07-28
    assert status == 404 and reply["error"]["code"] == -32601


async def test_stateless_routing_headers_must_match_the_body(url: str) -> None:
    raw = Raw(url)
    status, reply = await raw.modern(
        "tools/call", {"name": "delete-customer", "arguments": {}}, **{"Mcp-Name": "suppress-customer"}
    )
    assert status == 400 and reply["error"]["code"] == -32020
    status, reply = await raw.modern("tools/list", **{"Mcp-Method": "prompts/list"})
    assert status == 400 and reply["error"]["code"] == -32020
    meta = {**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2027-01-01"}
    headers = {"MCP-Protocol-Version": "2027-01-01", "Mcp-Method": "tools/list"}
    status, _, reply = await raw.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}, headers
    )
    assert status == 400 and reply["error"]["code"] == -32022 and reply["error"]["data"]["supported"] == [MODERN]


async def test_unsupported_protocol_version_header_is_400(url: str) -> None:
    raw = Raw(url)
    await raw.initialize("2025-06-18")
    status, _, reply = await raw.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"MCP-Protocol-Version": "1999-01-01"}
    )
    assert status == 400 and reply["error"]["code"] == -32600


@pytest.mark.parametrize(("version", "accepted"), [("2025-03-26", True), ("2025-06-18", False), ("2025-11-25", False)])
async def test_batches_only_where_the_version_has_them(url: str, version: str, accepted: bool) -> None:
    raw = Raw(url)
    await raw.initialize(version)
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    status, _, reply = await raw.post(batch)
    if accepted:
        assert status == 200 and [r["id"] for r in reply] == [1, 2] and len(reply[1]["result"]["tools"]) == 4
    else:
        assert status == 400 and reply["id"] is None and reply["error"]["code"] == -32600


async def test_tools_list_pages_with_an_opaque_cursor(seed: Capability) -> None:
    async with serving(McpServer(mcp_entries(seed), page_size=3)) as address:
        raw = Raw(address)
        await raw.initialize()
        _, first = await raw.request("tools/list")
        _, second = await raw.request("tools/list", {"cursor": first["result"]["nextCursor"]})
        _, bad = await raw.request("tools/list", {"cursor": "not-a-cursor"})
        async with Client(address) as client:
            page = await client.list_tools()
            rest = await client.list_tools(cursor=page.next_cursor)
    assert (
        len(first["result"]["tools"]) == 3
        and len(second["result"]["tools"]) == 1
        and "nextCursor" not in second["result"]
    )
    assert bad["error"]["code"] == -32602
    assert [t.name for t in page.tools + rest.tools] == [
        t["name"] for t in first["result"]["tools"] + second["result"]["tools"]
    ]
    assert rest.next_cursor is None


# -- JSON-RPC and transport errors ----------------------------------------------------------------


async def test_malformed_json_is_parse_error_with_null_id(url: str) -> None:
    raw = Raw(url)
    await raw.initialize()
    status, _, reply = await raw.post(None, data=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert status == 400 and reply == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": reply["error"]["message"]},
    }


@pytest.mark.parametrize(
    "message",
    [
        {"id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        42,
    ],
)
async def test_invalid_requests_are_invalid_request(url: str, message: Any) -> None:
    raw = Raw(url)
    await raw.initialize()
    status, _, reply = await raw.post(message)
    assert status == 400 and reply["error"]["code"] == -32600


async def test_unknown_method_is_method_not_found(url: str) -> None:
    raw = Raw(url)
    await raw.initialize()
    status, reply = await raw.request("tools/frobnicate", id=9)
    assert status == 200 and reply["id"] == 9 and reply["error"]["code"] == -32601


async def test_sessions_are_required_checked_and_ended(url: str) -> None:
    raw = Raw(url)
    status, reply = await raw.request("tools/list")
    assert status == 400 and "Mcp-Session-Id" in reply["error"]["message"]
    raw.session_id = "no-such-session"
    assert (await raw.request("tools/list"))[0] == 404
    raw.session_id = None
    await raw.initialize()
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:  # the server's own stream belongs to a session
            assert response.status == 405 and "POST" in response.headers["Allow"]
        async with http.get(url, headers={"Mcp-Session-Id": raw.session_id}) as response:  # not SSE
            assert response.status == 406
        async with http.delete(url, headers={"Mcp-Session-Id": raw.session_id}) as response:
            assert response.status == 204
    assert (await raw.request("tools/list"))[0] == 404


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example", 403),
        ("null", 403),
        ("http://localhost:6274", 200),
        ("http://127.0.0.1", 200),
        ("http://[::1]:8080", 200),
        ("https://agents.example.com", 200),
    ],
)
async def test_origin_is_validated(seed: Capability, origin: str, status: int) -> None:
    async with serving(McpServer(mcp_entries(seed)), origins=("https://agents.example.com/",)) as address:
        raw = Raw(address)
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}
        got, _, _ = await raw.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}, {"Origin": origin}
        )
    assert got == status


async def test_bearer_authentication_challenges_and_admits(seed: Capability) -> None:
    auth = ServerAuth("bearer", b"sk-mcp-token-0123")
    async with serving(McpServer(mcp_entries(seed)), auth) as address:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with http.post(
                    address, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
                ) as response:
                    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        raw = Raw(address, Authorization="Bearer sk-mcp-token-0123")
        await raw.initialize()
        status, reply = await raw.request("tools/list")
    assert status == 200 and len(reply["result"]["tools"]) == 4


async def test_a_client_that_accepts_only_sse_gets_an_event_stream(url: str) -> None:
    raw = Raw(url)
    await raw.initialize()
    async with aiohttp.ClientSession() as http:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json", "Mcp-Session-Id": raw.session_id}
        async with http.post(url, json={"jsonrpc": "2.0", "id": 3, "method": "ping"}, headers=headers) as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            text = await response.text()
    [data] = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert json.loads(data) == {"jsonrpc": "2.0", "id": 3, "result": {}}


async def test_wrong_media_type_and_oversized_bodies_are_refused(url: str) -> None:
    raw = Raw(url)
    await raw.initialize()
    assert (await raw.post(None, {"Content-Type": "text/plain"}, data=b"{}"))[0] == 415
    huge = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * (5 * 1024 * 1024)}}
    ).encode()
    assert (await raw.post(None, data=huge))[0] == 413


async def test_a_cancelled_call_is_abandoned(seed: Capability) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    slow_upstream = TestServer(app, host="127.0.0.1")
    await slow_upstream.start_server()
    capability = compile_seed(str(slow_upstream.make_url("/api/v1")))
    try:
        async with serving(McpServer(mcp_entries(capability))) as address:
            raw = Raw(address)
            await raw.initialize()
            call = asyncio.create_task(
                raw.request("tools/call", {"name": "delete-customer", "arguments": {"identifier": "c1"}}, id=41)
            )
            await asyncio.wait_for(started.wait(), 10)
            status, _, _ = await raw.post(
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 41}}
            )
            assert status == 202
            assert await asyncio.wait_for(call, 10) == (202, None)  # no response for a cancelled request
            assert (await raw.request("ping"))[0] == 200  # the session goes on
    finally:
        release.set()
        await capability.close()
        await slow_upstream.close()


# -- several files on one port; resources and prompts ----------------------------------------------


async def test_a_tool_declared_twice_on_one_port_names_both_files(upstream: FakeUpstream, tmp_path: Path) -> None:
    copy = tmp_path / "track-customers-copy.yaml"
    shutil.copy(SEED, copy)
    first, second = compile_seed(upstream.url), compile_seed(upstream.url, copy)
    with pytest.raises(ValueError, match="identify-customer") as raised:
        McpServer([*mcp_entries(first), *mcp_entries(second)])
    assert str(SEED) in str(raised.value) and str(copy) in str(raised.value)
    await first.close()
    await second.close()


async def test_official_resources_and_prompts_example(upstream: FakeUpstream) -> None:
    path = shared_path("conformance", "official", "mcp-resources-prompts-capability.yaml")
    upstream.respond = lambda request, body: web.json_response({"results": [{"id": "p-1"}]})
    capability = compile_capability(
        load_document(path), CompileOptions(upstreams={"mock-api": upstream.url + "/v1"}, environ={})
    )
    async with serving(McpServer(mcp_entries(capability))) as address, legacy_client(address) as session:
        capabilities = session.server_capabilities
        assert capabilities is not None and capabilities.resources is not None and capabilities.prompts is not None
        resources = (await session.list_resources()).resources
        templates = (await session.list_resource_templates()).resource_templates
        assert [(r.uri, r.title) for r in resources] == [("data://databases/pre-release/schema", "Database Schema")]
        assert [t.uri_template for t in templates] == ["data://users/{userId}/profile"]
        read = await session.read_resource("data://users/u-42/profile")
        assert (
            json.loads(read.contents[0].text) == {"results": [{"id": "p-1"}]}
            and read.contents[0].mime_type == "application/json"
        )
        assert upstream.requests[-1].path == "/v1/databases/u-42/query"
        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
        assert [a.required for a in prompts["summary-prompt"].arguments or []] == [True, False]
        summary = await session.get_prompt("summary-prompt", {"data": "{{format}} rows"})
        outreach = await session.get_prompt(
            "participant-outreach", {"participant_name": "Ada", "product_name": "Naftiko"}
        )
        tool = await session.call_tool("query-database", {})
        with pytest.raises(MCPError):
            await session.read_resource("data://nothing/here")
    await capability.close()
    assert [m.role for m in summary.messages] == ["user", "assistant", "user"]
    assert (
        summary.messages[0].content.text == "Summarize the following data in {{format}} format:\n\n{{format}} rows"
    )  # kept, never re-scanned
    assert (
        "Draft a personalized outreach email to Ada about the upcoming Naftiko pre-release."
        in outreach.messages[0].content.text
    )
    assert (
        tool.is_error is False
        and json.loads(tool.content[0].text) == [{"id": "p-1"}]
        and tool.structured_content is None
    )


STATIC = """\
naftiko: 1.0.0-alpha2
info: {label: Docs, description: Static resources and a file prompt}
capability:
  consumes:
  - type: http
    namespace: track-customers
    baseUri: https://track.customer.io/api/v1
    resources:
    - name: customers
      path: /customers/{identifier}
      operations: [{name: deletecustomer, method: DELETE}]
  exposes:
  - type: mcp
    namespace: docs-mcp
    port: 9091
    tools:
    - {name: delete-customer, description: Delete a customer, call: track-customers.deletecustomer}
    resources:
    - {name: guides, label: Guides, uri: "docs://guides", description: Operator guides, location: "file://guides"}
    prompts:
    - {name: triage, label: Triage, description: Triage a customer, location: "file://prompts/triage.md", arguments: [{name: customer, description: who}]}
"""


async def test_static_resources_and_file_prompts_stay_inside_their_folder(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    (tmp_path / "guides" / "deep").mkdir(parents=True)
    (tmp_path / "guides" / "intro.md").write_text("# Intro\n")
    (tmp_path / "guides" / "deep" / "setup.json").write_text('{"step": 1}')
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "triage.md").write_text("Look at {{customer}} and {{unknown}}.")
    (tmp_path / "secret.txt").write_text("do not serve")
    (tmp_path / "docs.yaml").write_text(STATIC)
    capability = compile_seed(upstream.url, tmp_path / "docs.yaml")
    async with serving(McpServer(mcp_entries(capability))) as address:
        raw = Raw(address)
        await raw.initialize()
        _, listed = await raw.request("resources/list")
        _, intro = await raw.request("resources/read", {"uri": "docs://guides/intro.md"})
        _, setup = await raw.request("resources/read", {"uri": "docs://guides/deep/setup.json"})
        escapes = [
            (await raw.request("resources/read", {"uri": f"docs://guides/{p}"}))[1]
            for p in ("../secret.txt", "deep/../../secret.txt", "%2e%2e/secret.txt")
        ]
        _, prompt = await raw.request("prompts/get", {"name": "triage", "arguments": {"customer": "cust-7"}})
    await capability.close()
    assert [(r["uri"], r["mimeType"]) for r in listed["result"]["resources"]] == [
        ("docs://guides/deep/setup.json", "application/json"),
        ("docs://guides/intro.md", "text/markdown"),
    ]
    assert intro["result"]["contents"] == [
        {"uri": "docs://guides/intro.md", "mimeType": "text/markdown", "text": "# Intro\n"}
    ]
    assert setup["result"]["contents"][0]["text"] == '{"step": 1}'
    assert all(e["error"]["code"] == -32602 and "do not serve" not in json.dumps(e) for e in escapes)
    assert prompt["result"]["messages"] == [
        {"role": "user", "content": {"type": "text", "text": "Look at cust-7 and {{unknown}}."}}
    ]


async def test_official_hints_example_gives_titles_and_only_the_hints_set(upstream: FakeUpstream) -> None:
    path = shared_path("conformance", "official", "mcp-hints-capability.yaml")
    capability = compile_capability(
        load_document(path), CompileOptions(upstreams={"mock-api": upstream.url}, environ={})
    )
    tools = {t["name"]: t for t in McpServer(mcp_entries(capability)).tool_list}
    await capability.close()
    assert tools["read-data"]["title"] == "Read Data"
    assert tools["read-data"]["annotations"] == {"readOnlyHint": True, "openWorldHint": True}
    assert "outputSchema" not in tools["read-data"]  # a string output: MCP output schemas are objects
    assert tools["delete-record"]["annotations"] == {
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert tools["delete-record"]["inputSchema"]["required"] == ["record-id"]
    assert "annotations" not in tools["no-hints-tool"] and "title" not in tools["no-hints-tool"]


@pytest.mark.parametrize(
    ("answer", "structured"),
    [
        (
            {
                "imo_number": "IMO-1",
                "vessel_name": "Northern Star",
                "year_built": 2001,
                "dimensions": {"length_overall": 180},
            },
            "full",
        ),
        (None, "empty"),  # 200 with no body: still an object, as the output schema promises
    ],
)
async def test_typed_outputs_publish_an_output_schema_the_official_client_validates(
    upstream: FakeUpstream, answer: Any, structured: str
) -> None:
    path = shared_path("conformance", "official", "nested-object-output-capability.yaml")
    upstream.respond = lambda request, body: (
        web.json_response(answer) if answer is not None else web.Response(status=200)
    )
    capability = compile_capability(
        load_document(path), CompileOptions(upstreams={"registry": upstream.url}, environ={})
    )
    async with serving(McpServer(mcp_entries(capability))) as address, legacy_client(address) as session:
        [tool] = (await session.list_tools()).tools
        result = await session.call_tool(
            "get-ship", {"imo": "IMO-1"}
        )  # the SDK checks structuredContent against outputSchema
    await capability.close()
    assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    assert tool.output_schema["properties"]["specs"]["properties"]["length"] == {"type": ["number", "null"]}
    assert upstream.requests[0].path == "/ships/IMO-1"
    if structured == "full":
        assert result.structured_content is not None and result.structured_content["specs"]["length"] == 180
        assert result.structured_content["name"] == "Northern Star" and result.structured_content["status"] is None
        assert json.loads(result.content[0].text) == result.structured_content
    else:
        assert result.structured_content == {} and result.content[0].text == "{}"


async def test_a_lone_surrogate_is_answered_not_crashed_on(url: str) -> None:
    raw = Raw(url)
    await raw.initialize()
    status, _, reply = await raw.post(
        None, data=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "\\ud800"}}'
    )
    assert status == 200 and reply["error"]["code"] == -32602

"""Property tests on REST and MCP inputs against the seed capability, with a recording fake upstream.

Whatever a caller sends (identifiers with `/ ? # % ..` and control characters, unicode, huge
numbers, deep JSON, random tool arguments), the server answers well-formed: REST a status < 500
or a documented 502/504 problem+json, MCP a JSON-RPC result or error. Every request that reaches
the upstream has the host of the fake upstream and the path `/api/v1/customers/<one segment>`
with an optional `/suppress` or `/unsuppress`.

The servers run on their own event loop in a thread so that hypothesis drives plain functions;
requests are written on raw sockets, so nothing on the client side normalises them.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from naftiko.engine.compile import CompileOptions, compile_capability  # noqa: E402
from naftiko.run_command import _mcp_route_factory  # noqa: E402
from naftiko.server import plan  # noqa: E402
from naftiko.spec.document import load_document  # noqa: E402
from support import SEED, FakeUpstream, Serving  # noqa: E402

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
UPSTREAM_PATH = re.compile(r"/api/v1/customers/([^/?#]+)(/suppress|/unsuppress)?")
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


class Stack:
    """Fake upstream + the REST and MCP servers of one capability file, on a loop in a thread."""

    def __init__(
        self,
        path: Path = SEED,
        environ: dict[str, str] | None = None,
        dry_run: bool = False,
        upstream: str | None = None,
    ):
        self.path, self.environ, self.dry_run, self.upstream_override = path, environ or CREDENTIALS, dry_run, upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.fake = FakeUpstream()
        self.runners: list[web.AppRunner] = []
        self.servers: list[Serving] = []
        self.capability: Any = None
        self.ports: dict[str, int] = {}
        self.upstream_port = 0

    def __enter__(self) -> Stack:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _site(self, app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.fake.handle)
        self.upstream_port = await self._site(app)
        self.fake.url = f"http://127.0.0.1:{self.upstream_port}"
        document = load_document(self.path)
        assert document.valid, document.errors
        base = self.upstream_override or self.fake.url + "/api/v1"
        self.capability = compile_capability(
            document, CompileOptions(dry_run=self.dry_run, upstreams={"track-customers": base}, environ=self.environ)
        )
        routes = _mcp_route_factory()
        for port_plan in plan([self.capability]):
            server = Serving(port_plan, routes)
            await server.start_server()
            self.servers.append(server)
            self.ports[port_plan.kind] = server.server.port

    async def _stop(self) -> None:
        for server in self.servers:
            await server.close()
        for runner in self.runners:
            await runner.cleanup()
        await self.capability.close()

    def reset(self) -> None:
        self.fake.requests.clear()


def raw_request(
    port: int, method: str, target: str | bytes, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written byte for byte; the response parsed by http.client."""
    target_bytes = target if isinstance(target, bytes) else target.encode("utf-8", "surrogatepass")
    lines = [method.encode() + b" " + target_bytes + b" HTTP/1.1", b"Host: 127.0.0.1:%d" % port, b"Connection: close"]
    for name, value in headers or []:
        lines.append(name.encode("latin-1") + b": " + value.encode("utf-8", "surrogatepass"))
    if body or method in ("POST", "PUT"):
        lines.append(b"Content-Length: %d" % len(body))
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def assert_well_formed_rest(status: int, headers: dict[str, str], body: bytes) -> None:
    assert 100 <= status < 600
    if status >= 500:
        assert status in (502, 504), (status, body[:300])
    if status >= 400 and status not in (404,) or status in (502, 504):
        # our own errors are problem+json; 4xx passing through from the upstream keep their type
        if headers.get("content-type", "").startswith("application/problem+json"):
            problem = json.loads(body)
            assert problem["status"] == status and problem["type"]


def assert_upstream_shape(stack: Stack) -> list[str]:
    """Every recorded upstream request has the expected host and path shape; returns the segments."""
    segments = []
    for recorded in stack.fake.requests:
        match = UPSTREAM_PATH.fullmatch(recorded.path)
        assert match, recorded.path
        segment = match.group(1)
        assert unquote(segment) not in ("", ".", ".."), recorded.path
        assert recorded.headers.get("Host") == f"127.0.0.1:{stack.upstream_port}", recorded.headers.get("Host")
        segments.append(segment)
    return segments


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack() as running:
        yield running


# --- strategies ---------------------------------------------------------------------------------

NASTY = [
    "/",
    "?",
    "#",
    "%",
    "..",
    ".",
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\t",
    " ",
    "%2F",
    "%2e%2e",
    "\\",
    "@",
    ":",
    "{{",
    "}}",
    "é",
    "😀",
    "\u202e",
    "\ufeff",
]
identifiers = st.lists(st.one_of(st.sampled_from(NASTY), st.text(min_size=1, max_size=5)), min_size=1, max_size=6).map(
    "".join
)
suffixes = st.sampled_from([("PUT", ""), ("DELETE", ""), ("POST", "/suppress"), ("POST", "/unsuppress")])
big_numbers = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60), st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), big_numbers, st.text(max_size=12)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


def strict_json(data: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(data, parse_constant=refuse)


# --- REST ---------------------------------------------------------------------------------------


@FUZZ
@given(identifier=identifiers, route=suffixes)
def test_rest_encoded_identifiers_stay_one_segment(stack: Stack, identifier: str, route: tuple[str, str]) -> None:
    stack.reset()
    method, suffix = route
    status, headers, body = raw_request(
        stack.ports["rest"], method, f"/v1/customers/{quote(identifier, safe='')}{suffix}"
    )
    assert_well_formed_rest(status, headers, body)
    segments = assert_upstream_shape(stack)
    assert len(segments) <= 1
    if segments:
        assert unquote(segments[0]) == identifier
        assert stack.fake.requests[0].path.endswith(suffix)
    if identifier not in (".", "..") and not any(ch in identifier for ch in "\r\n\x00") and status == 200:
        assert segments


@FUZZ
@given(identifier=identifiers, route=suffixes)
def test_rest_raw_identifiers_never_escape(stack: Stack, identifier: str, route: tuple[str, str]) -> None:
    stack.reset()
    method, suffix = route
    # unencoded: `?`, `#`, `/`, `..` and control characters reach the server as they are
    target = f"/v1/customers/{identifier}{suffix}".replace("\r", "%0D").replace("\n", "%0A").replace(" ", "%20")
    status, headers, body = raw_request(stack.ports["rest"], method, target)
    assert_well_formed_rest(status, headers, body)
    assert len(assert_upstream_shape(stack)) <= 1


@FUZZ
@given(body=json_values, identifier=identifiers)
def test_rest_random_json_bodies(stack: Stack, body: Any, identifier: str) -> None:
    stack.reset()
    sent = json.dumps(body).encode()
    headers = [("Content-Type", "application/json")]
    status, answer_headers, answer = raw_request(
        stack.ports["rest"], "PUT", f"/v1/customers/{quote(identifier, safe='')}", headers, sent
    )
    assert_well_formed_rest(status, answer_headers, answer)
    assert_upstream_shape(stack)
    for recorded in stack.fake.requests:
        if recorded.body and body is not None:  # a null body counts as absent (the runtime sends `{}`)
            assert strict_json(recorded.body) == body


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1e999}',
        b'{"a": -1e999}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"[" * 2000 + b"]" * 2000,
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b'{"a": "\\ud800"}',
        b"\xff\xfe",
        b'{"a": 1,}',
        b"",
    ],
    ids=[
        "inf",
        "-inf",
        "nan",
        "infinity",
        "5000-digits",
        "deep-array",
        "deep-object",
        "lone-surrogate",
        "not-utf8",
        "trailing-comma",
        "empty",
    ],
)
def test_rest_hostile_bodies(stack: Stack, body: bytes) -> None:
    stack.reset()
    status, headers, answer = raw_request(
        stack.ports["rest"], "PUT", "/v1/customers/c1", [("Content-Type", "application/json")], body
    )
    assert_well_formed_rest(status, headers, answer)
    assert_upstream_shape(stack)
    for recorded in stack.fake.requests:
        if recorded.body:
            strict_json(recorded.body)  # whatever is forwarded is standard JSON


@FUZZ
@given(
    query=st.lists(st.tuples(st.text(min_size=1, max_size=6), st.text(max_size=12)), max_size=3),
    header=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    cookie=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=";"), max_size=20),
)
def test_rest_query_headers_and_cookies_change_nothing(
    stack: Stack, query: list[tuple[str, str]], header: str, cookie: str
) -> None:
    stack.reset()
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    headers = [
        ("X-Identifier", header),
        ("Cookie", f"identifier={cookie}"),
        ("X-Forwarded-Host", "evil.example"),
        ("Host-Override", header),
    ]
    status, answer_headers, body = raw_request(stack.ports["rest"], "POST", f"/v1/customers/c1/suppress?{qs}", headers)
    assert_well_formed_rest(status, answer_headers, body)
    assert [r.path for r in stack.fake.requests] == ["/api/v1/customers/c1/suppress"]
    assert_upstream_shape(stack)


# --- MCP ----------------------------------------------------------------------------------------


class McpClient:
    def __init__(self, port: int, **headers: str):
        self.port, self.headers, self.session = port, headers, ""

    def post(self, message: Any, raw: bytes | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
        sent = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            **self.headers,
            **headers,
        }
        if self.session:
            sent["Mcp-Session-Id"] = self.session
            sent["MCP-Protocol-Version"] = "2025-06-18"
        body = raw if raw is not None else json.dumps(message).encode()
        return raw_request(self.port, "POST", "/mcp", list(sent.items()), body)

    def initialize(self) -> None:
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}
        status, headers, _ = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
        assert status == 200
        self.session = headers["mcp-session-id"]
        assert self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})[0] == 202


def assert_jsonrpc(status: int, headers: dict[str, str], body: bytes, id: Any = 1) -> dict[str, Any]:
    assert status == 200, (status, body[:300])
    reply = json.loads(body)
    assert reply["jsonrpc"] == "2.0" and reply["id"] == id
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        assert isinstance(reply["error"]["code"], int) and isinstance(reply["error"]["message"], str)
    return reply


@pytest.fixture(scope="module")
def mcp(stack: Stack) -> McpClient:
    client = McpClient(stack.ports["mcp"])
    client.initialize()
    return client


TOOLS = {
    "identify-customer": "",
    "delete-customer": "",
    "suppress-customer": "/suppress",
    "unsuppress-customer": "/unsuppress",
}


@FUZZ
@given(
    tool=st.sampled_from(sorted(TOOLS) + ["no-such-tool", "", "../identify-customer"]),
    identifier=st.one_of(identifiers, json_values),
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    body=json_values,
)
def test_mcp_random_tool_arguments(
    stack: Stack, mcp: McpClient, tool: str, identifier: Any, extra: dict[str, Any], body: Any
) -> None:
    stack.reset()
    arguments = {**extra, "identifier": identifier, "body": body}
    status, headers, answer = mcp.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    )
    reply = assert_jsonrpc(status, headers, answer)
    segments = assert_upstream_shape(stack)
    assert len(segments) <= 1
    if segments:
        assert isinstance(identifier, str) and unquote(segments[0]) == identifier
        assert stack.fake.requests[0].path.endswith(TOOLS[tool])
        if tool == "identify-customer" and stack.fake.requests[0].body and body is not None:
            assert strict_json(stack.fake.requests[0].body) == body
    elif "result" in reply:
        assert reply["result"].get("isError") is True


@FUZZ
@given(
    params=json_values,
    method=st.sampled_from(["tools/call", "tools/list", "ping", "resources/read", "prompts/get", "nope"]),
)
def test_mcp_random_params(mcp: McpClient, params: Any, method: str) -> None:
    status, headers, answer = mcp.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert_jsonrpc(status, headers, answer)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b"null",
        b"1e999",
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"\xff",
    ],
    ids=["truncated", "empty-batch", "null", "inf", "deep", "not-utf8"],
)
def test_mcp_malformed_messages(mcp: McpClient, raw: bytes) -> None:
    status, _, body = mcp.post(None, raw=raw)
    assert status < 500
    if status == 200 and body:
        reply = json.loads(body)
        assert reply["jsonrpc"] == "2.0" and "error" in reply


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("identify-customer", b'{"identifier": "c1", "body": {"a": 1e999}}'),
        ("identify-customer", b'{"identifier": "c1", "body": {"a": NaN}}'),
        ("identify-customer", b'{"identifier": "c1", "body": {"\\ud800": 1}}'),
        ("suppress-customer", b'{"identifier": "\\ud800"}'),
        ("suppress-customer", b'{"identifier": ".."}'),
        ("suppress-customer", b'{"identifier": "."}'),
        ("suppress-customer", b'{"identifier": ""}'),
        ("suppress-customer", b'{"identifier": "a\\r\\nHost: evil"}'),
        ("suppress-customer", b'{"identifier": 1e400}'),
        ("suppress-customer", b'{"identifier": ' + b"9" * 4000 + b"}"),
        ("identify-customer", b'{"identifier": "c1", "body": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}"),
    ],
    ids=[
        "inf",
        "nan",
        "surrogate-key",
        "surrogate-id",
        "dotdot",
        "dot",
        "empty",
        "crlf",
        "huge-float",
        "huge-int",
        "deep",
    ],
)
def test_mcp_hostile_arguments(stack: Stack, mcp: McpClient, tool: str, arguments: bytes) -> None:
    stack.reset()
    raw = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "'
        + tool.encode()
        + b'", "arguments": '
        + arguments
        + b"}}"
    )
    status, headers, answer = mcp.post(None, raw=raw)
    assert status < 500
    if status == 200:
        reply = json.loads(answer)
        assert ("result" in reply) != ("error" in reply)
    assert_upstream_shape(stack)
    for recorded in stack.fake.requests:
        if recorded.body:
            strict_json(recorded.body)
    assert all(unquote(s) not in ("", ".", "..") and "\r" not in unquote(s) for s in assert_upstream_shape(stack))


@pytest.mark.parametrize("segment", ["%FF", "%ED%A0%80", "%C3", "a%80b", "%00", "%2e%2e", "%2E", ".", ".."])
def test_rest_undecodable_or_dot_segments_are_refused(stack: Stack, segment: str) -> None:
    """Bytes that are not UTF-8 used to become U+FFFD, so `%FF` and `%FE` reached the same upstream customer."""
    stack.reset()
    status, headers, body = raw_request(stack.ports["rest"], "POST", f"/v1/customers/{segment}/suppress")
    assert status == 400 and headers["content-type"].startswith("application/problem+json"), (status, body)
    assert not stack.fake.requests


@pytest.mark.parametrize(
    "segment", ["%", "%zz", "%25", "a;b", "%7B%7Bx%7D%7D", "..%2F", "%2F..%2F..%2Fx", "~", "%C3%A9"]
)
def test_rest_odd_but_valid_segments_pass_as_one_segment(stack: Stack, segment: str) -> None:
    stack.reset()
    status, _, _ = raw_request(stack.ports["rest"], "POST", f"/v1/customers/{segment}/suppress")
    assert status == 200
    [sent] = assert_upstream_shape(stack)
    assert unquote(sent) == unquote(segment)

"""Reliability under upstream faults, through REST and through MCP, in process.

A raw asyncio fake upstream on 127.0.0.1 (so it can misbehave at the byte level: reset a body
half-way, stall before or after the headers, lie about the content type) injects one fault per
test. Each test asserts the documented answer (DESIGN §4.4, §4.6, §4.7) arrives within the
configured timeout, counts upstream hits to check that retries happen only for idempotent methods
on 429/503/connection failures, and that both servers stay healthy afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from naftiko.consumes.client import ClientSettings
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.exposes.mcp import McpServer
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import SEED, Serving, call_tool, free_port

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
TIMEOUT = 1.0  # the configured total timeout of every upstream call in these tests
SLACK = 0.75  # scheduling margin on top of it
FAST = ClientSettings(connect_timeout=0.5, total_timeout=TIMEOUT, retries=2, backoff=0.05)

Writer = asyncio.StreamWriter
Mode = Callable[[Writer, str, int], Awaitable[None]]

# --- the fake upstream ------------------------------------------------------------------------


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in {**headers, "Connection": "close"}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(
    status: int = 200, body: bytes = b'{"ok":true}', content_type: str = "application/json", **headers: str
) -> Mode:
    async def mode(writer: Writer, method: str, hit: int) -> None:
        extra = {k.replace("_", "-"): v for k, v in headers.items()}
        writer.write(head(status, {"Content-Type": content_type, "Content-Length": str(len(body)), **extra}) + body)
        await writer.drain()

    return mode


def then(*modes: Mode) -> Mode:
    """The n-th request gets the n-th mode (the last one repeats)."""

    async def mode(writer: Writer, method: str, hit: int) -> None:
        await modes[min(hit, len(modes)) - 1](writer, method, hit)

    return mode


async def reset_mid_body(writer: Writer, method: str, hit: int) -> None:
    writer.write(
        head(200, {"Content-Type": "application/json", "Content-Length": "1000"}) + b'{"partial": "' + b"x" * 100
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.transport.abort()


async def reset_mid_chunked_body(writer: Writer, method: str, hit: int) -> None:
    writer.write(
        head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}) + b'e\r\n{"partial": "x\r\n'
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.transport.abort()


async def not_http(writer: Writer, method: str, hit: int) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not an HTTP answer\r\n\r\n")
    await writer.drain()


async def close_before_answer(writer: Writer, method: str, hit: int) -> None:
    writer.transport.abort()


async def slow_headers(writer: Writer, method: str, hit: int) -> None:
    await asyncio.sleep(TIMEOUT * 3)
    await answer()(writer, method, hit)


async def hang_mid_body(writer: Writer, method: str, hit: int) -> None:
    writer.write(head(200, {"Content-Type": "application/json", "Content-Length": "1000"}) + b'{"a": ')
    await writer.drain()
    await asyncio.sleep(60)


def big_body(size: int, chunked: bool = False) -> Mode:
    async def mode(writer: Writer, method: str, hit: int) -> None:
        filler = size - len(b'{"data":""}')
        headers = {"Content-Type": "application/json"}
        headers.update({"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)})
        writer.write(head(200, headers))
        pieces = [b'{"data":"'] + [b"x" * min(1 << 20, filler - i) for i in range(0, filler, 1 << 20)] + [b'"}']
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return mode


class FaultUpstream:
    def __init__(self) -> None:
        self.mode: Mode = answer()
        self.hits: list[tuple[str, str]] = []
        self.tasks: set[asyncio.Task] = set()
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    def methods(self) -> list[str]:
        return [method for method, _ in self.hits]

    async def _connection(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            self.hits.append((method, path))
            await self.mode(writer, method, len(self.hits))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


# --- the runtime under test -------------------------------------------------------------------


@dataclass
class Stack:
    rest: str
    mcp: str


@asynccontextmanager
async def serving(upstream_url: str, settings: ClientSettings = FAST) -> AsyncIterator[Stack]:
    capability = compile_capability(
        load_document(SEED),
        CompileOptions(upstreams={"track-customers": upstream_url + "/api/v1"}, environ=CREDENTIALS, settings=settings),
    )
    servers = {}
    for port_plan in plan([capability]):
        if port_plan.kind in ("rest", "mcp"):
            server = Serving(port_plan, lambda p: mcp_routes(McpServer(list(p.entries)), None))
            await server.start_server()
            servers[port_plan.kind] = server
    try:
        yield Stack(str(servers["rest"].make_url("")).rstrip("/"), str(servers["mcp"].make_url("/mcp")))
    finally:
        for server in servers.values():
            await server.close()
        await capability.close()


@pytest.fixture
async def fake() -> AsyncIterator[FaultUpstream]:
    upstream = FaultUpstream()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def stack(fake: FaultUpstream) -> AsyncIterator[Stack]:
    async with serving(fake.url) as served:
        yield served


# REST route and MCP tool of each method the seed exposes
ROUTES = {
    "PUT": ("PUT", "/v1/customers/c1", "identify-customer", {"identifier": "c1", "body": {"email": "a@b.c"}}),
    "DELETE": ("DELETE", "/v1/customers/c1", "delete-customer", {"identifier": "c1"}),
    "POST": ("POST", "/v1/customers/c1/suppress", "suppress-customer", {"identifier": "c1"}),
}


async def rest_call(stack: Stack, method: str = "DELETE") -> tuple[int, dict[str, str], Any, float]:
    verb, path, _, arguments = ROUTES[method]
    started = time.monotonic()
    kwargs = {"json": arguments["body"]} if "body" in arguments else {}
    async with aiohttp.ClientSession() as session, session.request(verb, stack.rest + path, **kwargs) as response:
        raw = await response.read()
        elapsed = time.monotonic() - started
        return response.status, dict(response.headers), (json.loads(raw) if raw else None), elapsed


async def mcp_call(stack: Stack, method: str = "DELETE") -> tuple[dict[str, Any], float]:
    _, _, tool, arguments = ROUTES[method]
    return await call_tool(stack.mcp, tool, arguments)


def assert_problem(status: int, headers: dict[str, str], body: Any, expected: int, kind: str) -> None:
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == expected and body["type"].endswith("/" + kind), body


def tool_error(result: dict[str, Any]) -> dict[str, Any]:
    assert result["isError"] is True, result
    return json.loads(result["content"][0]["text"])


async def assert_healthy(stack: Stack, fake: FaultUpstream) -> None:
    fake.mode = answer()
    async with aiohttp.ClientSession() as session:
        for url in (stack.rest, stack.mcp.removesuffix("/mcp")):
            async with session.get(url + "/health") as response:
                assert response.status == 200
    status, _, body, _ = await rest_call(stack, "PUT")
    assert (status, body) == (200, {"ok": True})
    result, _ = await mcp_call(stack, "POST")
    assert result["isError"] is False and result["structuredContent"] == {"ok": True}


# --- upstream 5xx and 4xx ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502])
async def test_upstream_5xx_is_502_with_upstream_status_and_never_retried(
    stack: Stack, fake: FaultUpstream, code: int
) -> None:
    fake.mode = answer(code, b'{"meta":{"error":"boom"}}')
    status, headers, body, _ = await rest_call(stack, "DELETE")
    assert_problem(status, headers, body, 502, "upstream-error")
    assert body["upstreamStatus"] == code and body["upstreamBody"] == {"meta": {"error": "boom"}}
    assert fake.methods() == ["DELETE"]  # 500/502 are not retry statuses, even for an idempotent method
    result, _ = await mcp_call(stack, "DELETE")
    assert tool_error(result) == {
        "ok": False,
        "error": "upstream_error",
        "status": code,
        "body": {"meta": {"error": "boom"}},
    }
    assert fake.methods() == ["DELETE", "DELETE"]
    await assert_healthy(stack, fake)


async def test_503_is_retried_for_delete_not_for_post(stack: Stack, fake: FaultUpstream) -> None:
    fake.mode = answer(503, b'{"meta":{"error":"busy"}}')
    status, headers, body, elapsed = await rest_call(stack, "DELETE")
    assert_problem(status, headers, body, 502, "upstream-error")
    assert body["upstreamStatus"] == 503 and elapsed < TIMEOUT + SLACK
    assert fake.methods() == ["DELETE"] * 3  # one try + retries=2
    status, headers, body, _ = await rest_call(stack, "POST")
    assert_problem(status, headers, body, 502, "upstream-error")
    assert fake.methods() == ["DELETE"] * 3 + ["POST"]  # POST is not idempotent: one try only
    fake.hits.clear()
    assert tool_error((await mcp_call(stack, "DELETE"))[0])["status"] == 503
    assert tool_error((await mcp_call(stack, "POST"))[0])["status"] == 503
    assert fake.methods() == ["DELETE"] * 3 + ["POST"]
    await assert_healthy(stack, fake)


async def test_503_then_success_recovers_for_idempotent_methods(stack: Stack, fake: FaultUpstream) -> None:
    fake.mode = then(answer(503), answer(503), answer(200, b'{"done":1}'))
    status, _, body, _ = await rest_call(stack, "PUT")
    assert (status, body) == (200, {"done": 1})
    assert fake.methods() == ["PUT"] * 3
    fake.hits.clear()
    result, _ = await mcp_call(stack, "DELETE")
    assert result["isError"] is False and result["structuredContent"] == {"done": 1}
    assert fake.methods() == ["DELETE"] * 3


async def test_429_retry_after_is_honoured_for_idempotent_and_passed_through_for_post(
    stack: Stack, fake: FaultUpstream
) -> None:
    fake.mode = then(answer(429, b'{"meta":{"error":"slow down"}}', Retry_After="0.4"), answer(200, b'{"done":1}'))
    status, _, body, elapsed = await rest_call(stack, "DELETE")
    assert (status, body) == (200, {"done": 1})
    assert 0.4 <= elapsed < TIMEOUT + SLACK  # waited what the upstream asked, not the 50 ms backoff
    assert fake.methods() == ["DELETE", "DELETE"]

    fake.hits.clear()
    fake.mode = then(answer(429, b'{"meta":{"error":"slow down"}}', Retry_After="0.4"), answer(200, b'{"done":1}'))
    result, elapsed = await mcp_call(stack, "DELETE")
    assert result["isError"] is False and 0.4 <= elapsed < TIMEOUT + SLACK

    fake.hits.clear()
    fake.mode = answer(429, b'{"meta":{"error":"slow down"}}', Retry_After="0.4")
    status, headers, body, _ = await rest_call(stack, "POST")
    assert (status, body) == (429, {"meta": {"error": "slow down"}})  # 4xx passes through
    assert headers["Content-Type"].startswith("application/json")
    assert tool_error((await mcp_call(stack, "POST"))[0])["status"] == 429
    assert fake.methods() == ["POST", "POST"]  # never retried
    await assert_healthy(stack, fake)


async def test_retry_after_beyond_the_deadline_is_not_waited_for(stack: Stack, fake: FaultUpstream) -> None:
    fake.mode = answer(429, b'{"meta":{"error":"later"}}', Retry_After="30")
    status, _, body, elapsed = await rest_call(stack, "DELETE")
    assert (status, body) == (429, {"meta": {"error": "later"}})
    assert elapsed < 0.5 and fake.methods() == ["DELETE"]
    await assert_healthy(stack, fake)


async def test_4xx_passes_through_untouched(stack: Stack, fake: FaultUpstream) -> None:
    fake.mode = answer(404, b'{"meta":{"error":"no such customer"}}')
    status, _, body, _ = await rest_call(stack, "DELETE")
    assert (status, body) == (404, {"meta": {"error": "no such customer"}})
    assert tool_error((await mcp_call(stack, "DELETE"))[0]) == {
        "ok": False,
        "error": "upstream_error",
        "status": 404,
        "body": {"meta": {"error": "no such customer"}},
    }
    assert fake.methods() == ["DELETE", "DELETE"]
    await assert_healthy(stack, fake)


# --- unreachable, reset, timeouts --------------------------------------------------------------


async def test_connection_refused_is_502_within_the_timeout(fake: FaultUpstream) -> None:
    async with serving(f"http://127.0.0.1:{free_port()}") as dead:
        for method in ("DELETE", "POST"):
            status, headers, body, elapsed = await rest_call(dead, method)
            assert_problem(status, headers, body, 502, "upstream-unreachable")
            assert elapsed < TIMEOUT + SLACK
            result, elapsed = await mcp_call(dead, method)
            assert tool_error(result)["error"] == "upstream_unreachable" and elapsed < TIMEOUT + SLACK
        async with aiohttp.ClientSession() as session, session.get(dead.rest + "/health") as response:
            assert response.status == 200


async def test_connection_closed_before_an_answer_is_retried_only_when_idempotent(
    stack: Stack, fake: FaultUpstream
) -> None:
    fake.mode = close_before_answer
    status, headers, body, elapsed = await rest_call(stack, "DELETE")
    assert_problem(status, headers, body, 502, "upstream-unreachable")
    # 1 + retries=2 attempts; aiohttp itself resends an idempotent request once on a dropped
    # connection (RFC 9112 §9.3.1), so each attempt may reach the upstream twice
    assert 3 <= len(fake.hits) <= 6 and set(fake.methods()) == {"DELETE"} and elapsed < TIMEOUT + SLACK
    fake.hits.clear()
    status, headers, body, _ = await rest_call(stack, "POST")
    assert_problem(status, headers, body, 502, "upstream-unreachable")
    assert fake.methods() == ["POST"]  # not idempotent: exactly one try
    fake.hits.clear()
    assert tool_error((await mcp_call(stack, "DELETE"))[0])["error"] == "upstream_unreachable"
    assert 3 <= len(fake.hits) <= 6
    fake.hits.clear()
    assert tool_error((await mcp_call(stack, "POST"))[0])["error"] == "upstream_unreachable"
    assert fake.methods() == ["POST"]
    await assert_healthy(stack, fake)


@pytest.mark.parametrize("fault", [reset_mid_body, reset_mid_chunked_body], ids=["content-length", "chunked"])
@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_connection_reset_mid_body_is_502(stack: Stack, fake: FaultUpstream, method: str, fault: Mode) -> None:
    fake.mode = fault
    status, headers, body, elapsed = await rest_call(stack, method)
    assert_problem(status, headers, body, 502, "upstream-unreachable")
    assert elapsed < TIMEOUT + SLACK
    result, elapsed = await mcp_call(stack, method)
    assert tool_error(result)["error"] == "upstream_unreachable" and elapsed < TIMEOUT + SLACK
    assert fake.methods() == [method, method]  # the answer had started: never resent, even for DELETE
    await assert_healthy(stack, fake)


@pytest.mark.parametrize("fault", [slow_headers, hang_mid_body], ids=["slow-headers", "hang-mid-body"])
@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_timeouts_are_504_within_the_configured_timeout(
    stack: Stack, fake: FaultUpstream, fault: Mode, method: str
) -> None:
    fake.mode = fault
    status, headers, body, elapsed = await rest_call(stack, method)
    assert_problem(status, headers, body, 504, "upstream-timeout")
    assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + SLACK
    result, elapsed = await mcp_call(stack, method)
    assert tool_error(result)["error"] == "upstream_timeout"
    assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + SLACK
    assert len(fake.hits) == 2  # the total timeout bounds the call: no retry after it ran out
    await assert_healthy(stack, fake)


# --- bodies the runtime cannot use -------------------------------------------------------------


@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_an_answer_that_is_not_http_is_502_and_not_resent(stack: Stack, fake: FaultUpstream, method: str) -> None:
    fake.mode = not_http
    status, headers, body, elapsed = await rest_call(stack, method)
    assert_problem(status, headers, body, 502, "upstream-unreachable")
    assert elapsed < TIMEOUT + SLACK
    result, _ = await mcp_call(stack, method)
    assert tool_error(result)["error"] == "upstream_unreachable"
    assert fake.methods() == [method, method]
    await assert_healthy(stack, fake)


async def test_malformed_json_with_a_json_content_type_is_502(stack: Stack, fake: FaultUpstream) -> None:
    fake.mode = answer(200, b'{"ok": tru')
    status, headers, body, _ = await rest_call(stack, "DELETE")
    assert_problem(status, headers, body, 502, "upstream-failure")
    assert "not valid json" in body["detail"]
    result, _ = await mcp_call(stack, "DELETE")
    assert tool_error(result)["error"] == "failed"
    assert fake.methods() == ["DELETE", "DELETE"]
    await assert_healthy(stack, fake)


async def test_html_answer_for_a_json_operation(stack: Stack, fake: FaultUpstream) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    fake.mode = answer(200, page, "text/html")  # a 200 that is not JSON: unusable
    status, headers, body, _ = await rest_call(stack, "PUT")
    assert_problem(status, headers, body, 502, "upstream-failure")
    assert tool_error((await mcp_call(stack, "PUT"))[0])["error"] == "failed"

    fake.mode = answer(502, page, "text/html")  # an error page from a proxy in front of the upstream
    status, headers, body, _ = await rest_call(stack, "PUT")
    assert_problem(status, headers, body, 502, "upstream-error")
    assert body["upstreamStatus"] == 502 and "Bad Gateway" in body["upstreamBody"]
    error = tool_error((await mcp_call(stack, "PUT"))[0])
    assert error["status"] == 502 and "Bad Gateway" in error["body"]
    await assert_healthy(stack, fake)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_1_mb_body_arriving_in_pieces_passes_whole(stack: Stack, fake: FaultUpstream, chunked: bool) -> None:
    fake.mode = big_body(1024 * 1024, chunked)  # regression: the client once kept only the first piece read
    status, _, body, _ = await rest_call(stack, "DELETE")
    assert status == 200 and len(body["data"]) == 1024 * 1024 - len(b'{"data":""}')
    result, _ = await mcp_call(stack, "DELETE")
    assert result["isError"] is False and len(result["structuredContent"]["data"]) == 1024 * 1024 - len(b'{"data":""}')


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_50_mb_body_passes(fake: FaultUpstream, chunked: bool) -> None:
    size = 50 * 1024 * 1024  # under the 64 MB default of max_body_bytes: must be served whole
    fake.mode = big_body(size, chunked)
    async with serving(fake.url, ClientSettings(total_timeout=30.0, retries=0)) as stack:
        status, _, body, _ = await rest_call(stack, "PUT")
        assert status == 200 and len(body["data"]) == size - len(b'{"data":""}')
        del body
        result, _ = await mcp_call(stack, "PUT")
        assert result["isError"] is False and len(result["structuredContent"]["data"]) == size - len(b'{"data":""}')
        del result
        await assert_healthy(stack, fake)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_configured_limit_is_502(fake: FaultUpstream, chunked: bool) -> None:
    fake.mode = big_body(64 * 1024, chunked)
    settings = ClientSettings(total_timeout=TIMEOUT, retries=2, backoff=0.05, max_body_bytes=16 * 1024)
    async with serving(fake.url, settings) as stack:
        status, headers, body, elapsed = await rest_call(stack, "DELETE")
        assert_problem(status, headers, body, 502, "upstream-failure")
        assert "exceeds" in body["detail"] and elapsed < TIMEOUT + SLACK
        result, _ = await mcp_call(stack, "DELETE")
        assert "exceeds" in tool_error(result)["message"]
        assert fake.methods() == ["DELETE", "DELETE"]  # too large is not a reason to try again
        fake.mode = big_body(8 * 1024, chunked)  # under the limit: served
        status, _, body, _ = await rest_call(stack, "DELETE")
        assert status == 200 and len(body["data"]) == 8 * 1024 - len(b'{"data":""}')
        await assert_healthy(stack, fake)


async def test_many_concurrent_faults_leave_the_server_healthy(stack: Stack, fake: FaultUpstream) -> None:
    modes = [
        answer(500),
        answer(503),
        reset_mid_body,
        close_before_answer,
        answer(200, b"{bad"),
        answer(404, b"{}"),
        answer(),
    ]
    fake.mode = lambda writer, method, hit: modes[hit % len(modes)](writer, method, hit)
    calls = [rest_call(stack, m) for m in ("DELETE", "POST", "PUT") * 10] + [
        mcp_call(stack, m) for m in ("DELETE", "POST", "PUT") * 10
    ]
    results = await asyncio.gather(*calls)
    statuses = {r[0] for r in results[:30]}
    assert statuses <= {200, 404, 502}
    assert all("isError" in r[0] for r in results[30:])
    await assert_healthy(stack, fake)

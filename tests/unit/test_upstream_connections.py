"""The pooled HTTP/1.1 client of consumed APIs, against real servers on 127.0.0.1: aiohttp
test servers for well-behaved answers, raw asyncio sockets for the byte-level misbehaviour."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from naftiko.consumes import connections
from naftiko.consumes.auth import DigestAuth
from naftiko.consumes.client import ClientSettings, NamespaceClient, UpstreamUnreachable
from naftiko.consumes.connections import (
    DEADLINE_TICK,
    MAX_HEAD,
    BodyTooLarge,
    BrokenAnswer,
    ConnectionFailed,
    ConnectionPool,
)
from naftiko.consumes.proxy import ProxyRules
from naftiko.consumes.request import OutgoingRequest
from naftiko.consumes.url import request_target
from support import self_signed

LIMIT = 64 * 1024


def new_pool(ssl_context: ssl.SSLContext | None = None) -> ConnectionPool:
    return ConnectionPool(connect_timeout=2.0, max_body_bytes=LIMIT, ssl_context=ssl_context)


async def call(
    pool: ConnectionPool, url: str, method: str = "GET", body: bytes | None = None, timeout: float = 5.0, **kwargs
):
    request = OutgoingRequest(
        method, url, kwargs.get("query", []), kwargs.get("headers", {}), kwargs.get("cookies", {}), body
    )
    return await pool.send(request, timeout)


def open_connections(pool: ConnectionPool) -> int:
    return sum(len(origin.all) for origin in pool._by_key.values())


# --- servers -------------------------------------------------------------------------------------


class Peers:
    """Counts the client connections an aiohttp app sees (by peer address)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def note(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(peer)

    @property
    def connections(self) -> int:
        return len(set(self.seen))


@asynccontextmanager
async def app_server(*routes: web.RouteDef, peers: Peers | None = None) -> AsyncIterator[str]:
    @web.middleware
    async def count(request: web.Request, handler):
        if peers is not None:
            peers.note(request)
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.add_routes(routes)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Raw:
    """A raw socket server: `serve` runs once per connection; `heads` are the requests read."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.connections = 0
        self.heads: list[str] = []
        self.tasks: set[asyncio.Task] = set()

    async def read(self, reader: asyncio.StreamReader) -> str | None:
        """One request head (its body is read and dropped), or None at the end of the stream."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        head = raw.decode("latin-1")
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length" and int(value):
                await reader.readexactly(int(value))
        self.heads.append(head)
        return head

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


@asynccontextmanager
async def raw_server(
    serve: Callable[[Raw, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[tuple[Raw, str]]:
    raw = Raw(lambda reader, writer: serve(raw, reader, writer))
    server = await asyncio.start_server(raw._connection, "127.0.0.1", 0)
    try:
        yield raw, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in list(raw.tasks):
            task.cancel()
        await asyncio.gather(*raw.tasks, return_exceptions=True)
        await server.wait_closed()


def answer(body: bytes = b"{}", *headers: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{version} {status}", "Content-Type: application/json", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def keep_answering(response: bytes) -> Callable[[Raw, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def serve(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await raw.read(reader) is not None:
            writer.write(response)
            await writer.drain()

    return serve


# --- keep-alive --------------------------------------------------------------------------------


async def test_sequential_calls_reuse_one_connection() -> None:
    peers = Peers()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    async with app_server(web.get("/{tail:.*}", ok), peers=peers) as base:
        pool = new_pool()
        for index in range(5):
            response = await call(pool, f"{base}/items/{index}")
            assert response.status == 200 and response.body == b'{"path": "/items/%d"}' % index
        await pool.close()
    assert peers.connections == 1 and len(peers.seen) == 5


async def test_concurrent_calls_use_several_connections() -> None:
    peers = Peers()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response({})

    async with app_server(web.get("/", slow), peers=peers) as base:
        pool = new_pool()
        responses = await asyncio.gather(*(call(pool, f"{base}/") for _ in range(4)))
        assert [r.status for r in responses] == [200] * 4
        assert open_connections(pool) == 4
        await call(pool, f"{base}/")  # an idle one is reused
        await pool.close()
    assert peers.connections == 4


async def test_calls_beyond_the_cap_wait_for_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "MAX_PER_ORIGIN", 2)
    peers = Peers()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.02)
        return web.json_response({})

    async with app_server(web.get("/", slow), peers=peers) as base:
        pool = new_pool()
        responses = await asyncio.gather(*(call(pool, f"{base}/") for _ in range(6)))
        assert [r.status for r in responses] == [200] * 6
        await pool.close()
    assert peers.connections == 2 and len(peers.seen) == 6


async def test_connection_close_is_not_reused() -> None:
    async with raw_server(keep_answering(answer(b"{}", "Connection: close"))) as (raw, base):
        pool = new_pool()
        for _ in range(3):
            assert (await call(pool, f"{base}/")).status == 200
        await pool.close()
    assert raw.connections == 3


async def test_http_1_0_without_keep_alive_is_not_reused() -> None:
    async with raw_server(keep_answering(answer(b"{}", version="HTTP/1.0"))) as (raw, base):
        pool = new_pool()
        for _ in range(2):
            assert (await call(pool, f"{base}/")).body == b"{}"
        await pool.close()
    assert raw.connections == 2


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    async def once_then_close(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(answer())  # keep-alive allowed, then the server changes its mind
        await writer.drain()

    async with raw_server(once_then_close) as (raw, base):
        pool = new_pool()
        assert (await call(pool, f"{base}/")).status == 200
        await asyncio.sleep(0.05)
        assert (await call(pool, f"{base}/", "POST", b"{}")).status == 200
        await pool.close()
    assert raw.connections == 2


async def drop_second_request(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers the first request of a connection, reads the second, then closes without a word
    (as a server does when it times the idle connection out just as the request arrives)."""
    head = await raw.read(reader)
    writer.write(answer(b"") if head and head.startswith("HEAD") else answer())
    await writer.drain()
    await raw.read(reader)
    writer.transport.abort()


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_written_non_idempotent_request_is_never_resent_on_a_reused_connection(method: str) -> None:
    async with raw_server(drop_second_request) as (raw, base):
        pool = new_pool()
        assert (await call(pool, f"{base}/a", method, b"1")).status == 200
        with pytest.raises(ConnectionFailed, match=f"a {method} is not sent twice"):
            await call(pool, f"{base}/b", method, b"2")
        assert open_connections(pool) == 0
        await pool.close()
    assert raw.connections == 1
    assert [head.split()[1] for head in raw.heads] == ["/a", "/b"]  # /b reached the server once


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_idempotent_request_is_resent_once_when_a_reused_connection_closes_unanswered(method: str) -> None:
    async with raw_server(drop_second_request) as (raw, base):
        pool = new_pool()
        assert (await call(pool, f"{base}/a", method)).status == 200
        assert (await call(pool, f"{base}/b", method)).status == 200
        await pool.close()
    assert raw.connections == 2
    assert [head.split()[1] for head in raw.heads] == ["/a", "/b", "/b"]


async def test_client_sends_a_post_once_when_a_reused_connection_closes_unanswered() -> None:
    async with raw_server(drop_second_request) as (raw, base):
        client = NamespaceClient("ns", None, ClientSettings(total_timeout=2.0, retries=2, backoff=0.01))
        assert (await client.send(OutgoingRequest("POST", f"{base}/a", body=b"1"))).status == 200
        with pytest.raises(UpstreamUnreachable, match=f"ns: cannot reach {base}: .*POST is not sent twice"):
            await client.send(OutgoingRequest("POST", f"{base}/b", body=b"2"))
        await client.close()
    assert [head.split()[1] for head in raw.heads] == ["/a", "/b"]


async def test_fresh_connection_closed_before_any_answer_is_a_connection_error() -> None:
    async def drop(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.transport.abort()

    async with raw_server(drop) as (raw, base):
        pool = new_pool()
        with pytest.raises(ConnectionFailed):
            await call(pool, f"{base}/", "POST", b"{}")
        await pool.close()
    assert raw.connections == 1


async def test_bytes_after_the_answer_are_not_reused() -> None:
    async with raw_server(keep_answering(answer() + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as (raw, base):
        pool = new_pool()
        for _ in range(2):
            assert (await call(pool, f"{base}/")).body == b"{}"
        await pool.close()
    assert raw.connections == 2


async def test_idle_connections_are_closed_after_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "IDLE_TIMEOUT", 0.05)
    async with raw_server(keep_answering(answer())) as (raw, base):
        pool = new_pool()
        await call(pool, f"{base}/")
        await asyncio.sleep(0.1)
        await call(pool, f"{base}/")
        assert open_connections(pool) == 1
        await pool.close()
    assert raw.connections == 2


# --- answers -----------------------------------------------------------------------------------


async def test_chunked_answer() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b"one,", b"two,", b"three"):
            await response.write(piece)
        await response.write_eof()
        return response

    async with app_server(web.get("/", chunked)) as base:
        pool = new_pool()
        for _ in range(2):
            response = await call(pool, f"{base}/")
            assert response.body == b"one,two,three" and response.headers.get("Content-Type") == "text/plain"
        assert open_connections(pool) == 1
        await pool.close()


async def test_gzip_answer_is_decoded() -> None:
    payload = b'{"items": [' + b'"x", ' * 1000 + b'"y"]}'
    seen: list[str] = []

    async def compressed(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Accept-Encoding", ""))
        response = web.Response(body=payload, content_type="application/json")
        response.enable_compression()
        return response

    async with app_server(web.get("/", compressed)) as base:
        pool = new_pool()
        response = await call(pool, f"{base}/")
        await pool.close()
    assert response.body == payload and response.headers.get("Content-Encoding") in ("gzip", "deflate")
    assert seen == ["gzip, deflate"]


@pytest.mark.parametrize(
    "encoded",
    [gzip.compress(b'{"a": 1}'), zlib.compress(b'{"a": 1}'), zlib.compress(b'{"a": 1}')[2:-4]],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_compressed_answers_by_hand(encoded: bytes) -> None:
    encoding = "gzip" if encoded[:2] == b"\x1f\x8b" else "deflate"
    async with raw_server(keep_answering(answer(encoded, f"Content-Encoding: {encoding}"))) as (_, base):
        pool = new_pool()
        assert (await call(pool, f"{base}/")).body == b'{"a": 1}'
        await pool.close()


async def test_compressed_answer_too_large_once_decoded() -> None:
    bomb = gzip.compress(b"0" * (LIMIT * 4))
    async with raw_server(keep_answering(answer(bomb, "Content-Encoding: gzip"))) as (_, base):
        pool = new_pool()
        with pytest.raises(BodyTooLarge):
            await call(pool, f"{base}/")
        await pool.close()


async def test_caller_accept_encoding_is_kept() -> None:
    async with raw_server(keep_answering(answer(b"plain"))) as (raw, base):
        pool = new_pool()
        await call(pool, f"{base}/", headers={"accept-encoding": "identity"})
        await pool.close()
    assert "accept-encoding: identity" in raw.heads[0] and "gzip" not in raw.heads[0]


async def test_head_and_204_and_304_have_no_body_and_keep_the_connection() -> None:
    async def serve(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await raw.read(reader)) is not None:
            if head.startswith("HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n")
            elif "/none" in head:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif "/same" in head:
                writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n')
            else:
                writer.write(answer(b"after"))
            await writer.drain()

    async with raw_server(serve) as (raw, base):
        pool = new_pool()
        head = await call(pool, f"{base}/", "HEAD")
        assert head.status == 200 and head.body == b"" and head.headers.get("Content-Length") == "1234"
        assert (await call(pool, f"{base}/none", "DELETE")).status == 204
        assert (await call(pool, f"{base}/same")).status == 304
        assert (await call(pool, f"{base}/")).body == b"after"
        await pool.close()
    assert raw.connections == 1


async def test_interim_1xx_answers_are_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    async with raw_server(keep_answering(interim + answer(b"[1]", "X-Final: yes"))) as (raw, base):
        pool = new_pool()
        for _ in range(2):
            response = await call(pool, f"{base}/", "POST", b"{}")
            assert response.status == 200 and response.body == b"[1]"
            assert response.headers.get("X-Final") == "yes" and "Link" not in response.headers
        await pool.close()
    assert raw.connections == 1


async def test_body_delimited_by_connection_close() -> None:
    async def serve(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()

    async with raw_server(serve) as (_, base):
        pool = new_pool()
        assert (await call(pool, f"{base}/")).body == b"all of it"
        await pool.close()


async def test_repeated_headers_are_all_kept() -> None:
    challenge = answer(
        b"",
        'WWW-Authenticate: Basic realm="a"',
        'WWW-Authenticate: Digest realm="b", nonce="n"',
        status="401 Unauthorized",
    )
    async with raw_server(keep_answering(challenge)) as (_, base):
        pool = new_pool()
        response = await call(pool, f"{base}/")
        await pool.close()
    assert response.headers.getall("www-authenticate") == ['Basic realm="a"', 'Digest realm="b", nonce="n"']


# --- limits and failures --------------------------------------------------------------------------


async def test_too_large_by_content_length() -> None:
    async with raw_server(keep_answering(answer(b"x" * (LIMIT + 1)))) as (_, base):
        pool = new_pool()
        with pytest.raises(BodyTooLarge) as caught:
            await call(pool, f"{base}/")
        assert caught.value.declared == LIMIT + 1
        assert open_connections(pool) == 0
        await pool.close()


async def test_too_large_while_reading_a_chunked_stream() -> None:
    async def stream(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"y" * 8192
        for _ in range(LIMIT // len(piece) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with raw_server(stream) as (_, base):
        pool = new_pool()
        with pytest.raises(BodyTooLarge) as caught:
            await call(pool, f"{base}/")
        assert caught.value.declared is None
        await pool.close()


def head_of(size: int, status: str = "200 OK", length: int | None = 2) -> bytes:
    """An answer head of exactly `size` bytes (its blank line included), padded by one header."""
    start = f"HTTP/1.1 {status}\r\n" + (f"Content-Length: {length}\r\n" if length is not None else "") + "X-Pad: "
    return (start + "p" * (size - len(start) - 4) + "\r\n\r\n").encode("latin-1")


async def test_answer_head_of_exactly_max_head_bytes_is_read_and_one_more_is_refused() -> None:
    async with raw_server(keep_answering(head_of(MAX_HEAD) + b"{}")) as (raw, base):
        pool = new_pool()
        for _ in range(2):
            response = await call(pool, f"{base}/")
            assert response.body == b"{}" and len(response.headers["X-Pad"]) > MAX_HEAD - 100
        await pool.close()
    assert raw.connections == 1
    async with raw_server(keep_answering(head_of(MAX_HEAD + 1) + b"{}")) as (_, base):
        pool = new_pool()
        with pytest.raises(BrokenAnswer, match="the answer's head exceeds 65,536 bytes"):
            await call(pool, f"{base}/")
        assert open_connections(pool) == 0
        await pool.close()


async def test_interim_heads_count_towards_the_head_bound() -> None:
    interim = head_of(MAX_HEAD // 4, "103 Early Hints", None)
    async with raw_server(keep_answering(interim * 3 + head_of(MAX_HEAD // 4 - 1) + b"{}")) as (_, base):
        pool = new_pool()
        assert (await call(pool, f"{base}/")).body == b"{}"  # 65,535 bytes of heads in all
        await pool.close()
    async with raw_server(keep_answering(interim * 4 + head_of(200) + b"{}")) as (_, base):
        pool = new_pool()
        with pytest.raises(BrokenAnswer, match="head exceeds"):
            await call(pool, f"{base}/")
        await pool.close()


async def test_endless_header_line_is_refused_after_max_head_bytes() -> None:
    """No CRLF ever comes: llhttp would buffer the line for as long as it grows."""
    sent = 0

    async def endless(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        piece = b"z" * 16384
        while sent < 64 * 1024 * 1024:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()

    async with raw_server(endless) as (_, base):
        pool = new_pool()
        with pytest.raises(BrokenAnswer, match="the answer's head exceeds 65,536 bytes"):
            await call(pool, f"{base}/", timeout=10.0)
        await pool.close()
    assert sent < 16 * 1024 * 1024  # refused early, not when the server gave up


async def test_truncated_body_is_a_broken_answer() -> None:
    async def truncate(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()

    async with raw_server(truncate) as (_, base):
        pool = new_pool()
        with pytest.raises(BrokenAnswer):
            await call(pool, f"{base}/", "GET")
        await pool.close()


async def test_not_http_is_a_broken_answer() -> None:
    async with raw_server(keep_answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as (_, base):
        pool = new_pool()
        with pytest.raises(BrokenAnswer):
            await call(pool, f"{base}/")
        assert open_connections(pool) == 0
        await pool.close()


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        pool = new_pool()
        with pytest.raises(ConnectionFailed):
            await call(pool, f"http://127.0.0.1:{port}/")
        assert open_connections(pool) == 0


async def test_timeout_leaves_no_task_and_discards_the_connection() -> None:
    async def stall(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
        await writer.drain()
        await asyncio.sleep(30)

    async with raw_server(stall) as (raw, base):
        pool = new_pool()
        before = asyncio.all_tasks()
        with pytest.raises(TimeoutError):
            await call(pool, f"{base}/", timeout=0.2)
        assert asyncio.all_tasks() - raw.tasks == before  # the server's own task still sleeps
        assert open_connections(pool) == 0
        await pool.close()


async def test_deadlines_are_watched_only_while_calls_are_in_flight() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    async with app_server(web.get("/{tail:.*}", ok)) as base:
        pool = new_pool()
        await call(pool, f"{base}/")
        assert pool._watcher is not None  # one timer for the pool, armed by the call
        await asyncio.sleep(DEADLINE_TICK * 3)
        assert pool._watcher is None and not pool._in_flight  # nothing ticks on an idle pool
        await pool.close()


async def test_header_with_a_newline_is_refused() -> None:
    pool = new_pool()
    with pytest.raises(ValueError) as caught:
        await call(pool, "http://127.0.0.1:9/", headers={"X-A": "a\r\nX-Injected: 1"})
    assert "X-Injected" not in str(caught.value)


async def test_client_messages_name_the_origin() -> None:
    async with raw_server(keep_answering(b"garbage\r\n\r\n")) as (_, base):
        client = NamespaceClient("ns", None, ClientSettings(total_timeout=2.0, retries=0))
        with pytest.raises(UpstreamUnreachable, match=f"ns: broken answer from {base}: "):
            await client.send(OutgoingRequest("GET", f"{base}/x", headers={"Authorization": "Bearer s3cr3t"}))
        await client.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        client = NamespaceClient("ns", None, ClientSettings(total_timeout=2.0, retries=0))
        with pytest.raises(UpstreamUnreachable, match=f"ns: cannot reach {url}: "):
            await client.send(OutgoingRequest("GET", f"{url}/x"))
        await client.close()


# --- the request ---------------------------------------------------------------------------------


async def test_request_head() -> None:
    async with raw_server(keep_answering(answer())) as (raw, base):
        pool = new_pool()
        await call(pool, f"{base}/a%2Fb/c", "POST", headers={"X-Case": "Kept"}, cookies={"s": "1", "t": "a b"})
        await call(pool, f"{base}/empty", "PUT")
        await call(pool, f"{base}/bytes", "PATCH", b"\x00\x01")
        await pool.close()
    port = base.rsplit(":", 1)[1]
    first, empty, data = (head.split("\r\n") for head in raw.heads)
    assert first[0] == "POST /a%2Fb/c HTTP/1.1" and f"Host: 127.0.0.1:{port}" in first
    assert "X-Case: Kept" in first and 'Cookie: s=1; t="a b"' in first and "Content-Length: 0" in first
    assert "Content-Length: 0" in empty
    assert "Content-Length: 2" in data and "Content-Type: application/octet-stream" in data


async def test_query_is_encoded_as_digest_auth_signs_it() -> None:
    query = [("q", "a b+c&d=e;f#g%h/?:@"), ("ünï", "€"), ("empty", ""), ("q", "2")]
    async with raw_server(keep_answering(answer())) as (raw, base):
        request = OutgoingRequest("GET", f"{base}/search/x%20y", query=list(query))
        auth = DigestAuth("user", "pass")
        headers = {"WWW-Authenticate": 'Digest realm="r", nonce="n1", qop="auth"'}
        assert auth.answer_challenge(request, 401, headers)
        pool = new_pool()
        await call(pool, request.url, query=request.query, headers=request.headers)
        await pool.close()
    target = raw.heads[0].split(" ")[1]
    assert f'uri="{target}"' in request.headers["Authorization"]
    assert target == "/search/x%20y?q=a+b%2Bc%26d%3De%3Bf%23g%25h/?:@&%C3%BCn%C3%AF=%E2%82%AC&empty=&q=2"


async def test_ipv6_literal_host() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = await asyncio.start_server(lambda r, w: None, "::1", 0)
    except OSError:
        pytest.skip("::1 is not available on this machine")
    server.close()
    await server.wait_closed()

    raw = Raw(lambda reader, writer: keep_answering(answer())(raw, reader, writer))
    server = await asyncio.start_server(raw._connection, "::1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = new_pool()
    try:
        assert (await call(pool, f"http://[::1]:{port}/v6")).status == 200
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
    assert f"Host: [::1]:{port}" in raw.heads[0]


async def test_https_with_a_trusted_local_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(cert_file))

    raw = Raw(lambda reader, writer: keep_answering(answer(b'{"tls": true}'))(raw, reader, writer))
    server = await asyncio.start_server(raw._connection, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    pool = new_pool(client_context)
    try:
        for _ in range(2):
            assert (await call(pool, f"https://127.0.0.1:{port}/secure")).body == b'{"tls": true}'
        untrusting = new_pool()
        with pytest.raises(ConnectionFailed):
            await call(untrusting, f"https://127.0.0.1:{port}/secure")
        await untrusting.close()
    finally:
        await pool.close()
        server.close()
        for task in list(raw.tasks):
            task.cancel()
        await asyncio.gather(*raw.tasks, return_exceptions=True)
        await server.wait_closed()
    assert raw.connections == 1  # reused; the untrusting pool's handshake never got that far
    assert f"Host: 127.0.0.1:{port}" in raw.heads[0]


# --- proxies (the engine-level tests with a working proxy are in tests/integration/test_upstream_hostile.py)


def proxied_pool(proxy_base: str) -> ConnectionPool:
    rules = ProxyRules.from_environ(
        {"HTTPS_PROXY": proxy_base.replace("http://", "http://user:hunter2@"), "HTTP_PROXY": proxy_base}
    )
    return ConnectionPool(connect_timeout=2.0, max_body_bytes=LIMIT, proxies=rules)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"", "closed the connection before answering CONNECT"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "answered CONNECT with something that is not HTTP"),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * MAX_HEAD, f"answered CONNECT with a head over {MAX_HEAD:,} bytes"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "answered 403 Forbidden to CONNECT upstream.test:443"),
    ],
    ids=["closed", "not-http", "head-too-long", "refused"],
)
async def test_a_connect_that_fails_is_a_connection_failure_naming_the_proxy(reply: bytes, message: str) -> None:
    async def proxy(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(0.5 if reply else 0)

    async with raw_server(proxy) as (raw, base):
        pool = proxied_pool(base)
        with pytest.raises(ConnectionFailed) as caught:
            await call(pool, "https://upstream.test/x", "POST", b"{}")
        assert f"the proxy {base} {message}" in str(caught.value) and "hunter2" not in str(caught.value)
        assert open_connections(pool) == 0
        await pool.close()
    assert raw.heads[0].startswith("CONNECT upstream.test:443 HTTP/1.1\r\nHost: upstream.test:443\r\n")
    assert "Proxy-Authorization: Basic dXNlcjpodW50ZXIy" in raw.heads[0]


async def test_an_unreachable_proxy_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{probe.getsockname()[1]}"
        pool = proxied_pool(base)
        for url in ("http://upstream.test/x", "https://upstream.test/x"):
            with pytest.raises(ConnectionFailed, match=f"the proxy {base}: "):
                await call(pool, url)
        await pool.close()


async def test_http_through_a_proxy_is_absolute_form_on_one_kept_alive_connection() -> None:
    async with raw_server(keep_answering(answer())) as (raw, base):
        pool = proxied_pool(base)
        for path in ("/a", "/b"):
            assert (await call(pool, f"http://upstream.test:8080{path}", query=[("x", "y z")])).status == 200
        await pool.close()
    assert raw.connections == 1
    assert [head.split("\r\n")[0] for head in raw.heads] == [
        "GET http://upstream.test:8080/a?x=y+z HTTP/1.1",
        "GET http://upstream.test:8080/b?x=y+z HTTP/1.1",
    ]
    assert all(
        "Host: upstream.test:8080\r\n" in head and "Proxy-Authorization" not in head for head in raw.heads
    )  # no credentials in HTTP_PROXY


def test_request_target_encodes_the_query_as_yarl_did() -> None:
    """The wire format is unchanged from the aiohttp client (upstreams may sign or cache by it)."""
    tricky = [
        "",
        "plain",
        "a b",
        "a+b",
        "&=;#%",
        "%41",
        "/?:@!$'()*,",
        '[]{}|\\^`"<>',
        "ünï€😀",
        "\x00\t\x7f",
        "\ud800",
    ]
    query = [(key, value) for key in ("k", "k y", "€") for value in tricky]
    expected = URL("http://h/base/x%2Fy", encoded=True).extend_query(query).raw_path_qs
    assert request_target("/base/x%2Fy", query) == expected
    assert request_target("/p", []) == "/p"

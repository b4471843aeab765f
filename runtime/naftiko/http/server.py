"""Our HTTP/1.1 server: one `asyncio.Protocol` per connection, parsed by llhttp (httptools).

Why not aiohttp's server: a bare aiohttp proxy already spends more CPU per call than DESIGN §6
allows the whole runtime (bench/RESULTS.md). This server does only what the runtime needs:
keep-alive and pipelined requests answered in order, bodies read whole up to a limit (a larger
one is read and dropped, and the handler sees `oversized`), `Expect: 100-continue`, HEAD, and a
graceful stop that lets in-flight requests finish. Timers are one per server, not per request:
a sweep each second refreshes the Date header and closes connections idle past the keep-alive
timeout or stuck mid-request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .messages import Request, Response

log = logging.getLogger("naftiko.http")

Handler = Callable[[Request], Awaitable[Response]]

KEEPALIVE_TIMEOUT = 75.0  # seconds an idle connection is kept
REQUEST_TIMEOUT = 60.0  # seconds from a request's first byte to its last
MAX_PIPELINED = 16  # requests queued on one connection before reading pauses
MAX_HEAD = 64 * 1024  # bytes of request line and headers
MAX_DROPPED_BODY = 64 * 1024 * 1024  # an oversized body is read and dropped up to this, then the connection closes
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


def _final_answer(status: int, kind: str, title: str, detail: str) -> bytes:
    """A problem+json answer written before closing a connection that cannot go on."""
    body = f'{{"type":"https://naftiko.dev/problems/{kind}","title":"{title}","status":{status},"detail":"{detail}"}}'.encode()
    head = f"Content-Type: application/problem+json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return _STATUS_LINES[status] + head + body


_BAD_REQUEST = _final_answer(400, "bad-request", "Bad request", "the request is not valid HTTP/1.1")
_NO_UPGRADE = _final_answer(400, "bad-request", "Bad request", "protocol upgrades are not supported")
_HEAD_TOO_LARGE = _final_answer(431, "headers-too-large", "Request header fields too large", f"the request line and headers are limited to {MAX_HEAD:,} bytes")


class _HeadTooLarge(Exception):
    pass


class HttpServer:
    """Serves `handler` on one address and port."""

    def __init__(self, handler: Handler, max_body: int):
        self.handler = handler
        self.max_body = max_body
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.date = b""
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained = asyncio.Event()

    async def listen(self, address: str, port: int) -> int:
        """Start listening; returns the port (the one chosen by the system when `port` is 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), address, port, reuse_address=True, backlog=1024)
        self._sweep()
        return self._server.sockets[0].getsockname()[1]

    async def close(self, timeout: float = 30.0) -> None:
        """Stop listening, close idle connections, let requests in flight finish (at most
        `timeout` seconds), then close whatever is left."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                for connection in list(self.connections):
                    connection.abort()

    def forget(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if self.stopping and not self.connections:
            self._drained.set()

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.date = formatdate(usegmt=True).encode()
        for connection in list(self.connections):
            connection.expire(now)
        self._sweeper = loop.call_at(now + 1.0, self._sweep)


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer):
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Request | bytes] = deque()  # requests to answer in order; bytes: a final error answer
        self.busy = False
        self.reading = True
        self.in_message = False
        self.failed = False
        self.since = self.loop.time()
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pending.clear()
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_NO_UPGRADE)
        except httptools.HttpParserCallbackError as exc:
            self._fail(_HEAD_TOO_LARGE if isinstance(exc.__cause__ or exc.__context__, _HeadTooLarge) else _BAD_REQUEST)
        except httptools.HttpParserError:
            self._fail(_BAD_REQUEST)

    def _fail(self, answer: bytes) -> None:
        """Answer what came before in order, then `answer`, then close."""
        self.failed = True
        self.pending.append(answer)
        self._pause()
        self._next()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.since = self.loop.time()
        self._url, self._headers, self._body, self._size, self._head_size = [], [], [], 0, 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self.server.max_body:
            self._body.append(body)
        elif self._size > MAX_DROPPED_BODY:
            raise httptools.HttpParserError("body too large to drop")

    def on_message_complete(self) -> None:
        self.in_message = False
        oversized = self._size > self.server.max_body
        target = b"".join(self._url).decode("utf-8", "surrogateescape")
        request = Request(
            self.parser.get_method().decode("ascii"),
            target if target.startswith("/") or target == "*" else _origin_form(target),
            CIMultiDictProxy(CIMultiDict(self._headers)),
            b"" if oversized else b"".join(self._body),
            self.parser.should_keep_alive() and not oversized,
            oversized,
        )
        self.pending.append(request)
        if len(self.pending) > MAX_PIPELINED:
            self._pause()
        self._next()

    # -- answering -----------------------------------------------------------------------------

    def _next(self) -> None:
        if self.busy or not self.pending or self.transport is None:
            return
        item = self.pending.popleft()
        if isinstance(item, bytes):
            self.transport.write(item)
            self.transport.close()
            return
        self.busy = True
        self.loop.create_task(self._answer(item))

    async def _answer(self, request: Request) -> None:
        try:
            response = await self.server.handler(request)
        except Exception:  # noqa: BLE001 - the handler logs its own; this is the last guard
            log.exception("unhandled error on %s", request.method)
            response = Response(500, b'{"title":"Internal error","status":500}', content_type="application/problem+json")
        self.busy = False
        self.since = self.loop.time()
        transport = self.transport
        if transport is None:
            return
        keep_alive = request.keep_alive and not self.server.stopping
        transport.write(self._encode(request, response, keep_alive))
        if not keep_alive:
            transport.close()
            return
        if not self.reading and len(self.pending) <= MAX_PIPELINED // 2:
            self.reading = True
            transport.resume_reading()
        self._next()

    def _encode(self, request: Request, response: Response, keep_alive: bool) -> bytes:
        body = response.body
        lines = [f"{name}: {value}\r\n" for name, value in response.headers.items() if "\n" not in value and "\r" not in value]
        head = (
            _STATUS_LINES.get(response.status) or f"HTTP/1.1 {response.status} Unknown\r\n".encode(),
            "".join(lines).encode("utf-8"),
            b"Content-Length: %d\r\nDate: %s\r\n" % (len(body), self.server.date),
            b"\r\n" if keep_alive else b"Connection: close\r\n\r\n",
        )
        if request.method == "HEAD" or response.status in (204, 304):
            return b"".join(head)
        return b"".join((*head, body))

    # -- lifecycle -----------------------------------------------------------------------------

    def _pause(self) -> None:
        if self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()

    def close_if_idle(self) -> None:
        if not self.busy and not self.pending and not self.in_message and self.transport is not None:
            self.transport.close()

    def expire(self, now: float) -> None:
        if self.busy or self.pending:
            return
        limit = REQUEST_TIMEOUT if self.in_message else KEEPALIVE_TIMEOUT
        if now - self.since > limit and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _origin_form(target: str) -> str:
    """`http://host/path?q` (absolute form, as sent to proxies) → `/path?q`."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return "/" + target
    path = rest[rest.find("/") :] if "/" in rest else "/"
    return path

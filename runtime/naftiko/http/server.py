"""Our HTTP/1.1 server: one `asyncio.Protocol` per connection, parsed by llhttp (httptools).

Why not aiohttp's server: a bare aiohttp proxy already spends more CPU per call than DESIGN §6
allows the whole runtime (bench/RESULTS.md). This server does only what the runtime needs:
keep-alive and pipelined requests answered in order, bodies read whole up to a limit (a larger
one is read and dropped, and the handler sees `oversized`), `Expect: 100-continue`, HEAD, and a
graceful stop that lets in-flight requests finish.

What a hostile client meets (the bounds are `ServerLimits`):
- the request head is counted on bytes received, before llhttp buffers an unfinished line:
  past `max_head_bytes`, 431 and close;
- write back-pressure: while the transport holds more than `write_buffer_bytes` of unsent
  answers, or `max_pipelined` requests wait, the connection is not read (`_Flow`), so a client
  that pipelines and never reads costs one buffer, not every answer;
- a connection past `max_connections` is answered 503 and closed at once;
- a head must arrive within `header_timeout`, a body within `body_timeout`; an idle connection
  is closed after `keep_alive_timeout`;
- an error answer that ends a connection is followed by a lingering close: our side is shut
  for writing and what the client still sends is read and dropped for `linger_timeout`, so the
  answer is not lost to a reset.
A `StreamingResponse` (server-sent events) is written chunked as its stream yields, each chunk
after the client has read enough of the previous ones (`_Flow.drained`); the stream is closed
when the client goes away or the server stops, and a client that stops reading it is cut after
`keep_alive_timeout`, like any stalled connection.
Timers are one per server, not per request: a sweep each second refreshes the Date header and
applies the timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from socket import socket

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .limits import ServerLimits
from .messages import Request, Response, StreamingResponse

log = logging.getLogger("naftiko.http")

Handler = Callable[[Request], Awaitable[Response]]

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


def _final_answer(status: int, kind: str, title: str, detail: str) -> bytes:
    """A problem+json answer written before closing a connection that cannot go on."""
    body = f'{{"type":"https://naftiko.dev/problems/{kind}","title":"{title}","status":{status},"detail":"{detail}"}}'.encode()
    head = (
        f"Content-Type: application/problem+json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    return _STATUS_LINES[status] + head + body


_BAD_REQUEST = _final_answer(400, "bad-request", "Bad request", "the request is not valid HTTP/1.1")
_NO_UPGRADE = _final_answer(400, "bad-request", "Bad request", "protocol upgrades are not supported")
_BAD_HOST = _final_answer(400, "bad-request", "Bad request", "an HTTP/1.1 request needs exactly one Host header")


class _HeadTooLarge(Exception):
    pass


class HttpServer:
    """Serves `handler` on one address and port, within `limits`; over TLS when `ssl` is given."""

    def __init__(self, handler: Handler, limits: ServerLimits | None = None, ssl_context: ssl.SSLContext | None = None):
        self.handler = handler
        self.limits = limits = limits or ServerLimits()
        self.ssl = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.date = b""
        self.head_too_large = _final_answer(
            431,
            "headers-too-large",
            "Request header fields too large",
            f"the request line and headers are limited to {limits.max_head_bytes:,} bytes",
        )
        self.too_many = _final_answer(
            503,
            "too-many-connections",
            "Service unavailable",
            f"this server holds at most {limits.max_connections:,} connections",
        )
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained = asyncio.Event()

    async def listen(self, address: str, port: int, sock: socket | None = None, reuse_port: bool = False) -> int:
        """Start listening (on `sock` when given); returns the port (the system's choice when `port` is 0).
        `reuse_port`: share the port with other processes that set it too (SO_REUSEPORT: the
        kernel spreads new connections over them; `--workers N`)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(lambda: _Connection(self), sock=sock, backlog=1024, ssl=self.ssl)
        else:
            self._server = await loop.create_server(
                lambda: _Connection(self),
                address,
                port,
                reuse_address=True,
                reuse_port=reuse_port or None,
                backlog=1024,
                ssl=self.ssl,
            )
        self._sweep()
        return self._server.sockets[0].getsockname()[1]

    async def close(self, timeout: float | None = None) -> None:
        """Stop listening, close idle connections, let requests in flight finish (at most
        `timeout` seconds, default the limits' `stop_timeout`), then close whatever is left."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.close_if_idle()
            connection.end_stream()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), self.limits.stop_timeout if timeout is None else timeout)
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


class _Flow:
    """Whether a connection may be read: not while the client leaves our answers unread
    (the transport's write buffer is past its high-water mark) nor while too many of its
    requests wait. uvicorn's flow_control, plus the reading side."""

    __slots__ = ("transport", "reading", "writing", "waiter")

    def __init__(self, transport: asyncio.Transport, limits: ServerLimits):
        self.transport = transport
        self.reading = True
        self.writing = True  # False while the transport's buffer is past the high-water mark
        self.waiter: asyncio.Future[None] | None = None  # a streaming answer waiting for `writing`
        transport.set_write_buffer_limits(high=limits.write_buffer_bytes)

    async def drained(self) -> None:
        """Return once the transport's buffer is below its high-water mark again."""
        while not self.writing:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def resume(self) -> None:
        self.writing = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def pause_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.transport.resume_reading()


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer):
        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.flow: _Flow | None = None
        self.client = ""
        self.pending: deque[Request | bytes] = deque()  # requests to answer in order; bytes: a final error answer
        self.busy = False
        self.streaming: asyncio.Task[None] | None = None  # writing a StreamingResponse's chunks
        self.in_message = False
        self.in_head = True  # the next bytes belong to a request head (counted against max_head_bytes)
        self.head_received = 0
        self.heads = 0  # heads completed on this connection
        self.failed = False
        self.stalled_since = 0.0  # loop time the client stopped reading our answers
        self.lingering = False
        self.since = self.loop.time()
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._hosts = 0
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.server.connections) >= self.limits.max_connections:
            self.failed = True
            transport.write(self.server.too_many)  # type: ignore[attr-defined]
            transport.close()
            return
        self.flow = _Flow(self.transport, self.limits)  # type: ignore[arg-type]
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else ""
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pending.clear()
        self.end_stream()
        self.server.forget(self)

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.writing = False
            self.flow.pause_reading()
            self.stalled_since = self.loop.time()

    def resume_writing(self) -> None:
        if self.flow is not None:
            self.flow.resume()
            self._update_reading()
            self._next()

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return  # lingering, or refused: what the client still sends is dropped
        while self.in_head:
            room = self.limits.max_head_bytes - self.head_received
            if len(data) <= room:
                self.head_received += len(data)
                self._feed(data)
                return
            piece, data = data[:room], data[room:]
            self.head_received += room
            heads = self.heads
            self._feed(piece)
            if self.failed:
                return
            if self.in_head and self.heads == heads:  # the budget is spent and this head is not complete
                self._fail(self.server.head_too_large)
                return
        self._feed(data)

    def eof_received(self) -> bool | None:
        if self.lingering and self.transport is not None:
            self.transport.close()
        return None

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.failed:  # a callback refused the request and queued its answer
                return
            if isinstance(exc, httptools.HttpParserUpgrade):
                self._fail(_NO_UPGRADE)
            elif isinstance(exc, httptools.HttpParserCallbackError):
                self._fail(
                    self.server.head_too_large
                    if isinstance(exc.__cause__ or exc.__context__, _HeadTooLarge)
                    else _BAD_REQUEST
                )
            else:
                self._fail(_BAD_REQUEST)

    def _fail(self, answer: bytes) -> None:
        """Answer what came before in order, then `answer`, then close."""
        self.failed = True
        self.in_head = False
        self.pending.append(answer)
        if self.flow is not None:
            self.flow.pause_reading()
        self._next()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.since = self.loop.time()
        self._url, self._headers, self._body, self._size, self._head_size, self._hosts = [], [], [], 0, 0, 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self.limits.max_head_bytes:
            raise _HeadTooLarge
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.limits.max_head_bytes:
            raise _HeadTooLarge
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))
        if len(name) == 4 and name.lower() == b"host":
            self._hosts += 1
        elif (
            len(name) == 6
            and name.lower() == b"expect"
            and value.lower() == b"100-continue"
            and self.transport is not None
        ):
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.heads += 1
        self.since = self.loop.time()  # the body timeout runs from here

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self.limits.max_body_bytes:
            self._body.append(body)
        elif self._size > self.limits.max_dropped_body_bytes:
            raise httptools.HttpParserError("body too large to drop")

    def on_message_complete(self) -> None:
        self.in_message = False
        self.in_head, self.head_received = True, 0
        if self.failed:
            return
        if self._hosts > 1 or (self._hosts == 0 and self.parser.get_http_version() == "1.1"):
            self._fail(_BAD_HOST)
            raise httptools.HttpParserError("Host")  # stop parsing what follows; _feed sees `failed`
        oversized = self._size > self.limits.max_body_bytes
        target = b"".join(self._url).decode("utf-8", "surrogateescape")
        request = Request(
            self.parser.get_method().decode("ascii"),
            target if target.startswith("/") or target == "*" else _origin_form(target),
            CIMultiDictProxy(CIMultiDict(self._headers)),
            b"" if oversized else b"".join(self._body),
            self.parser.should_keep_alive() and not oversized,
            oversized,
            self.client,
            self.server.scheme,
        )
        self.pending.append(request)
        if len(self.pending) > self.limits.max_pipelined and self.flow is not None:
            self.flow.pause_reading()
        self._next()

    # -- answering -----------------------------------------------------------------------------

    def _next(self) -> None:
        if self.busy or not self.pending or self.transport is None or self.lingering:
            return
        if self.flow is not None and not self.flow.writing:
            return  # resume_writing calls again once the client has read
        item = self.pending.popleft()
        if isinstance(item, bytes):
            self.transport.write(item)
            self._linger()
            return
        self.busy = True
        self.loop.create_task(self._answer(item))

    async def _answer(self, request: Request) -> None:
        try:
            response = await self.server.handler(request)
        except Exception:  # noqa: BLE001 - the handler logs its own; this is the last guard
            log.exception("unhandled error on %s", request.method)
            response = Response(
                500, b'{"title":"Internal error","status":500}', content_type="application/problem+json"
            )
        keep_alive = request.keep_alive and not self.server.stopping
        streamed = isinstance(response, StreamingResponse)
        if streamed:
            keep_alive = await self._stream(request, response, keep_alive)  # type: ignore[arg-type]
        self.busy = False
        self.since = self.loop.time()
        transport = self.transport
        if transport is None:
            return
        if not streamed:
            transport.write(self._encode(request, response, keep_alive))
        if not keep_alive:
            self._linger()
            return
        self._update_reading()
        self._next()

    def _update_reading(self) -> None:
        flow = self.flow
        if (
            flow is not None
            and not flow.reading
            and flow.writing
            and not self.failed
            and len(self.pending) <= self.limits.max_pipelined // 2
        ):
            flow.resume_reading()

    async def _stream(self, request: Request, response: StreamingResponse, keep_alive: bool) -> bool:
        """Write a streaming answer (the connection stays busy meanwhile); whether the connection
        may serve another request after it. The stream's `aclose()` is called whatever happens."""
        stream = response.stream
        try:
            if self.transport is None:
                return False
            self.transport.write(self._encode(request, response, keep_alive, streamed=True))
            if request.method == "HEAD":
                return keep_alive
            self.streaming = task = self.loop.create_task(self._pump(stream))
            await asyncio.wait((task,))
            self.streaming = None
            if not task.cancelled() and task.exception() is not None:
                log.error("a streaming answer failed on %s", request.method, exc_info=task.exception())
                keep_alive = False
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if self.transport is None:
            return False
        self.transport.write(b"0\r\n\r\n")
        return keep_alive and not self.server.stopping

    async def _pump(self, stream: AsyncIterator[bytes]) -> None:
        async for chunk in stream:
            if self.transport is None:
                return
            if chunk:
                self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if self.flow is not None and not self.flow.writing:
                await self.flow.drained()

    def end_stream(self) -> None:
        """Stop the streaming answer being written, if any (the client left, or the server stops)."""
        if self.streaming is not None:
            self.streaming.cancel()

    def _encode(self, request: Request, response: Response, keep_alive: bool, streamed: bool = False) -> bytes:
        body = response.body
        lines = [
            f"{name}: {value}\r\n"
            for name, value in response.headers.items()
            if "\n" not in value and "\r" not in value
        ]
        head = (
            _STATUS_LINES.get(response.status) or f"HTTP/1.1 {response.status} Unknown\r\n".encode(),
            "".join(lines).encode("utf-8"),
            b"Transfer-Encoding: chunked\r\nDate: %s\r\n" % self.server.date
            if streamed
            else b"Content-Length: %d\r\nDate: %s\r\n" % (len(body), self.server.date),
            b"\r\n" if keep_alive else b"Connection: close\r\n\r\n",
        )
        if request.method == "HEAD" or response.status in (204, 304) or streamed:
            return b"".join(head)
        return b"".join((*head, body))

    # -- lifecycle -----------------------------------------------------------------------------

    def _linger(self) -> None:
        """Close after the last answer without losing it: shut our side for writing, then read
        and drop what the client still sends until it closes or `linger_timeout` passes. A
        plain close with unread bytes makes the kernel send a reset, which can destroy the
        answer before the client reads it."""
        transport = self.transport
        if transport is None:
            return
        self.failed = self.lingering = True
        self.pending.clear()
        self.since = self.loop.time()
        if not transport.can_write_eof():  # TLS: close_notify after the buffer is flushed
            transport.close()
            return
        transport.write_eof()
        if self.flow is not None:
            self.flow.resume_reading()

    def close_if_idle(self) -> None:
        if not self.busy and not self.pending and not self.in_message and self.transport is not None:
            self.transport.close()

    def expire(self, now: float) -> None:
        if self.transport is None or self.busy and self.streaming is None:
            return
        if self.flow is not None and not self.flow.writing:
            # The client reads none of our answers: a write timeout, as long as keep-alive.
            if now - self.stalled_since > self.limits.keep_alive_timeout:
                self.transport.abort()
            return
        if self.pending or self.streaming is not None:
            return
        if self.lingering:
            limit = self.limits.linger_timeout
        elif not self.in_message:
            limit = self.limits.keep_alive_timeout
        else:
            limit = self.limits.header_timeout if self.in_head else self.limits.body_timeout
        if now - self.since > limit:
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

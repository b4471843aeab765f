"""Pooled keep-alive HTTP/1.1 connections to upstream origins, parsed by httptools (llhttp):
the `UpstreamTransport` of every consumed namespace (transport.py).

Per call: one request head built as one string and one future; nothing else outlives the
call. Deadlines are watched by one timer per pool, every `DEADLINE_TICK` seconds while calls
are in flight, not by a timer per call (a uvloop timer costs ~3 µs to arm and cancel): a call
times out at most one tick late. Idle connections are reused last-in first-out and closed after
`IDLE_TIMEOUT` seconds; a connection is reused only after a complete answer that allows it.

An answer's head (status line, headers, and any interim 1xx heads before it) may take at most
`MAX_HEAD` bytes, counted on the bytes received before they reach the parser: llhttp keeps an
unfinished header line in its own buffer, so a count in `on_header` would come after the memory
is spent. Past the bound the call fails with `BrokenAnswer` and the connection is dropped.

Failures are those of the transport contract (`ConnectionFailed`, `BrokenAnswer`,
`TimeoutError`, `BodyTooLarge`). A reused connection may be closed by the upstream just as a
request is written to it. Only two kinds of request are then resent, once, on a fresh
connection: one not written yet (the connection was found closed first) and an idempotent one
(`IDEMPOTENT`). A POST or PATCH that was written is never sent twice: the upstream may have
acted on it, so it fails with `ConnectionFailed`, as it would on a fresh connection.

Proxies (proxy.py) are chosen once per origin, when the origin is first seen: http:// upstreams
get an absolute-form request through the proxy, https:// ones a CONNECT tunnel with TLS to the
upstream inside it. A call without proxy pays nothing for them (the same function calls per
call as before, measured with cProfile; the head bound adds one `len`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import Mapping
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser
from multidict import CIMultiDict, CIMultiDictProxy

from .. import __version__
from .proxy import Proxy, ProxyRules
from .request import OutgoingRequest
from .tls import client_context
from .transport import IDEMPOTENT, BodyTooLarge, BrokenAnswer, ConnectionFailed, UpstreamResponse
from .url import request_target, split_origin

IDLE_TIMEOUT = 15.0
DEADLINE_TICK = 0.05  # seconds
MAX_PER_ORIGIN = 256
MAX_HEAD = 64 * 1024  # bytes of an answer's status line and headers
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_COMPUTED = frozenset({"content-length", "transfer-encoding"})  # always ours, from the body
_DEFAULTS = (
    ("accept", "Accept: */*"),
    ("accept-encoding", "Accept-Encoding: gzip, deflate"),
    ("user-agent", f"User-Agent: naftiko/{__version__}"),
)
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_COOKIE_PLAIN = frozenset("!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~")


class _Stale(Exception):
    """A reused connection was closed by the server before any byte of the answer."""


class _Origin:
    """One scheme://host:port: what every request head to it shares, and its connections."""

    __slots__ = (
        "absolute",
        "all",
        "authority",
        "host",
        "host_line",
        "idle",
        "label",
        "port",
        "proxy",
        "proxy_line",
        "scheme",
        "waiters",
    )

    def __init__(self, scheme: str, host: str, port: int, proxy: Proxy | None = None):
        self.scheme, self.host, self.port = scheme, host, port
        literal = f"[{host}]" if ":" in host else host
        default = 443 if scheme == "https" else 80
        authority = literal if port == default else f"{literal}:{port}"
        self.label = f"{scheme}://{literal}:{port}"
        self.authority = f"{literal}:{port}"  # as CONNECT names it
        self.host_line = f"Host: {authority}"
        self.proxy = proxy
        forwarded = proxy is not None and scheme == "http"  # the proxy reads our requests
        self.absolute = f"http://{authority}" if forwarded else ""  # before the target: absolute-form
        self.proxy_line = f"Proxy-Authorization: {proxy.authorization}" if forwarded and proxy.authorization else None
        self.idle: list[_Connection] = []
        self.all: set[_Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()


class ConnectionPool:
    """The connections of one consumed namespace, keyed by origin; an `UpstreamTransport`.

    `ssl_context` (tls.py) is used for every https:// origin, the default context when None;
    `proxies` (proxy.py) are asked once per origin which proxy, if any, to go through."""

    def __init__(
        self,
        connect_timeout: float,
        max_body_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
        proxies: ProxyRules | None = None,
    ):
        self.connect_timeout = connect_timeout
        self.max_body_bytes = max_body_bytes
        self._ssl = ssl_context
        self._proxies = proxies
        self._by_prefix: dict[str, _Origin] = {}  # "http://h:1" as written in URLs
        self._by_key: dict[tuple[str, str, int], _Origin] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._in_flight: dict[_Connection, float] = {}  # connection → its call's deadline (loop time)
        self._watcher: asyncio.TimerHandle | None = None

    async def send(self, request: OutgoingRequest, timeout: float) -> UpstreamResponse:
        """`request.url` is encoded and has no query string; the whole call ends within `timeout` s."""
        method, body = request.method, request.body
        prefix, path = split_origin(request.url)
        origin = self._by_prefix.get(prefix) or self._origin(prefix)
        head = _head(method, request_target(path, request.query), origin, request.headers, request.cookies, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = self._take_idle(origin) or await self._acquire(origin, deadline, fresh=False)
        while True:  # twice at most: a fresh connection is never stale
            waiter = connection.start(loop, method == "HEAD", self.max_body_bytes)
            self._in_flight[connection] = deadline
            if self._watcher is None:
                self._watcher = loop.call_later(DEADLINE_TICK, self._watch)
            written = False
            try:
                if not waiter.done():  # done already when the connection was found closed
                    transport = connection.transport
                    if body and len(body) > 65536:
                        transport.write(head)
                        transport.write(body)
                    else:
                        transport.write(head + body if body else head)
                    written = True
                return await waiter
            except _Stale:
                if written and method not in IDEMPOTENT:  # it may have been acted on: at most once
                    raise ConnectionFailed(
                        f"a kept-alive connection was closed without an answer; a {method} is not sent twice"
                    ) from None
            finally:
                del self._in_flight[connection]
                self._release(connection)
            connection = await self._acquire(origin, deadline, fresh=True)

    async def close(self) -> None:
        for timer in (self._sweeper, self._watcher):
            if timer is not None:
                timer.cancel()
        self._sweeper = self._watcher = None
        for origin in self._by_key.values():
            for connection in list(origin.all):
                connection.abort()
            origin.idle.clear()

    def _origin(self, prefix: str) -> _Origin:
        parts = urlsplit(prefix)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an upstream URL must be http:// or https:// with a host, not {scheme or 'relative'}")
        key = (scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))
        origin = self._by_key.get(key)
        if origin is None:
            proxy = self._proxies.select(*key) if self._proxies is not None else None
            origin = self._by_key[key] = _Origin(*key, proxy)
        self._by_prefix[prefix] = origin
        return origin

    async def _acquire(self, origin: _Origin, deadline: float, fresh: bool) -> _Connection:
        """An idle connection (unless `fresh`), else a new one once the origin is under its cap."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline):
            while len(origin.all) >= MAX_PER_ORIGIN:
                idle = self._take_idle(origin)
                if idle is not None and not fresh:
                    return idle
                if idle is not None:  # make room for the fresh connection wanted
                    idle.abort()
                    self._discard(idle)
                    break
                slot = loop.create_future()
                origin.waiters.append(slot)
                try:
                    await slot
                except BaseException:
                    if not slot.cancelled():
                        _wake(origin)  # woken just before giving up: pass the turn on
                    raise
            connection = _Connection(self, origin)
            origin.all.add(connection)
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._open(loop, connection, origin)
            except OSError as exc:
                self._discard(connection)
                raise ConnectionFailed(_first_line(exc)) from None
            except BaseException:
                connection.abort()
                self._discard(connection)
                raise
        return connection

    async def _open(self, loop: asyncio.AbstractEventLoop, connection: _Connection, origin: _Origin) -> None:
        """Connect `connection` to its origin: directly, through an http proxy, or tunnelled."""
        https = origin.scheme == "https"
        proxy = origin.proxy
        if proxy is None:
            ssl_context = (self._ssl or client_context()) if https else None
            await loop.create_connection(
                lambda: connection,
                origin.host,
                origin.port,
                ssl=ssl_context,
                server_hostname=origin.host if https else None,
            )
        elif not https:
            await _to_proxy(loop, connection, proxy)
        else:
            tunnel = _Tunnel(loop, proxy, origin)
            transport, _ = await _to_proxy(loop, tunnel, proxy)
            try:
                status = await tunnel.answer
                if not 200 <= status < 300:
                    raise ConnectionFailed(
                        f"the proxy {proxy.label} answered {status} {tunnel.reason}".rstrip()
                        + f" to CONNECT {origin.authority}"
                    )
                secure = await loop.start_tls(
                    transport, connection, self._ssl or client_context(), server_hostname=origin.host
                )
            except BaseException:
                tunnel.answer.cancel()  # when given up waiting: the proxy's late word is not wanted
                transport.abort()
                raise
            connection.connection_made(secure)

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        """The most recently used idle connection still open and not idle for too long."""
        idle = origin.idle
        while idle:
            connection = idle.pop()
            if not connection.transport.is_closing() and time.monotonic() - connection.idle_since < IDLE_TIMEOUT:
                return connection
            connection.abort()
            self._discard(connection)
        return None

    def _release(self, connection: _Connection) -> None:
        if not connection.finished():
            connection.abort()
            self._discard(connection)
            return
        origin = connection.origin
        connection.idle_since = time.monotonic()
        origin.idle.append(connection)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._sweep)
        if origin.waiters:
            _wake(origin)

    def _discard(self, connection: _Connection) -> None:
        """Forget a closed (or closing) connection; called again later, it does nothing."""
        origin = connection.origin
        if connection in origin.all:
            origin.all.discard(connection)
            if connection in origin.idle:
                origin.idle.remove(connection)
            _wake(origin)

    def _watch(self) -> None:
        """Expire the calls past their deadline; runs while any call is in flight."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection, deadline in list(self._in_flight.items()):
            if deadline <= now:
                connection.expire()
        self._watcher = loop.call_later(DEADLINE_TICK, self._watch) if self._in_flight else None

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        oldest = now
        for origin in self._by_key.values():
            for connection in [c for c in origin.idle if now - c.idle_since >= IDLE_TIMEOUT]:
                connection.abort()
                self._discard(connection)
            if origin.idle:
                oldest = min(oldest, origin.idle[0].idle_since)
        if any(origin.idle for origin in self._by_key.values()):
            delay = max(1.0, oldest + IDLE_TIMEOUT - now)
            self._sweeper = asyncio.get_running_loop().call_later(delay, self._sweep)


async def _to_proxy(
    loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, proxy: Proxy
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    try:
        return await loop.create_connection(lambda: protocol, proxy.host, proxy.port)
    except OSError as exc:
        raise ConnectionFailed(f"the proxy {proxy.label}: {_first_line(exc)}") from None


def _wake(origin: _Origin) -> None:
    waiters = origin.waiters
    while waiters:
        slot = waiters.popleft()
        if not slot.done():
            slot.set_result(None)
            return


def _head(
    method: str,
    target: str,
    origin: _Origin,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    body: bytes | None,
) -> bytes:
    lines = [f"{method} {origin.absolute}{target} HTTP/1.1", origin.host_line]
    if origin.proxy_line is not None:
        lines.append(origin.proxy_line)
    seen = set()
    for name, value in headers.items():
        lower = name.lower()
        if lower in _COMPUTED:
            continue
        if lower == "host":
            lines[1] = f"{name}: {value}"
            continue
        seen.add(lower)
        lines.append(f"{name}: {value}")
    for lower, line in _DEFAULTS:
        if lower not in seen:
            lines.append(line)
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{k}={_cookie_value(v)}" for k, v in cookies.items()))
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
        if "content-type" not in seen:
            lines.append("Content-Type: application/octet-stream")
    elif method in _BODY_METHODS:
        lines.append("Content-Length: 0")
    lines += ("", "")
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        raise ValueError("a header name or value of the upstream request contains CR or LF")
    return text.encode()


def _cookie_value(value: str) -> str:
    if _COOKIE_PLAIN.issuperset(value):
        return value
    return SimpleCookie().value_encode(value)[1]


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; the httptools parser calls its on_* methods."""

    def __init__(self, pool: ConnectionPool, origin: _Origin):
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.parser = HttpResponseParser(self)
        self.reused = False
        self.reusable = True
        self.idle_since = 0.0
        self.waiter: asyncio.Future[UpstreamResponse] | None = None
        self._head_only = False
        self._limit = 0
        self._head_room = MAX_HEAD  # bytes the answer's head may still take
        self._received = False
        self._fields: list[tuple[str, str]] = []
        self._headers: CIMultiDict[str] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._until_close = False  # the body ends when the server closes the connection
        self._complete = False

    # --- the pool's side -------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, head_only: bool, limit: int) -> asyncio.Future[UpstreamResponse]:
        self.waiter = waiter = loop.create_future()
        self._head_only, self._limit, self._head_room = head_only, limit, MAX_HEAD
        self._received = self._complete = self._until_close = False
        self._fields, self._headers, self._chunks, self._size = [], None, [], 0
        if self.transport.is_closing():  # closed since it was picked: nothing is sent
            self._fail(self._unanswered(None))
        return waiter

    def finished(self) -> bool:
        """True when the last answer was complete and the connection may carry another."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.cancel()
        ok = self._complete and self.reusable and not self.transport.is_closing()
        self.reused = ok
        return ok

    def expire(self) -> None:
        self._fail(TimeoutError())

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():  # nobody asked: the connection is out of step
            self.abort()
            return
        self._received = True
        try:
            if self._headers is None:  # still in the head (or in interim 1xx heads)
                room = self._head_room - len(data)
                if room < 0:
                    self._overflow(data)
                    return
                self._head_room = room
            self.parser.feed_data(data)
        except (HttpParserError, HttpParserUpgrade) as exc:
            self._fail(BrokenAnswer(_first_line(exc) or "not an HTTP answer"))

    def _overflow(self, data: bytes) -> None:
        """`data` is more than the head's room: the head must end within the room, or the
        answer is refused before the parser buffers more of it."""
        room, self._head_room = self._head_room, 0
        if room:
            self.parser.feed_data(data[:room])
        if self._headers is None:
            self._fail(BrokenAnswer(f"the answer's head exceeds {MAX_HEAD:,} bytes"))
        else:
            self.parser.feed_data(data[room:])  # what follows a head that fit, as if fed whole

    def eof_received(self) -> None:
        self.reusable = False  # the transport closes itself next: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if not self._received:
                self._fail(self._unanswered(exc))
            elif self._until_close and self._headers is not None and not self._complete:
                self._finish()
            else:
                self._fail(BrokenAnswer(_first_line(exc) or "connection closed mid-answer"))
        if self.waiter is None:
            self.pool._discard(self)

    # --- httptools ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self.reusable = False  # bytes after the answer
        self._fields = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200 or self._complete:
            return  # an interim 1xx answer: the real one follows
        headers = self._headers = CIMultiDict(self._fields)
        length = headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            self._fail(BodyTooLarge(self._limit, int(length)))
        elif self._head_only or status in (204, 304):
            if not self.parser.should_keep_alive():
                self.reusable = False
            self._finish()
            self.parser = HttpResponseParser(self)  # llhttp would wait for the body HEAD announced
        else:
            self._until_close = length is None and "chunked" not in headers.get("Transfer-Encoding", "").lower()

    def on_body(self, body: bytes) -> None:
        if self._complete:
            self.reusable = False
            return
        self._size += len(body)
        if self._size > self._limit:
            self._fail(BodyTooLarge(self._limit, None))
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._headers is None or self._complete:
            return  # the end of a 1xx answer, or of what follows the one already given
        if not self.parser.should_keep_alive():
            self.reusable = False
        self._finish()

    # --- outcomes ------------------------------------------------------------------------------

    def _unanswered(self, exc: Exception | None) -> Exception:
        return _Stale() if self.reused else ConnectionFailed(_first_line(exc) or "connection closed before any answer")

    def _finish(self) -> None:
        self._complete = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        assert self._headers is not None
        body = b"".join(self._chunks)
        self._chunks = []
        encoding = self._headers.get("Content-Encoding", "").strip().lower()
        if body and encoding in _DECODERS:
            try:
                body = _decompress(body, _DECODERS[encoding], self._limit)
            except zlib.error as exc:
                self._fail(BrokenAnswer(f"cannot decode the {encoding} body: {exc}"))
                return
            except BodyTooLarge as exc:
                self._fail(exc)
                return
        waiter.set_result(UpstreamResponse(self.parser.get_status_code(), CIMultiDictProxy(self._headers), body))

    def _fail(self, exc: BaseException) -> None:
        """End the call with `exc`; the connection is never reused after a failure."""
        self.reusable = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class _Tunnel(asyncio.Protocol):
    """Asks an http proxy to CONNECT to an origin and reads its answer's head (bounded as an
    upstream's is); on 2xx the pool hands the socket to TLS with the `_Connection` on top."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proxy: Proxy, origin: _Origin):
        self.proxy = proxy
        lines = [
            f"CONNECT {origin.authority} HTTP/1.1",
            f"Host: {origin.authority}",
            f"User-Agent: naftiko/{__version__}",
        ]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.answer: asyncio.Future[int] = loop.create_future()
        self.reason = ""
        self.room = MAX_HEAD
        self.parser = HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return  # nothing should follow the proxy's answer before TLS starts: TLS will say
        room, self.room = self.room, self.room - len(data)
        try:
            self.parser.feed_data(data[:room] if len(data) > room else data)
        except (HttpParserError, HttpParserUpgrade) as exc:
            self._fail(f"answered CONNECT with something that is not HTTP ({_first_line(exc)})")
            return
        if self.room < 0 and not self.answer.done():
            self._fail(f"answered CONNECT with a head over {MAX_HEAD:,} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"closed the connection before answering CONNECT{': ' + _first_line(exc) if exc else ''}")

    def on_status(self, reason: bytes) -> None:
        self.reason = reason.decode("latin-1")[:200]

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200 and not self.answer.done():
            self.answer.set_result(status)

    def _fail(self, what: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(ConnectionFailed(f"the proxy {self.proxy.label} {what}"))


def _decompress(body: bytes, wbits: int, limit: int) -> bytes:
    try:
        decoder = zlib.decompressobj(wbits)
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        if wbits != zlib.MAX_WBITS:
            raise
        decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, without the zlib wrapper
        out = decoder.decompress(body, limit + 1)
    if len(out) > limit:
        raise BodyTooLarge(limit, None)
    return out


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


__all__ = ["MAX_HEAD", "BodyTooLarge", "BrokenAnswer", "ConnectionFailed", "ConnectionPool", "UpstreamResponse"]

"""The requests and responses of our HTTP/1.1 server. Bodies are complete bytes: the server reads
a request whole (up to its limit) before the handler runs, and writes a response in one piece;
only a `StreamingResponse` (server-sent events) is written chunk by chunk as it is produced."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, unquote

from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy


class Request:
    """One request as it came. `raw_path` is the request-target as sent (path and query, still
    percent-encoded); bytes that are not UTF-8 survive decoding as lone surrogates, so that
    `%FF` and `%FE` stay distinct and can be refused rather than both becoming U+FFFD."""

    __slots__ = (
        "method",
        "raw_path",
        "headers",
        "body",
        "keep_alive",
        "oversized",
        "peer",
        "client",
        "scheme",
        "route",
        "operation",
        "result",
        "trace",
        "_query",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        headers: CIMultiDictProxy[str],
        body: bytes,
        keep_alive: bool = True,
        oversized: bool = False,
        client: str = "",
        scheme: str = "http",
    ):
        self.method = method
        self.raw_path = raw_path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.oversized = oversized  # the body was over the server's limit and was dropped
        self.peer = client  # the address the connection comes from
        self.client = client  # the caller's address: the peer's, or the one a trusted proxy forwarded
        self.scheme = scheme  # "https" on a TLS port (or the forwarded one, from a trusted proxy)
        self.route: str | None = None  # the matched route template, for metrics and the log
        self.operation: str | None = None  # what was invoked, when the route alone does not say (an MCP tool's name)
        self.result: object | None = None  # the engine's Result, when the engine answered
        self.trace: tuple[str, str] | None = None  # (trace id, span id) in hex of the request's recorded server span
        self._query: MultiDictProxy[str] | None = None

    @property
    def path(self) -> str:
        return unquote(self.raw_path.partition("?")[0], errors="surrogateescape")

    @property
    def query_string(self) -> str:
        return self.raw_path.partition("?")[2]

    @property
    def query(self) -> MultiDictProxy[str]:
        if self._query is None:
            pairs = parse_qsl(self.query_string, keep_blank_values=True, errors="surrogateescape")
            self._query = MultiDictProxy(MultiDict(pairs))
        return self._query

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters (`application/octet-stream` when absent)."""
        value = self.headers.get("Content-Type")
        return value.partition(";")[0].strip().lower() if value else "application/octet-stream"

    @property
    def cookies(self) -> Mapping[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            for header in self.headers.getall("Cookie", ()):
                jar.load(header)
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}


class Response:
    """A complete answer. `headers` keeps the casing it was given; the server adds
    Content-Length, Date and Connection."""

    __slots__ = ("status", "body", "headers")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        text: str | None = None,
    ):
        self.status = status
        self.headers = dict(headers) if headers else {}
        if text is not None:
            body = text.encode("utf-8")
            if content_type and "charset" not in content_type:
                content_type += "; charset=utf-8"
        if content_type:
            self.headers["Content-Type"] = content_type
        self.body = body


class StreamingResponse(Response):
    """An answer whose body is produced over time (a `text/event-stream`): the server writes the
    head at once, then each chunk of `stream` as it comes, chunked, waiting while the client
    leaves what was written unread. The stream ends when it is exhausted, when the client goes
    away, or when the server stops; in every case the server calls its `aclose()` (when it has
    one) exactly once, so a stream can hold a resource (a subscriber slot) and release it there."""

    __slots__ = ("stream",)

    def __init__(
        self,
        stream: AsyncIterator[bytes],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ):
        super().__init__(status, b"", headers, content_type)
        self.stream = stream


Answer = Response | Awaitable[Response]  # an answer made at once, or the coroutine that makes it
Responder = Callable[[Request], Answer]


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, json.dumps(data).encode("utf-8"), headers, "application/json; charset=utf-8")

"""What `NamespaceClient` sends through: one request in, one answer out (httpx's transports).

A transport raises only these failures, because they decide what the client may resend:

- `ConnectionFailed`: nothing of an answer arrived (refused, reset, closed before the first
  byte, a TLS handshake or a proxy that refused the tunnel). The request may have reached the
  upstream, so the client resends it only when its method is `IDEMPOTENT`.
- `BrokenAnswer`: an answer began but was cut short, is not HTTP, or its head is too long.
  Never resent.
- `TimeoutError`: the call's `timeout` ran out. Not resent (the client's deadline is spent).
- `BodyTooLarge`: the answer's body exceeds the transport's limit. Not resent.

`ConnectionPool` (connections.py) is the real transport; `MockTransport` turns a function into
one, for unit tests of the client and of the authenticators without sockets:

    transport = MockTransport(lambda request: UpstreamResponse(200, headers(), b"{}"))
    client = NamespaceClient("ns", None, ClientSettings(), transport)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy

from .request import OutgoingRequest

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 §9.2.2, without TRACE


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class ConnectionFailed(Exception):
    """Nothing of an answer arrived: refused, reset or closed before the first byte."""


class BrokenAnswer(Exception):
    """An answer began but was cut short, or is not HTTP."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int, declared: int | None):
        super().__init__(limit, declared)
        self.limit = limit
        self.declared = declared  # the Content-Length, when that is what gave it away


class UpstreamTransport(Protocol):
    async def send(self, request: OutgoingRequest, timeout: float) -> UpstreamResponse:
        """One attempt, ended within `timeout` seconds; raises only the failures above."""
        ...

    async def close(self) -> None: ...


Handler = Callable[[OutgoingRequest], UpstreamResponse | Awaitable[UpstreamResponse]]


class MockTransport:
    """A transport that answers with `handler(request)` (a function or a coroutine function).
    The handler may raise the transport failures above to play a faulty upstream."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.closed = False

    async def send(self, request: OutgoingRequest, timeout: float) -> UpstreamResponse:
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    async def close(self) -> None:
        self.closed = True


def response(status: int = 200, body: bytes = b"", **headers: str) -> UpstreamResponse:
    """An UpstreamResponse to return from a MockTransport handler (`_` in names becomes `-`)."""
    fields = CIMultiDict((name.replace("_", "-"), value) for name, value in headers.items())
    return UpstreamResponse(status, CIMultiDictProxy(fields), body)


__all__ = [
    "IDEMPOTENT",
    "BodyTooLarge",
    "BrokenAnswer",
    "ConnectionFailed",
    "MockTransport",
    "UpstreamResponse",
    "UpstreamTransport",
    "response",
]

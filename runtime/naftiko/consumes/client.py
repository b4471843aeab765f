"""Outgoing HTTP for one consumed namespace: credentials, timeouts, retries, rate limit, over
the namespace's transport (transport.py; a `ConnectionPool` unless one is given).

With a rate limit (`--rate-limit`, a bucket of state/rate_limit.py: per process, or shared
through Redis), a call over the limit is refused before anything is sent (UpstreamRateLimited),
and a retry over it is not made (the last answer stands). Every attempt takes a token.

Retries happen only for idempotent methods (`IDEMPOTENT`), and only on 429/503 or a
`ConnectionFailed` (no answer began); a POST or PATCH is sent once, whatever happens. Waits are
jittered exponential backoff, or the upstream's Retry-After when it says so, never past the
call's total timeout. Below this, when a kept-alive connection closes under a request, the
pool resends it once on its own only if it was not written yet or is idempotent, never a
written POST or PATCH (connections.py).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .. import state
from .auth import Authenticator
from .connections import ConnectionPool
from .request import OutgoingRequest
from .transport import (
    IDEMPOTENT,
    BodyTooLarge,
    BrokenAnswer,
    ConnectionFailed,
    UpstreamResponse,
    UpstreamTransport,
)
from .url import split_origin

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class ClientSettings:
    connect_timeout: float = 5.0
    total_timeout: float = 30.0
    retries: int = 2
    backoff: float = 0.2
    max_retry_after: float = 10.0
    max_body_bytes: int = 64 * 1024 * 1024


class UpstreamUnreachable(Exception):
    pass


class UpstreamTimeout(Exception):
    pass


class UpstreamTooLarge(Exception):
    pass


class UpstreamRateLimited(Exception):
    """The namespace's rate limit is spent: the call was not sent."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class NamespaceClient:
    """`transport` carries every attempt; None means a direct `ConnectionPool` with `settings`
    (what the engine builds itself, with TLS and proxies, in compile.py:_Compiler._client)."""

    def __init__(
        self,
        namespace: str,
        auth: Authenticator | None,
        settings: ClientSettings,
        transport: UpstreamTransport | None = None,
        rate_limit: float | None = None,
    ):
        self.namespace = namespace
        self.auth = auth
        self.settings = settings
        if transport is None:
            transport = ConnectionPool(settings.connect_timeout, settings.max_body_bytes)
        self.transport: UpstreamTransport = transport
        self._limiter = state.current().rate_limiter(namespace, rate_limit) if rate_limit else None

    async def close(self) -> None:
        await self.transport.close()

    async def send(self, request: OutgoingRequest) -> UpstreamResponse:
        """Send with retries; every attempt gets only what is left of the call's total timeout."""
        deadline = time.monotonic() + self.settings.total_timeout
        try:
            return await self._send_with_retries(request, deadline)
        except TimeoutError:
            raise UpstreamTimeout(f"{self.namespace}: no answer within {self.settings.total_timeout:g} s") from None

    async def send_once(self, request: OutgoingRequest) -> UpstreamResponse:
        """One attempt as given: no credentials, retries or rate limit, within the total timeout.
        For the authenticators' own requests (OAuth2 token fetch), not for the calls."""
        return await self.transport.send(request, self.settings.total_timeout)

    async def _send_with_retries(self, request: OutgoingRequest, deadline: float) -> UpstreamResponse:
        if self._limiter is not None:
            wait = await self._limiter.acquire()
            if wait:
                raise UpstreamRateLimited(
                    f"{self.namespace}: over the rate limit of {self._limiter.rate:g} calls per second; "
                    f"not sent, retry in {wait:.2f} s",
                    wait,
                )
        if self.auth is not None:
            await self.auth.apply(request, self.send_once)
        attempt = 0
        challenged = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                response = await self.transport.send(request, remaining)
            except BodyTooLarge as exc:
                if exc.declared is not None:
                    raise UpstreamTooLarge(
                        f"{self.namespace}: response of {exc.declared:,} bytes exceeds {exc.limit:,}"
                    ) from None
                raise UpstreamTooLarge(f"{self.namespace}: response exceeds {exc.limit:,} bytes") from None
            except BrokenAnswer as exc:  # an answer came, cut short or not HTTP: never resent
                raise UpstreamUnreachable(
                    f"{self.namespace}: broken answer from {split_origin(request.url)[0]}: {_reason(exc)}"
                ) from None
            except ConnectionFailed as exc:
                delay = self._retry_delay(request, attempt, deadline, None)
                if delay is None or not await self._may_resend(delay):
                    raise UpstreamUnreachable(
                        f"{self.namespace}: cannot reach {split_origin(request.url)[0]}: {_reason(exc)}"
                    ) from None
                attempt += 1
                continue
            if response.status == 401 and self.auth is not None and not challenged:
                challenged = True
                if self.auth.answer_challenge(request, response.status, response.headers) and await self._may_resend(0):
                    continue
            if response.status in RETRY_STATUSES:
                delay = self._retry_delay(request, attempt, deadline, response)
                if delay is not None and await self._may_resend(delay):
                    attempt += 1
                    continue
            return response

    async def _may_resend(self, delay: float) -> bool:
        """Wait `delay`, then take a token for one more attempt; False when the limit is spent."""
        if delay:
            await asyncio.sleep(delay)
        return self._limiter is None or not await self._limiter.acquire()

    def _retry_delay(
        self, request: OutgoingRequest, attempt: int, deadline: float, response: UpstreamResponse | None
    ) -> float | None:
        """How long to wait before the next attempt, or None when this call must not be retried."""
        if request.method not in IDEMPOTENT or attempt >= self.settings.retries:
            return None
        retry_after = _retry_after(response.headers.get("Retry-After")) if response is not None else None
        if retry_after is not None:
            delay = min(retry_after, self.settings.max_retry_after)
        else:
            delay = self.settings.backoff * (2**attempt) * (0.5 + random.random())
        return delay if delay < deadline - time.monotonic() else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


__all__ = [
    "ClientSettings",
    "NamespaceClient",
    "UpstreamRateLimited",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamTooLarge",
    "UpstreamUnreachable",
    "IDEMPOTENT",
]

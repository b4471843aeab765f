"""The one Redis connection of a process, and what happens when Redis is away.

Every call is bounded: connecting and each reply within `TIMEOUT` (a socket timeout, and an
`asyncio.timeout` around the whole command as a backstop), at most `MAX_CONNECTIONS` sockets,
and a command waiting for a free socket waits at most `TIMEOUT` too. A failure makes the link
*down*: one warning, then for `RETRY_INTERVAL` every command fails at once without touching the
network (callers fall back to their per-process state), then the next command tries again; the
first success logs that Redis is back. So an outage costs each call nothing once noticed, and a
call never hangs on Redis.

Scripts run with EVALSHA (redis-py's `Script`: the script is loaded once, re-loaded on
NOSCRIPT after a Redis restart). redis-py is imported only when a link is made: it takes a
quarter of a second to import, which no command without --redis should pay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

log = logging.getLogger("naftiko.state")

TIMEOUT = 0.25  # seconds: connect, one reply, or a wait for a pooled socket
RETRY_INTERVAL = 1.0  # seconds without touching Redis after a failure
MAX_CONNECTIONS = 32


class Unavailable(Exception):
    """Redis did not answer (down, slow, refused, or in the quiet interval after a failure)."""


def redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisLink:
    def __init__(self, url: str):
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.exceptions import RedisError

        self.url = url
        self._errors = (RedisError, OSError, TimeoutError)
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=None,
        )
        self.client = Redis(connection_pool=pool)
        self._down_until = 0.0  # monotonic time before which commands fail at once
        self._down = False

    def script(self, source: str) -> AsyncScript:
        return self.client.register_script(source)

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply, or Unavailable."""
        if self._down and time.monotonic() < self._down_until:
            raise Unavailable
        try:
            async with asyncio.timeout(2 * TIMEOUT):
                reply = await script(keys=list(keys), args=list(args))
        except self._errors as exc:
            self._failed(exc)
            raise Unavailable from None
        if self._down:
            self._down = False
            log.info("Redis at %s is back: shared rate limits and MCP sessions again", redacted(self.url))
        return reply

    def _failed(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "Redis at %s unavailable (%s): rate limits fall back to per-process buckets and new MCP "
                "sessions to this process until it returns",
                redacted(self.url),
                type(exc).__name__,
            )
        self._down_until = time.monotonic() + RETRY_INTERVAL

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

"""Per-process state that a fleet must share, behind small interfaces with a local and a Redis
implementation, chosen once at start (`naftiko run --redis URL`, README "Fleet"):

- rate limits of consumed namespaces (`rate_limit.py`: `LocalBucket`, `SharedBucket`);
- handshake-era MCP sessions (`sessions.py`: `SharedSessions`; the local table stays in
  `McpServer.sessions`, which also holds each session's per-process parts).

`use(open_state(url))` happens once, before capabilities are compiled; `current()` is what the
namespace clients and MCP servers built afterwards ask for their pieces.

    >>> state = open_state(None)  # no --redis: per-process state, nothing extra on any path
    >>> use(state)
"""

from __future__ import annotations

from .rate_limit import LocalBucket, RateLimiter, SharedBucket
from .sessions import SharedSessions


class LocalState:
    """One process on its own: every bucket is its own, sessions live in McpServer.sessions only."""

    def rate_limiter(self, namespace: str, rate: float) -> RateLimiter:
        return LocalBucket(rate)

    def sessions(self, server: str) -> SharedSessions | None:
        return None

    async def close(self) -> None:
        return None


class RedisState:
    """Every process using one Redis: one bucket per namespace, sessions valid on any replica."""

    def __init__(self, url: str):
        from .redis_link import RedisLink, log, redacted  # redis-py is imported only here

        self.link = RedisLink(url)
        log.info("rate limits and MCP sessions shared through Redis at %s", redacted(url))

    def rate_limiter(self, namespace: str, rate: float) -> RateLimiter:
        return SharedBucket(self.link, namespace, rate)

    def sessions(self, server: str) -> SharedSessions | None:
        return SharedSessions(self.link, server)

    async def close(self) -> None:
        await self.link.close()


State = LocalState | RedisState
_current: State = LocalState()


def open_state(redis_url: str | None) -> State:
    return RedisState(redis_url) if redis_url else LocalState()


def use(state: State) -> None:
    global _current
    _current = state


def current() -> State:
    return _current


__all__ = ["LocalState", "RedisState", "State", "current", "open_state", "use"]

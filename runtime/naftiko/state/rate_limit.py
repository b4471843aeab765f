"""Rate limits of consumed namespaces: token buckets that refuse, never queue.

`acquire()` answers 0.0 when a call may go upstream now (a token is taken), else how many
seconds until one will be free; a refused call is not sent (REST 429 with Retry-After, MCP an
`isError` result). A bucket holds one second's worth of tokens (at least one), so RPS calls may
go at once, then RPS per second.

`LocalBucket` is one process's bucket. `SharedBucket` is one bucket in Redis for every process
using it (an atomic Lua script: Redis's clock, one round trip per call); while Redis is
unavailable it falls back to its own `LocalBucket` at the full rate, so each process then
allows up to RPS on its own.
"""

from __future__ import annotations

import time
from typing import Protocol

from .redis_link import RedisLink, Unavailable


class RateLimiter(Protocol):
    rate: float

    async def acquire(self) -> float:
        """0.0 when the call may go now, else the seconds to wait before one may."""
        ...


class LocalBucket:
    """No lock: the check and the take happen without an await, so one event loop cannot interleave."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    async def acquire(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


# KEYS[1]: the bucket (a hash: tokens, ts). ARGV[1]: rate per second. Reply: microseconds to wait
# (0: admitted), an integer because Redis truncates Lua numbers to integers.
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local capacity = math.max(rate, 1)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return math.ceil(wait * 1000000)
"""


class SharedBucket:
    def __init__(self, link: RedisLink, namespace: str, rate: float):
        self.rate = rate
        self.link = link
        self.key = f"naftiko:rate:{namespace}"
        self.script = link.script(_TAKE)
        self.fallback = LocalBucket(rate)

    async def acquire(self) -> float:
        try:
            waited = await self.link.run(self.script, (self.key,), (repr(self.rate),))
        except Unavailable:
            return await self.fallback.acquire()
        return int(waited) / 1_000_000

"""Rate limits of consumed namespaces: token buckets that refuse, never queue.

`acquire()` answers 0.0 when a call may go upstream now (a token is taken), else how many
seconds until one will be free; a refused call is not sent (REST 429 with Retry-After, MCP an
`isError` result). A bucket holds one second's worth of tokens (at least one), so RPS calls may
go at once, then RPS per second.

`LocalBucket` is one process's bucket. `SharedBucket` is one bucket in Redis for every process
using it (an atomic Lua script: Redis's clock; one round trip per call, or per batch of calls
that arrive together, which at 8 calls at once took the Redis client's CPU per call from 65 to
22 µs); while Redis is
unavailable it falls back to its own `LocalBucket` at the full rate, so each process then
allows up to RPS on its own.
"""

from __future__ import annotations

import asyncio
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


# KEYS[1]: the bucket (a hash: tokens, ts). ARGV[1]: rate per second. ARGV[2]: tokens wanted.
# Reply: {tokens granted, microseconds until the next one when fewer were granted} (integers:
# Redis truncates Lua numbers to integers).
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local capacity = math.max(rate, 1)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
local wait = 0
if granted < wanted then wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {granted, math.ceil(wait * 1000000)}
"""


class SharedBucket:
    """Calls that arrive while a request to Redis is out wait for the next one, which takes
    tokens for all of them at once: one round trip per batch rather than per call when calls
    come together. The batches run in a task of their own, so a caller cancelled while waiting
    leaves the others' answers alone."""

    def __init__(self, link: RedisLink, namespace: str, rate: float):
        self.rate = rate
        self.link = link
        self.key = f"naftiko:rate:{namespace}"
        self.script = link.script(_TAKE)
        self.fallback = LocalBucket(rate)
        self._waiting: list[asyncio.Future[float]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def acquire(self) -> float:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[float] = loop.create_future()
        self._waiting.append(answer)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        batch: list[asyncio.Future[float]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    granted, waited = await self.link.run(self.script, (self.key,), (repr(self.rate), len(batch)))
                    answers = [0.0] * int(granted) + [int(waited) / 1_000_000] * (len(batch) - int(granted))
                except Unavailable:
                    answers = [await self.fallback.acquire() for _ in batch]
                for answer, value in zip(batch, answers, strict=True):
                    if not answer.done():
                        answer.set_result(value)
        finally:
            self._flusher = None
            for answer in (*batch, *self._waiting):  # left only if this task failed: never a hang
                if not answer.done():
                    answer.cancel()

"""Handshake-era MCP sessions (`Mcp-Session-Id`) shared by every replica using one Redis.

Redis holds what a session *is* — a record of its portable fields (negotiated version, client
info and capabilities, log level), a JSON text McpServer writes and reads — under
`naftiko:mcp:<server>:<id>`, expiring after `TTL` seconds without use; each process keeps its
own per-process parts (calls in flight, open streams, watched files) in `McpServer.sessions`. Why Redis rather
than self-contained signed ids: DELETE must end a session on every replica, which a signed id
cannot do without shared state anyway, and Redis needs no key to distribute.

An ended session leaves a tombstone (`-`) for `TTL`, so a replica that still knows it locally
cannot bring it back; a session some replica knows but Redis lost (Redis restarted empty, or
the session began while Redis was away) is written back by the next lookup on that replica.
While Redis is unavailable every answer is the replica's own knowledge: sessions it made or
saw keep working there, new ones are local until Redis returns.

One round trip per lookup (an EVALSHA script); an id that is not of our making is refused
without one.
"""

from __future__ import annotations

import re

from .redis_link import RedisLink, Unavailable

TTL = 24 * 3600  # seconds a session lives unused
_OUR_IDS = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24), as McpServer.keep makes them

# KEYS[1]: the session. ARGV[1]: TTL. ARGV[2]: the record this replica knows ('' if none).
# Reply: the session's record, or nil when it is unknown or ended.
_FIND = """
local v = redis.call('GET', KEYS[1])
if v == '-' then return false end
if v then redis.call('EXPIRE', KEYS[1], ARGV[1]) return v end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[1]) return ARGV[2] end
return false
"""

# KEYS[1]: the session. ARGV[1]: TTL. ARGV[2]: its record. Never over a tombstone. Reply: 1 if written.
_SAVE = """
if redis.call('GET', KEYS[1]) == '-' then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[1])
return 1
"""

# KEYS[1]: the session. ARGV[1]: TTL. ARGV[2]: '1' when this replica knows it. Reply: 1 if it existed.
_END = """
local v = redis.call('GET', KEYS[1])
if (v and v ~= '-') or ARGV[2] == '1' then redis.call('SET', KEYS[1], '-', 'EX', ARGV[1]) return 1 end
return 0
"""


class SharedSessions:
    def __init__(self, link: RedisLink, server: str):
        self.link = link
        self.prefix = f"naftiko:mcp:{server}:"
        self._find = link.script(_FIND)
        self._save = link.script(_SAVE)
        self._end = link.script(_END)

    async def save(self, session_id: str, record: str) -> None:
        """Record a session `initialize` just opened here, or a change of its portable fields
        (while Redis is away, the change stays on this replica)."""
        try:
            await self.link.run(self._save, (self.prefix + session_id,), (TTL, record))
        except Unavailable:
            pass

    async def find(self, session_id: str, known: str | None) -> str | None:
        """The session's record, or None when it is unknown or ended on any replica.
        `known`: the record this replica holds for it, if any (the answer while Redis is away)."""
        if not _OUR_IDS.fullmatch(session_id):
            return None
        try:
            found = await self.link.run(self._find, (self.prefix + session_id,), (TTL, known or ""))
        except Unavailable:
            return known
        return found.decode() if found is not None else None

    async def end(self, session_id: str, known: bool) -> bool:
        """End the session for every replica; True when it existed here or in Redis."""
        if not _OUR_IDS.fullmatch(session_id):
            return known
        try:
            ended = await self.link.run(self._end, (self.prefix + session_id,), (TTL, "1" if known else "0"))
        except Unavailable:
            return known
        return bool(ended) or known

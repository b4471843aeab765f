"""Tokens already verified, remembered until they expire, so a client that sends the same token
on every call pays for one signature check (a few hundred µs with RSA or EC), not one per call.

Keyed by the SHA-256 of the token (the token itself is not kept), bounded in entries: when full,
expired entries go first, then the oldest.
"""

from __future__ import annotations

import hashlib
import time


class TokenCache:
    def __init__(self, size: int):
        self.size = size
        self._until: dict[bytes, float] = {}  # digest → wall-clock time it stops being trusted

    def holds(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        until = self._until.get(digest)
        if until is None:
            return False
        if until <= time.time():
            del self._until[digest]
            return False
        return True

    def keep(self, token: str, until: float) -> None:
        if self.size <= 0 or until <= time.time():
            return
        if len(self._until) >= self.size:
            self._evict()
        self._until[hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()] = until

    def _evict(self) -> None:
        now = time.time()
        for digest in [d for d, until in self._until.items() if until <= now]:
            del self._until[digest]
        while len(self._until) >= self.size:
            del self._until[next(iter(self._until))]

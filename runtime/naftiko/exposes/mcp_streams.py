"""Server-sent events for MCP Streamable HTTP: one message per event, and the session's own
stream (`GET /mcp`), where notifications that belong to no request go (resource updates)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from .mcp_jsonrpc import encode

logger = logging.getLogger("naftiko.mcp")

BACKLOG = 256  # notifications waiting for a slow client; past it, new ones are dropped
KEEP_ALIVE_SECONDS = 25.0  # a comment line when idle, so intermediaries keep the stream open


def event(message: Any) -> bytes:
    return b"event: message\ndata: " + encode(message) + b"\n\n"


class EventStream:
    """A session's GET stream: an `Outlet` fed by `send`, read by the HTTP server through `events`."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(BACKLOG)
        self._dropped = False

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            if not self._dropped:  # once per stream: a client that reads nothing must not fill the log
                logger.warning("MCP session stream full: notifications dropped until the client reads")
            self._dropped = True

    def close(self) -> None:
        """End the stream (the session ended, or a newer stream replaced it)."""
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()  # make room for the end: what is left unread is lost anyway

    async def events(self) -> AsyncIterator[bytes]:
        yield b": stream open\n\n"
        while True:
            try:
                message = await asyncio.wait_for(self._queue.get(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if message is None:
                return
            self._dropped = False
            yield event(message)

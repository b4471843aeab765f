"""`resources/subscribe`: the per-process side of a session's subscriptions (DESIGN §4.7).

The subscribed URIs themselves are the session's (portable) state; `FileWatch` holds what only
this process can do for them: poll the files behind them (stat only, like the capability watcher)
and send `notifications/resources/updated` through the session's outlet when one changes. Its
task runs only while something is subscribed. (Not `naftiko.watch`'s stamps: that module
brings the whole compiler with it, and a file here is one path, not a capability folder.)
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Protocol

MAX_SUBSCRIPTIONS = 256  # per session
POLL_SECONDS = 0.5
Stamp = tuple[int, int]  # mtime in ns, size


def stamp(path: Path) -> Stamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None  # gone or unreadable: its return is a change too
    return (stat.st_mtime_ns, stat.st_size)


class Outlet(Protocol):
    """Where a session's own notifications go: its GET stream (HTTP) or stdout (stdio)."""

    def send(self, message: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def updated(uri: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}


class FileWatch:
    """The files behind one session's subscribed URIs, polled while any is subscribed."""

    def __init__(self, send: Any):
        self._send = send  # called with each notification (the session drops it without an outlet)
        self._files: dict[str, tuple[Path, Stamp | None]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, uri: str, path: Path) -> None:
        self._files[uri] = (path, stamp(path))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    def remove(self, uri: str) -> None:
        self._files.pop(uri, None)

    def close(self) -> None:
        self._files.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _poll(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while self._files:
                await asyncio.sleep(POLL_SECONDS)
                for uri, (path, seen) in list(self._files.items()):
                    now = stamp(path)
                    if now != seen and uri in self._files:
                        self._files[uri] = (path, now)
                        self._send(updated(uri))
        self._task = None

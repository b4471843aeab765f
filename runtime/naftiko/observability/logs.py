"""The runtime's logs as the control port shows them: logger levels, and a live stream of records.

Levels. `naftiko` is the runtime's logger; `naftiko.access` (its child) carries the per-request
access line, and `naftiko.http` the server's own. Setting `naftiko` governs them all unless a
child has a level of its own. The access line does not go through `logging` (a `Logger` call per
request costs more than the line itself): `access_log.AccessLog` asks `naftiko.access` whether
INFO is enabled once per batch of lines it writes (every 50 ms at most), so a change applies
within that time.

Stream. `HUB` fans records out to the subscribers of `GET /logs/stream`, each record one JSON
object: `timestamp`, `level`, `logger`, `message` (plus `exception`, and `requestId`, `traceId`,
`spanId` when the record carries them); access lines carry their own fields. A logging handler
is attached to `naftiko` only while someone listens, so a runtime nobody watches pays nothing.
A subscriber that reads too slowly loses records (counted in an SSE comment), never slows the
runtime down: each one holds at most `QUEUE_LIMIT` records.

    subscription = HUB.subscribe(max_subscribers=5)   # None when all slots are taken
    async for chunk in subscription: ...              # SSE bytes: `data: {...}\\n\\n`, keep-alive comments
    await subscription.aclose()                       # frees the slot
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import traceback
from collections import deque
from typing import Any

ROOT = "naftiko"
ACCESS = "naftiko.access"
OFF = logging.CRITICAL + 10
LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
    "FATAL": logging.CRITICAL,
    "OFF": OFF,
}
_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
    OFF: "OFF",
}
QUEUE_LIMIT = 1000  # records waiting for one subscriber before new ones are dropped
HEARTBEAT_SECONDS = 15.0  # an SSE comment when nothing happened, so proxies keep the stream open
_CARRIED = ("requestId", "traceId", "spanId")  # record attributes copied into the event

logging.getLogger(ACCESS)  # exists from the start, so it can be listed and set


def level_name(level: int) -> str:
    return _NAMES.get(level) or logging.getLevelName(level)


def parse_level(value: Any) -> int | None:
    """A level from its name (`ERROR`, `warn`, `OFF`…); None when it is not one."""
    return LEVELS.get(value.upper()) if isinstance(value, str) else None


def known_loggers() -> list[str]:
    """`naftiko` and every logger under it that exists in this process."""
    names = [
        name
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith(ROOT + ".") and isinstance(logger, logging.Logger)
    ]
    return [ROOT, *sorted(names)]


def describe(name: str) -> dict[str, Any]:
    logger = logging.getLogger(name)
    return {
        "name": name,
        "level": level_name(logger.level) if logger.level else None,  # None: inherited
        "effectiveLevel": level_name(logger.getEffectiveLevel()),
    }


def set_level(name: str, level: int | None) -> None:
    """`None` makes a logger inherit its parent's level again."""
    logging.getLogger(name).setLevel(level or logging.NOTSET)


def timestamp(seconds: float) -> str:
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1000):03d}Z"


def record_event(record: logging.LogRecord) -> str:
    """One record as the JSON text of a stream event."""
    event: dict[str, Any] = {
        "timestamp": timestamp(record.created),
        "level": level_name(record.levelno),
        "logger": record.name,
        "message": record.getMessage(),
    }
    if record.exc_info:
        event["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
    for name in _CARRIED:
        value = getattr(record, name, None)
        if value is not None:
            event[name] = str(value)
    return json.dumps(event, ensure_ascii=False)


class Subscription:
    """One reader of the stream: an async iterator of SSE chunks."""

    def __init__(self, hub: LogHub):
        self.hub = hub
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.queue: deque[str] = deque()
        self.dropped = 0
        self.closed = False
        self._wake = asyncio.Event()

    def push(self, event: str) -> None:
        """From any thread; records made in another thread are handed to the loop's."""
        if threading.get_ident() != self.thread:
            try:
                self.loop.call_soon_threadsafe(self.push, event)
            except RuntimeError:  # the loop is closed: nobody reads any more
                pass
            return
        if len(self.queue) >= QUEUE_LIMIT:
            self.dropped += 1
            return
        self.queue.append(event)
        try:
            self._wake.set()
        except RuntimeError:  # its loop is closed: a reader that can never come back
            self.closed = True
            self.hub.unsubscribe(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> bytes:
        while not self.queue and not self.dropped:
            if self.closed:
                raise StopAsyncIteration
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), HEARTBEAT_SECONDS)
            except TimeoutError:
                return b": keep-alive\n\n"
        parts = []
        if self.dropped:
            parts.append(f": {self.dropped} records dropped: this client reads too slowly\n\n")
            self.dropped = 0
        while self.queue:
            parts.append(f"data: {self.queue.popleft()}\n\n")
        return "".join(parts).encode()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self._wake.set()
            self.hub.unsubscribe(self)


class _HubHandler(logging.Handler):
    def __init__(self, hub: LogHub):
        super().__init__(logging.NOTSET)
        self.hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = record_event(record)
        except Exception:  # noqa: BLE001 - a record that cannot be shown must not break the caller
            self.handleError(record)
            return
        self.hub.publish(event)


class LogHub:
    """The subscribers of the log stream, process-wide (logging is)."""

    def __init__(self) -> None:
        self.subscribers: list[Subscription] = []
        self._handler = _HubHandler(self)

    def subscribe(self, max_subscribers: int) -> Subscription | None:
        """A new subscription, or None when `max_subscribers` are already listening."""
        if len(self.subscribers) >= max_subscribers:
            return None
        subscription = Subscription(self)
        self.subscribers = [*self.subscribers, subscription]
        if len(self.subscribers) == 1:
            logging.getLogger(ROOT).addHandler(self._handler)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self.subscribers:
            self.subscribers = [s for s in self.subscribers if s is not subscription]
            if not self.subscribers:
                logging.getLogger(ROOT).removeHandler(self._handler)

    def publish(self, event: str) -> None:
        for subscription in self.subscribers:  # a new list on each change: safe to iterate from any thread
            subscription.push(event)


HUB = LogHub()

"""The request log: one JSON line per request on stderr, written once per event-loop turn.

Request ids are a per-process random prefix plus a counter: unique, and no system call per
request. Lines are gathered and written together, so a busy server makes one write per turn
of the loop instead of one per request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import sys
from typing import TextIO

_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)
MAX_CACHED_ROUTES = 1024  # skill and control routes follow the path asked for


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):08x}"


class AccessLog:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.pending: list[str] = []
        self._routes: dict[str, str] = {}  # route → its JSON string

    def record(self, method: str, route: str, status: int, upstream_status: int | None, seconds: float, request_id: str) -> None:
        """`method` is an HTTP token (the parser checked it); `route` and `request_id` may come from the caller."""
        upstream = "null" if upstream_status is None else upstream_status
        encoded_route = self._routes.get(route)
        if encoded_route is None:
            encoded_route = json.dumps(route)
            if len(self._routes) < MAX_CACHED_ROUTES:
                self._routes[route] = encoded_route
        self.pending.append(
            f'{{"method":"{method}","route":{encoded_route},"status":{status},"upstreamStatus":{upstream},'
            f'"latencyMs":{seconds * 1000:.3f},"requestId":{json.dumps(request_id)}}}\n'
        )
        if len(self.pending) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        stream = self.stream or sys.stderr
        stream.write("".join(lines))
        stream.flush()

"""The request log: one JSON line per request on stderr, written at most every 50 ms.

Request ids are a per-process random prefix plus a counter: unique, and no system call per
request. Every line carries the `pid` of the process that answered, read once per server:
with `--workers N` it tells the workers apart. Lines are gathered and written together (a
write per request cost 5 % of a call's CPU); a line waits at most FLUSH_INTERVAL, or less when
MAX_PENDING lines wait, and stopping a server writes what is left.

The lines belong to the logger `naftiko.access` (a child of `naftiko`): they are written only
while it has INFO enabled, which is asked once per batch, not per line (`Logger.isEnabledFor`
is cheap, but the line is cheaper still without it). While someone follows the control port's
`/logs/stream`, each line is also handed to it (observability/logs.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import secrets
import sys
import time
from typing import TextIO

from .observability.logs import ACCESS, HUB, timestamp

_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)
_PLAIN = re.compile(r"[0-9A-Za-z._:-]{1,128}")  # JSON as it is, between quotes (our own ids are)
MAX_CACHED_ROUTES = 1024  # skill and control routes follow the path asked for
FLUSH_INTERVAL = 0.05  # seconds
MAX_PENDING = 512  # lines


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):08x}"


def _json_string(text: str) -> str:
    return f'"{text}"' if _PLAIN.fullmatch(text) else json.dumps(text)


class AccessLog:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.pending: list[str] = []
        self._routes: dict[str, str] = {}  # route → its JSON string
        self._timer: asyncio.TimerHandle | None = None
        self._logger = logging.getLogger(ACCESS)
        self._pid = os.getpid()

    def record(
        self,
        method: str,
        route: str,
        status: int,
        upstream_status: int | None,
        seconds: float,
        request_id: str,
        client: str = "",
        trace: tuple[str, str] | None = None,
    ) -> None:
        """`method` is an HTTP token (the parser checked it); `route`, `request_id` and a
        forwarded `client` may come from the caller; `trace` is the server span's (trace id,
        span id) in hex, when the request was traced (`Request.trace`)."""
        if not self.pending and not self._logger.isEnabledFor(logging.INFO):
            return
        upstream = "null" if upstream_status is None else upstream_status
        encoded_route = self._routes.get(route)
        if encoded_route is None:
            encoded_route = json.dumps(route)
            if len(self._routes) < MAX_CACHED_ROUTES:
                self._routes[route] = encoded_route
        end = "}" if trace is None else f',"traceId":"{trace[0]}","spanId":"{trace[1]}"}}'
        line = (
            f'{{"method":"{method}","route":{encoded_route},"status":{status},"upstreamStatus":{upstream},'
            f'"latencyMs":{seconds * 1000:.3f},"requestId":{_json_string(request_id)},"client":{_json_string(client)},"pid":{self._pid}{end}'
        )
        self.pending.append(line)
        if HUB.subscribers:
            HUB.publish(f'{{"timestamp":"{timestamp(time.time())}","level":"INFO","logger":"{ACCESS}",{line[1:]}')
        if len(self.pending) == 1:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)
        elif len(self.pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        stream = self.stream or sys.stderr
        stream.write("\n".join(lines) + "\n")
        stream.flush()

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


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):08x}"


class AccessLog:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.pending: list[str] = []

    def record(self, method: str, route: str, status: int, upstream_status: int | None, seconds: float, request_id: str) -> None:
        upstream = "null" if upstream_status is None else upstream_status
        self.pending.append(
            f'{{"method":"{method}","route":{json.dumps(route)},"status":{status},"upstreamStatus":{upstream},'
            f'"latencyMs":{seconds * 1000:.3f},"requestId":{json.dumps(request_id)}}}\n'
        )
        if len(self.pending) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        stream = self.stream or sys.stderr
        stream.write("".join(lines))
        stream.flush()

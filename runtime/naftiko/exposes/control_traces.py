"""`/traces` on the control port: the recent traces kept in the tracing ring buffer.

- `GET /traces` → `{"traces": [{traceId, operation, durationMs, status, spanCount, timestamp}],
  "bufferSize", "bufferUsed"}`, newest first; `?operation=` and `?status=` filter, `?limit=`
  keeps the first N.
- `GET /traces/{traceId}` → that trace with its `spans` ([{spanId, parentSpanId, name, kind, …}]);
  404 when the buffer no longer (or never) held it.
Served when observability is on and `observability.traces.local.enabled` (both default true).
The buffer is the tracing ring buffer (observability/trace_buffer.py: `recent()`, `trace(id)`); while
tracing is off it holds nothing, and `/traces` answers an empty list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..http import Request, Response, json_response
from .problems import problem

DEFAULT_BUFFER_SIZE = 100
SUMMARY_FIELDS = ("traceId", "operation", "durationMs", "status", "spanCount", "timestamp")


class TraceSource(Protocol):
    def recent(self) -> list[dict[str, Any]]: ...

    def trace(self, trace_id: str) -> dict[str, Any] | None: ...


class Traces:
    """The two routes; `source()` gives the buffer at the time of the request (None: tracing off)."""

    def __init__(self, source: Callable[[], TraceSource | None], buffer_size: int = DEFAULT_BUFFER_SIZE):
        self.source = source
        self.buffer_size = buffer_size

    def summaries(self, request: Request) -> Response:
        source = self.source()
        recent = list(source.recent()) if source is not None else []
        used = len(recent)
        query = request.query
        if "operation" in query:
            recent = [t for t in recent if str(t.get("operation")) == query["operation"]]
        if "status" in query:
            recent = [t for t in recent if str(t.get("status", "")).lower() == query["status"].lower()]
        limit = query.get("limit", "")
        if limit.isdigit():
            recent = recent[: int(limit)]
        traces = [{k: t.get(k) for k in SUMMARY_FIELDS} for t in recent]
        return json_response({"traces": traces, "bufferSize": self.buffer_size, "bufferUsed": used})

    def one(self, request: Request) -> Response:
        trace_id = request.path.rstrip("/").removeprefix("/traces/")
        source = self.source()
        found = source.trace(trace_id) if source is not None and trace_id else None
        if found is None:
            shown = trace_id if len(trace_id) <= 64 else trace_id[:64] + "…"
            return problem(
                404,
                "unknown-trace",
                "Unknown trace",
                f"no trace {shown!r} in the buffer (it keeps the last {self.buffer_size})",
            )
        return json_response(found)

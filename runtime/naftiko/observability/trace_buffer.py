"""The control port's trace ring buffer: the last `buffer-size` completed traces, in memory.

A span processor beside the batch exporter. A trace is complete when its local root ends (the
SERVER span of a REST request or an MCP `tools/call`, or a CLIENT span started outside any
request); its children end first and wait in a bounded pending table. Only sampled spans reach
it, so with `sampling: 0.1` it holds one trace in ten. Ending a span costs an append under a
lock; the JSON below is made only when the control port asks.

API for the control port (`GET /traces`, `GET /traces/{traceId}`), found with
`naftiko.observability.trace_buffer(capability)`:

    buffer.recent(limit=None, operation=None, status=None) -> list[dict]   # newest first
        [{"traceId": "4bf92f3577b34da6a3ce929d0e0e4736",  # 32 hex digits
          "operation": "tools/call get-customer",        # the root span's name ("GET /customers/{id}")
          "durationMs": 12.345,                          # first span start to last span end
          "status": "ok",                                 # "ok" | "error" (a root span in error)
          "spanCount": 2,
          "timestamp": "2026-11-30T12:00:00.123Z"}]       # the trace's start, UTC
        `operation` keeps the traces of that root name, `status` those of that status.

    buffer.trace("4bf92f35…") -> dict | None          # None: unknown or already evicted
        {…the summary above…, "spans": [                # ordered by start time
          {"spanId": "00f067aa0ba902b7",
           "parentSpanId": "0000000000000001" | None,    # a root's remote parent is kept
           "name": "GET", "kind": "CLIENT",              # SERVER | CLIENT | INTERNAL | …
           "startTime": "2026-11-30T12:00:00.124Z", "durationMs": 3.2,
           "status": "ok" | "error",
           "attributes": {"http.request.method": "GET", "http.response.status_code": 200, …}}]}

Safe to call from any thread. Attributes hold no header values and no secret query values
(see tracing.py), so the answers can be served as they are.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

PENDING_FACTOR = 4  # traces whose root has not ended yet, at most this many times the buffer size


class TraceBuffer(SpanProcessor):
    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()  # complete, oldest first
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()  # waiting for their root

    # -- SpanProcessor ---------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        trace_id = span.context.trace_id
        parent = span.parent
        with self._lock:
            done = self._traces.get(trace_id)
            if done is not None:  # a late child, or a second request in the same trace
                done.append(span)
                if parent is None or parent.is_remote:
                    self._traces.move_to_end(trace_id)
                return
            if parent is not None and not parent.is_remote:
                waiting = self._pending.get(trace_id)
                if waiting is None:
                    waiting = self._pending[trace_id] = []
                    if len(self._pending) > self.size * PENDING_FACTOR:
                        self._pending.popitem(last=False)
                waiting.append(span)
                return
            spans = self._pending.pop(trace_id, [])
            spans.append(span)
            self._traces[trace_id] = spans
            if len(self._traces) > self.size:
                self._traces.popitem(last=False)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- the control port's API -------------------------------------------------------------------

    def recent(
        self, limit: int | None = None, operation: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Summaries of the completed traces, newest first (see the module docstring)."""
        with self._lock:
            traces = [(trace_id, list(spans)) for trace_id, spans in reversed(self._traces.items())]
        found = []
        for trace_id, spans in traces:
            summary = _summary(trace_id, spans)
            if operation is not None and summary["operation"] != operation:
                continue
            if status is not None and summary["status"] != status:
                continue
            found.append(summary)
            if limit is not None and len(found) >= limit:
                break
        return found

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One completed trace with its spans, or None (see the module docstring)."""
        try:
            key = int(trace_id, 16) if len(trace_id) == 32 else None
        except ValueError:
            key = None
        if key is None:
            return None
        with self._lock:
            spans = self._traces.get(key)
            spans = list(spans) if spans is not None else None
        if spans is None:
            return None
        ordered = sorted(spans, key=lambda s: s.start_time or 0)
        return {**_summary(key, spans), "spans": [_span(span) for span in ordered]}

    def clear(self) -> None:
        with self._lock:
            self._traces.clear()
            self._pending.clear()


def _roots(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is None or s.parent.is_remote] or spans


def _summary(trace_id: int, spans: list[ReadableSpan]) -> dict[str, Any]:
    roots = sorted(_roots(spans), key=lambda s: s.start_time or 0)
    start = min(s.start_time or 0 for s in spans)
    end = max(s.end_time or 0 for s in spans)
    return {
        "traceId": f"{trace_id:032x}",
        "operation": roots[0].name,
        "durationMs": _ms(end - start),
        "status": "error" if any(s.status.status_code is StatusCode.ERROR for s in roots) else "ok",
        "spanCount": len(spans),
        "timestamp": _time(start),
    }


def _span(span: ReadableSpan) -> dict[str, Any]:
    parent = span.parent
    return {
        "spanId": f"{span.context.span_id:016x}",
        "parentSpanId": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "startTime": _time(span.start_time or 0),
        "durationMs": _ms((span.end_time or 0) - (span.start_time or 0)),
        "status": "error" if span.status.status_code is StatusCode.ERROR else "ok",
        "attributes": {
            key: list(value) if isinstance(value, tuple) else value for key, value in (span.attributes or {}).items()
        },
    }


def _ms(nanoseconds: int) -> float:
    return round(nanoseconds / 1e6, 3)


def _time(nanoseconds: int) -> str:
    moment = datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

"""The control port's trace ring buffer: the last `buffer-size` completed traces, in memory.

A SpanRecorder sink of local roots, beside the OTLP exporter (spans.py). A trace is complete
when its local root ends (the SERVER span of a REST request or an MCP `tools/call`, or a CLIENT
span started outside any request); the spans under it come along in the root's `descendants`.
Only sampled spans reach it, so with `sampling: 0.1` it holds one trace in ten. Ending a root
costs a deque append; the JSON below is made only when the control port asks.

API for the control port (`GET /traces`, `GET /traces/{traceId}`), found with
`naftiko.observability.trace_buffer_of(capability)` (not `trace_buffer`: that name is this
module's, which the package attribute would become once the module is imported):

    buffer.recent() -> list[dict]   # newest first
        [{"traceId": "4bf92f3577b34da6a3ce929d0e0e4736",  # 32 hex digits
          "operation": "tools/call get-customer",        # the root span's name ("GET /customers/{id}")
          "durationMs": 12.345,                          # first span start to last span end
          "status": "ok",                                 # "ok" | "error" (a root span in error)
          "spanCount": 2,
          "timestamp": "2026-11-30T12:00:00.123Z"}]       # the trace's start, UTC

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

from collections import deque
from datetime import UTC, datetime
from typing import Any

from .spans import LiveSpan


class TraceBuffer:
    def __init__(self, size: int):
        self.size = size
        self._roots: deque[LiveSpan] = deque(maxlen=size)  # local roots, oldest first
        self.add = self._roots.append  # the SpanRecorder sink of local roots (atomic: any thread)

    def recent(self) -> list[dict[str, Any]]:
        """Summaries of the completed traces, newest first (see the module docstring)."""
        return [_summary(trace_id, roots, _spans(roots)) for trace_id, roots in self._traces().items()]

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One completed trace with its spans, or None (see the module docstring)."""
        try:
            key = int(trace_id, 16) if len(trace_id) == 32 else None
        except ValueError:
            key = None
        roots = self._traces().get(key) if key is not None else None
        if roots is None:
            return None
        spans = _spans(roots)
        ordered = sorted(spans, key=lambda s: s.start_time)
        return {**_summary(key, roots, spans), "spans": [_span(span) for span in ordered]}  # type: ignore[arg-type]

    def _traces(self) -> dict[int, list[LiveSpan]]:
        """The kept traces by id, newest first: a trace is complete when its local root ends
        (its `descendants` came with it); two requests in the same trace are one trace."""
        traces: dict[int, list[LiveSpan]] = {}
        for root in reversed(self._roots.copy()):
            traces.setdefault(root.trace_id, []).append(root)
        return traces


def _spans(roots: list[LiveSpan]) -> list[LiveSpan]:
    """The ended spans of a trace: its local roots and their descendants."""
    return roots + [span for root in roots for span in root.descendants if span.end_time]


def _summary(trace_id: int, roots: list[LiveSpan], spans: list[LiveSpan]) -> dict[str, Any]:
    roots = sorted(roots, key=lambda s: s.start_time)
    start = min(s.start_time for s in spans)
    end = max(s.end_time for s in spans)
    return {
        "traceId": f"{trace_id:032x}",
        "operation": roots[0].name,
        "durationMs": _ms(end - start),
        "status": "error" if any(s.error for s in roots) else "ok",
        "spanCount": len(spans),
        "timestamp": _time(start),
    }


def _span(span: LiveSpan) -> dict[str, Any]:
    return {
        "spanId": f"{span.span_id:016x}",
        "parentSpanId": f"{span.parent_id:016x}" if span.parent_id else None,
        "name": span.name,
        "kind": span.kind.name,
        "startTime": _time(span.start_time),
        "durationMs": _ms(span.end_time - span.start_time),
        "status": "error" if span.error else "ok",
        "attributes": {
            key: list(value) if isinstance(value, tuple) else value for key, value in (span.attributes or {}).items()
        },
    }


def _ms(nanoseconds: int) -> float:
    return round(nanoseconds / 1e6, 3)


def _time(nanoseconds: int) -> str:
    moment = datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

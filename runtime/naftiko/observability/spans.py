"""The runtime's spans: recorded as small slotted objects and handed, once ended, to sinks.

The SDK's `Tracer.start_span` builds a general-purpose mutable `Span` (a lock, bounded
attributes, events, links, a `Context` to attach), and its `BatchSpanProcessor` then queues
each ended span for a thread: with its encoder, +55 % server CPU per MCP call at 16 concurrent
calls (bench/tracing_cost.py, both servers at once; +24 % with the runtime's own). The runtime's spans are simpler: a SERVER span per
request and a CLIENT span per upstream attempt, a handful of attributes known when they end,
no events, no links. `SpanRecorder` gives each one ids (the SDK's id generator), asks the SDK's
sampler for local roots, and on `end` hands the span itself to its sinks: the control port's
ring buffer (trace_buffer.py) and the OTLP exporter (otlp_export.py). An ended span is not
changed any more (its attributes may be `SharedAttributes`, the same mapping for every span
alike). Children follow their local parent's sampling decision, which is what every
sampler the SDK ships decides for them anyway.

The current span of a request is kept in a context variable of our own (`current()`), not in
OpenTelemetry's `Context`: nothing else in the process reads it, and attaching a `Context`
costs more than the rest of a span.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)

_CURRENT: ContextVar[LiveSpan | None] = ContextVar("naftiko_current_span", default=None)


class LiveSpan:
    """A span: `attributes`, `name` and `error` may be changed until `end()`; after it, the
    span is what the sinks read. Ids are plain ints (`parent_id` 0 for a root; `remote_parent`
    when the parent came with the request); times are ns since the epoch. `calls` counts the
    CLIENT spans started under it. A local root's `descendants` lists the spans started under it
    (those not ended yet have `end_time` 0), which is how the ring buffer gets a whole trace at
    once; a child's is None: a child holding its root's list would make a reference cycle per
    trace, left for the garbage collector to find (4 µs a call, measured)."""

    __slots__ = (
        "sinks",
        "trace_id",
        "span_id",
        "parent_id",
        "remote_parent",
        "sampled",
        "trace_state",
        "name",
        "kind",
        "start_time",
        "end_time",
        "attributes",
        "error",
        "recording",
        "calls",
        "descendants",
    )

    def __init__(
        self,
        sinks: tuple[Sink, ...],
        trace_id: int,
        span_id: int,
        parent_id: int,
        remote_parent: bool,
        sampled: bool,
        trace_state: TraceState | None,
        name: str,
        kind: SpanKind,
        descendants: list[LiveSpan] | None,
    ):
        self.sinks = sinks
        self.descendants = descendants
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.remote_parent = remote_parent
        self.sampled = sampled
        self.recording = sampled
        self.trace_state = trace_state
        self.name = name
        self.kind = kind
        self.attributes: dict[str, Any] = {}
        self.error = False
        self.calls = 0
        self.end_time = 0
        self.start_time = time.time_ns()

    def end(self) -> None:
        if self.recording:
            self.recording = False
            self.end_time = time.time_ns()
            for sink in self.sinks:
                sink(self)

    def span_context(self) -> SpanContext:
        """The OpenTelemetry `SpanContext` of this span (for a propagator to inject)."""
        return SpanContext(
            self.trace_id, self.span_id, False, _SAMPLED if self.sampled else _NOT_SAMPLED, self.trace_state
        )


Sink = Callable[[LiveSpan], None]


class SharedAttributes(dict):
    """Span attributes given, unchanged, to every span alike (an MCP tool's successful calls):
    never changed once made, so an encoder may write them once for all."""

    __slots__ = ()


class SpanRecorder:
    """Starts `LiveSpan`s; each sampled one is handed to every sink when it ends."""

    def __init__(
        self,
        sampler: Sampler,
        ids: IdGenerator,
        sinks: Sequence[Sink],
        root_sinks: Sequence[Sink] = (),
        always_sample_roots: bool = False,
    ):
        """`sinks` get every span, `root_sinks` too but only local roots (with their descendants)."""
        self.sampler = sampler
        self.ids = ids
        self.sinks = tuple(sinks)
        self.root_sinks = tuple(root_sinks) + self.sinks
        self.always_sample_roots = always_sample_roots  # the sampler is ParentBased(ALWAYS_ON)

    def root(self, name: str, kind: SpanKind, parent: SpanContext | None, parent_context: Context | None) -> LiveSpan:
        """A local root: under `parent` when the request came with one (`parent_context` is the
        extracted `Context` the sampler reads), else the first span of a new trace."""
        if self.always_sample_roots:
            sampled = parent.trace_flags.sampled if parent is not None else True
            trace_id = parent.trace_id if parent is not None else self.ids.generate_trace_id()
            trace_state = parent.trace_state if parent is not None else None
        else:
            trace_id = parent.trace_id if parent is not None else self.ids.generate_trace_id()
            result = self.sampler.should_sample(parent_context, trace_id, name, kind)
            sampled = result.decision is Decision.RECORD_AND_SAMPLE  # RECORD_ONLY: none of the samplers offered
            trace_state = result.trace_state
        parent_id = parent.span_id if parent is not None else 0
        span_id = self.ids.generate_span_id()
        return LiveSpan(
            self.root_sinks, trace_id, span_id, parent_id, parent is not None, sampled, trace_state, name, kind, []
        )

    def child(self, parent: LiveSpan, name: str, kind: SpanKind) -> LiveSpan:
        """A span under a local one: same trace, same sampling decision; listed in the parent's
        `descendants` when the parent is a local root (the runtime's children are CLIENT spans
        under a request's SERVER span: leaves)."""
        span = LiveSpan(
            self.sinks,
            parent.trace_id,
            self.ids.generate_span_id(),
            parent.span_id,
            False,
            parent.sampled,
            parent.trace_state,
            name,
            kind,
            None,
        )
        if span.sampled and parent.descendants is not None:
            parent.descendants.append(span)
        return span


def current() -> LiveSpan | None:
    """The SERVER span of the request being handled, if it is traced."""
    return _CURRENT.get()


def enter(span: LiveSpan) -> Any:
    """Make `span` current; returns the token `leave` takes."""
    return _CURRENT.set(span)


def leave(token: Any) -> None:
    _CURRENT.reset(token)


def in_context(span: LiveSpan, base: Context | None = None) -> Context:
    """An OpenTelemetry `Context` holding `span`'s ids, for a propagator to inject."""
    return trace_api.set_span_in_context(trace_api.NonRecordingSpan(span.span_context()), base)

"""Recording the runtime's two kinds of span cheaply, as the SDK's own `ReadableSpan`s.

The SDK's `Tracer.start_span` builds a general-purpose mutable `Span` (a lock, bounded
attributes, events, links, a `Context` to attach): about 20 µs a span here, twice per MCP call.
The runtime's spans are simpler: a SERVER span per request and a CLIENT span per upstream
attempt, with a handful of attributes known when they end. `SpanRecorder` gives each one ids
(the provider's id generator), asks the provider's sampler for local roots, and on `end` hands
one immutable `ReadableSpan` (the type every SDK span processor and exporter takes) to the
provider's processors. Children follow their local parent's sampling decision, which is what
every sampler the SDK ships decides for them anyway.

The current span of a request is kept in a context variable of our own (`current()`), not in
OpenTelemetry's `Context`: nothing else in the process reads it, and attaching a `Context`
costs more than the rest of a span.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)
_RECORDED = (Decision.RECORD_AND_SAMPLE, Decision.RECORD_ONLY)

_CURRENT: ContextVar[LiveSpan | None] = ContextVar("naftiko_current_span", default=None)


class LiveSpan:
    """A span being timed. `attributes` and `status` may be changed until `end()`."""

    __slots__ = ("recorder", "context", "parent", "name", "kind", "start", "attributes", "error", "recording")

    def __init__(
        self,
        recorder: SpanRecorder,
        context: SpanContext,
        parent: SpanContext | None,
        name: str,
        kind: SpanKind,
        recording: bool,
    ):
        self.recorder = recorder
        self.context = context
        self.parent = parent
        self.name = name
        self.kind = kind
        self.recording = recording
        self.attributes: dict[str, Any] = {}
        self.error = False
        self.start = time.time_ns()

    def end(self) -> None:
        if self.recording:
            self.recording = False
            self.recorder.finished(self, time.time_ns())


class SpanRecorder:
    """Starts `LiveSpan`s and hands the finished ones to `processors` as `ReadableSpan`s."""

    def __init__(
        self,
        sampler: Sampler,
        ids: IdGenerator,
        resource: Resource,
        scope: InstrumentationScope,
        processors: Sequence[SpanProcessor],
        always_sample_roots: bool = False,
    ):
        self.sampler = sampler
        self.ids = ids
        self.resource = resource
        self.scope = scope
        self.processors = tuple(processors)
        self.always_sample_roots = always_sample_roots  # the sampler is ParentBased(ALWAYS_ON)

    def start(self, name: str, kind: SpanKind, parent: SpanContext | None, parent_context: Context | None) -> LiveSpan:
        """A span under `parent` (a remote parent, or a local span's context), or a new root when
        it is None. `parent_context` is the `Context` the sampler reads for a remote parent."""
        if parent is not None and not parent.is_remote:  # a local child: same trace, same decision
            sampled = parent.trace_flags.sampled
            trace_id, trace_state = parent.trace_id, parent.trace_state
        elif self.always_sample_roots:
            sampled = parent.trace_flags.sampled if parent is not None else True
            trace_id = parent.trace_id if parent is not None else self.ids.generate_trace_id()
            trace_state = parent.trace_state if parent is not None else None
        else:
            trace_id = parent.trace_id if parent is not None else self.ids.generate_trace_id()
            result = self.sampler.should_sample(parent_context, trace_id, name, kind)
            sampled = result.decision in _RECORDED
            trace_state = result.trace_state
        context = SpanContext(
            trace_id, self.ids.generate_span_id(), False, _SAMPLED if sampled else _NOT_SAMPLED, trace_state
        )
        return LiveSpan(self, context, parent, name, kind, sampled)

    def finished(self, span: LiveSpan, end: int) -> None:
        readable = ReadableSpan(
            span.name,
            context=span.context,
            parent=span.parent,
            resource=self.resource,
            attributes=span.attributes,
            kind=span.kind,
            status=_ERROR if span.error else _UNSET,
            start_time=span.start,
            end_time=end,
            instrumentation_scope=self.scope,
        )
        for processor in self.processors:
            processor.on_end(readable)


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
    return trace_api.set_span_in_context(trace_api.NonRecordingSpan(span.context), base)

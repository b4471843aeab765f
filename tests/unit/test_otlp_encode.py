"""The OTLP span encoder against the SDK's own (both must parse to the same message), and the exporter's batching."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState  # noqa: E402

from naftiko.observability.otlp_encode import SpanEncoder  # noqa: E402
from naftiko.observability.spans import LiveSpan, SharedAttributes  # noqa: E402

RESOURCE = Resource.create({"service.name": "naftiko-test", "service.version": "1.2.3", "replicas": 3})
SCOPE = InstrumentationScope("naftiko", "0.1.0")
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _span(
    name: str,
    span_id: int,
    parent: SpanContext | None = None,
    kind: SpanKind = SpanKind.SERVER,
    attributes: dict | None = None,
    error: bool = False,
    state: TraceState | None = None,
) -> LiveSpan:
    parent_id, remote = (parent.span_id, parent.is_remote) if parent is not None else (0, False)
    span = LiveSpan((), TRACE, span_id, parent_id, remote, True, state, name, kind, [])
    span.attributes = attributes or {}
    span.error = error
    span.start_time, span.end_time = 1_765_000_000_123_456_789, 1_765_000_000_223_456_789
    return span


def _as_sdk(span: LiveSpan, resource: Resource) -> ReadableSpan:
    parent = SpanContext(TRACE, span.parent_id, span.remote_parent, SAMPLED) if span.parent_id else None
    return ReadableSpan(
        span.name,
        context=span.span_context(),
        parent=parent,
        resource=resource,
        attributes=span.attributes,
        kind=span.kind,
        status=Status(StatusCode.ERROR if span.error else StatusCode.UNSET),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=SCOPE,
    )


def _same(spans: list[LiveSpan], resource: Resource = RESOURCE, encoder: SpanEncoder | None = None) -> bytes:
    encoder = encoder or SpanEncoder(resource, SCOPE)
    body = encoder.request(encoder.spans(spans))
    ours = ExportTraceServiceRequest.FromString(body)
    theirs = encode_spans([_as_sdk(span, resource) for span in spans])
    assert ours == theirs, f"\nours:   {ours}\ntheirs: {theirs}"
    return body


def test_server_and_client_spans_of_one_call() -> None:
    remote = SpanContext(TRACE, 0x00F067AA0BA902B7, True, SAMPLED)
    server = _span(
        "tools/call get-customer",
        0x1111,
        remote,
        attributes={"http.request.method": "POST", "url.path": "/mcp", "http.response.status_code": 200},
    )
    client = _span(
        "GET",
        0x2222,
        server.span_context(),
        kind=SpanKind.CLIENT,
        attributes={"url.full": "http://127.0.0.1:9/x?api_key=REDACTED", "server.port": 9},
        error=True,
    )
    _same([server, client])


def test_every_attribute_type() -> None:
    attributes = {
        "text": "é ✓",
        "empty": "",
        "yes": True,
        "no": False,
        "zero": 0,
        "negative": -42,
        "big": 2**62,
        "ratio": 0.25,
        "raw": b"\x00\xff",
        "strings": ("a", "b"),
        "numbers": [1, 2, 3],
        "long": "x" * 20_000,  # a span over 16 KiB: its length takes three bytes
    }
    _same([_span("all", 0x3, attributes=attributes, error=True)])


def test_trace_state_every_kind_and_a_resource_with_a_schema() -> None:
    resource = Resource({"service.name": "other", "list": ("a", "b")}, "https://opentelemetry.io/schemas/1.21.0")
    state = TraceState([("vendor", "value"), ("other", "x")])
    spans = [_span(kind.name, 0x10 + kind.value, kind=kind, state=state) for kind in SpanKind]
    _same(spans, resource)


def test_repeated_pairs_and_names_are_reused_without_changing_the_output() -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE)
    spans = [_span("same", n, attributes={"http.request.method": "GET", "n": n % 7}) for n in range(1, 50)]
    first = _same(spans, encoder=encoder)
    assert _same(spans, encoder=encoder) == first


def test_shared_attributes_are_written_once_and_read_the_same() -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE)
    shared = SharedAttributes({"mcp.method.name": "tools/call", "gen_ai.tool.name": "get-item", "status": 200})
    spans = [_span("tools/call get-item", n) for n in range(1, 4)]
    for span in spans:
        span.attributes = shared
    first = _same(spans, encoder=encoder)
    assert list(encoder._blocks.values()) == [(shared, encoder._blocks[id(shared)][1])]
    assert _same(spans, encoder=encoder) == first


def test_the_sdk_exporter_still_has_the_http_client_spans_are_posted_through() -> None:
    """Guards what otlp_export.py reaches into: an SDK upgrade that moves the exporter's HTTP
    client fails here, not in production."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        assert callable(exporter._client.export)
    finally:
        exporter.shutdown()


def test_the_exporter_sends_batches_of_whole_spans_and_everything_on_flush() -> None:
    """Spans are encoded as they end and sent `max_batch` at a time (one full batch as soon as
    it is there, the rest on flush); each body is a whole request holding exactly its spans."""
    import asyncio

    from naftiko.observability.otlp_export import OtlpExporter

    async def scenario() -> list[bytes]:
        exporter = OtlpExporter("http://127.0.0.1:9/v1/traces", SpanEncoder(RESOURCE, SCOPE), 60.0, max_batch=5)
        bodies: list[bytes] = []

        class Sent:
            success = True

        def export(body: bytes) -> Sent:
            bodies.append(body)
            return Sent()

        exporter.sdk._client.export = export  # type: ignore[method-assign]
        for n in range(1, 72):  # more than one encoding slice (64)
            exporter.add(_span(f"span-{n}", n, attributes={"n": n}))
        await asyncio.sleep(0.05)
        assert len(bodies) == 14  # the full batches went without waiting for the schedule delay
        await exporter.close()
        return bodies

    bodies = asyncio.run(scenario())
    names = [
        span.name
        for body in bodies
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    assert names == [f"span-{n}" for n in range(1, 72)]
    assert len(bodies) == 15


def test_past_max_queue_spans_are_dropped_counted_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from naftiko.observability.otlp_export import OtlpExporter

    async def scenario() -> int:
        exporter = OtlpExporter("http://127.0.0.1:9/v1/traces", SpanEncoder(RESOURCE, SCOPE), 60.0, 5, max_queue=10)
        sent = []

        class Sent:
            success = True

        def export(body: bytes) -> Sent:
            sent.extend(
                span.name
                for r in ExportTraceServiceRequest.FromString(body).resource_spans
                for s in r.scope_spans
                for span in s.spans
            )
            return Sent()

        exporter.sdk._client.export = export  # type: ignore[method-assign]
        for n in range(1, 16):  # the loop does not turn meanwhile: nothing is sent yet
            exporter.add(_span(f"span-{n}", n))
        await exporter.close()
        return len(sent)

    assert asyncio.run(scenario()) == 10
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert warnings == [
        "tracing: 5 span(s) dropped: more than 10 waited for http://127.0.0.1:9/v1/traces (OTEL_BSP_MAX_QUEUE_SIZE)"
    ]

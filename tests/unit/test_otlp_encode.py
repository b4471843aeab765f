"""The fast OTLP span encoder against the SDK's own: both must parse to the same message."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import Event, ReadableSpan  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState  # noqa: E402

from naftiko.observability.otlp_encode import SpanEncoder  # noqa: E402

RESOURCE = Resource.create({"service.name": "naftiko-test", "service.version": "1.2.3", "replicas": 3})
OTHER_RESOURCE = Resource({"service.name": "other"}, "https://opentelemetry.io/schemas/1.21.0")
SCOPE = InstrumentationScope("naftiko", "0.1.0")
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _span(name: str, span_id: int, parent: SpanContext | None = None, **extra) -> ReadableSpan:
    fields = {
        "context": SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id, False, SAMPLED, extra.pop("state", None)),
        "parent": parent,
        "resource": RESOURCE,
        "instrumentation_scope": SCOPE,
        "kind": SpanKind.SERVER,
        "start_time": 1_765_000_000_123_456_789,
        "end_time": 1_765_000_000_223_456_789,
    }
    fields.update(extra)
    return ReadableSpan(name, **fields)


def _same(spans: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    theirs = encode_spans(spans)
    assert ours == theirs, f"\nours:   {ours}\ntheirs: {theirs}"


def test_server_and_client_spans_of_one_call() -> None:
    remote = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, SAMPLED)
    server = _span(
        "tools/call get-customer",
        0x1111,
        remote,
        attributes={"http.request.method": "POST", "url.path": "/mcp", "http.response.status_code": 200},
    )
    local = server.context
    client = _span(
        "GET",
        0x2222,
        local,
        kind=SpanKind.CLIENT,
        attributes={"url.full": "http://127.0.0.1:9/x?api_key=REDACTED", "server.port": 9},
        status=Status(StatusCode.ERROR),
    )
    _same([server, client])


def test_every_attribute_type_and_status_description() -> None:
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
    }
    _same([_span("all", 0x3, attributes=attributes, status=Status(StatusCode.ERROR, "upstream answered 503"))])


def test_events_links_trace_state_and_several_resources() -> None:
    linked = SpanContext(0xABC, 0xDEF, True, SAMPLED)
    spans = [
        _span(
            "with-events",
            0x4,
            kind=SpanKind.INTERNAL,
            state=TraceState([("vendor", "value"), ("other", "x")]),
            events=(Event("retry", {"attempt": 2}, 1_765_000_000_200_000_000),),
            links=(Link(linked, {"why": "batch"}),),
            status=Status(StatusCode.OK),
        ),
        _span("elsewhere", 0x5, resource=OTHER_RESOURCE, kind=SpanKind.PRODUCER),
        _span("no-scope", 0x6, instrumentation_scope=None, kind=SpanKind.CONSUMER),
    ]
    _same(spans)


def test_repeated_pairs_are_reused_without_changing_the_output() -> None:
    encoder = SpanEncoder()
    spans = [_span("same", n, attributes={"http.request.method": "GET", "n": n}) for n in range(1, 50)]
    first = encoder.encode(spans)
    assert encoder.encode(spans) == first
    assert ExportTraceServiceRequest.FromString(first) == encode_spans(spans)


def test_the_exporter_posts_with_our_encoder_through_the_sdk_client() -> None:
    """Guards the fast path: should an SDK upgrade drop the exporter's HTTP client, spans would
    still go out (the SDK's own export), but at five times the encoding cost."""
    from naftiko.observability.otlp_export import QuietOtlpExporter

    exporter = QuietOtlpExporter("http://127.0.0.1:9/v1/traces")
    try:
        assert exporter._client is not None
    finally:
        exporter.shutdown()

"""Traces end to end: real REST and MCP servers on 127.0.0.1, a recording fake upstream, and a
real OTLP/HTTP receiver decoding what the OpenTelemetry exporter posts (tests/otlp_receiver.py).

Each test writes its own capability (a consumed GET with a path and two query parameters,
exposed as REST, as an MCP tool, and a control exposure carrying `observability`) with a label
of its own, so no two tests share a tracer provider."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from mcp import Client

from naftiko.engine.capability import Capability
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.observability import capability_tracing, retire_unused, trace_buffer_of
from naftiko.run_command import _mcp_route_factory
from naftiko.server import plan
from naftiko.spec.document import load_document
from otlp_receiver import OtlpReceiver, ReceivedSpan
from run_process import _environment
from support import REPO, FakeUpstream, Serving, free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}


def capability_file(tmp_path: Path, label: str, observability: str) -> Path:
    """A capability whose control exposure carries `observability` (YAML, indented as given)."""
    block = textwrap.indent(textwrap.dedent(observability).strip(), " " * 6)
    text = textwrap.dedent(
        """\
        naftiko: 1.0.0-alpha2
        info:
          label: LABEL
          description: tracing under test
        capability:
          consumes:
          - type: http
            namespace: up
            baseUri: http://upstream.invalid
            resources:
            - name: items
              path: /items/{id}
              operations:
              - name: get-item
                method: GET
                inputParameters:
                - {name: id, in: path}
                - {name: q, in: query}
                - {name: token, in: query}
          exposes:
          - type: rest
            namespace: rest
            port: 8080
            resources:
            - path: /items/{id}
              operations:
              - method: GET
                call: up.get-item
          - type: mcp
            namespace: mcp
            port: 9090
            tools:
            - name: get-item
              description: One item
              call: up.get-item
          - type: control
            port: 9190
            observability:
        """
    ).replace("LABEL", label)
    path = tmp_path / f"{label}.yaml"
    path.write_text(text + block + "\n", encoding="utf-8")
    return path


class Traced:
    """The capability compiled and its REST and MCP ports served in process."""

    def __init__(self, capability: Capability):
        self.capability = capability
        self.ports: dict[str, Serving] = {}

    async def start(self) -> Traced:
        factory = _mcp_route_factory()
        for port_plan in plan([self.capability]):
            if port_plan.kind in ("rest", "mcp"):
                serving = Serving(port_plan, factory)
                await serving.start_server()
                self.ports[port_plan.kind] = serving
        return self

    def url(self, kind: str, path: str) -> str:
        return self.ports[kind].make_url(path)

    @property
    def tracing(self) -> Any:
        tracing = capability_tracing(self.capability)
        assert tracing is not None
        return tracing

    async def flush(self) -> None:
        """Export what is batched."""
        await asyncio.wait_for(self.tracing.flush(), 10)

    async def close(self) -> None:
        for serving in self.ports.values():
            await serving.close()
        await self.capability.close()
        await self.tracing.close()


async def serve(
    tmp_path: Path, upstream: FakeUpstream, label: str, observability: str, environ: dict[str, str] | None = None
) -> Traced:
    document = load_document(capability_file(tmp_path, label, observability))
    assert document.valid, document.errors
    options = CompileOptions(upstreams={"up": upstream.url}, environ={**FAST_EXPORT, **(environ or {})})
    return await Traced(compile_capability(document, options)).start()


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()


async def get(url: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.read()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


async def mcp_call(
    url: str, tool: str, arguments: dict[str, Any], meta: dict[str, str] | None = None, **headers: str
) -> dict[str, Any]:
    """initialize, notifications/initialized, then tools/call (with `meta` as `params._meta`), as
    plain JSON-RPC over HTTP."""
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=INITIALIZE, headers=base) as response:
            session = {"Mcp-Session-Id": response.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
        async with http.post(
            url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers={**base, **session}
        ) as response:
            assert response.status == 202
        params = {"name": tool, "arguments": arguments, **({"_meta": meta} if meta else {})}
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        async with http.post(url, json=call, headers={**base, **session, **headers}) as response:
            return json.loads(await response.read())


def sampled(traceparent: str) -> str:
    """The traceparent without its flags, checked to say sampled (01, or 03 with W3C level 2's
    random-trace-id bit on a trace that starts here)."""
    head, _, flags = traceparent.rpartition("-")
    assert int(flags, 16) & 1, traceparent
    return head


def export_threads() -> int:
    """The exporters' posting threads alive in this process."""
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("naftiko-otlp"))


def by_kind(spans: list[ReceivedSpan], kind: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == kind]


# -- REST -----------------------------------------------------------------------------------------


async def test_a_rest_call_continues_the_inbound_trace_with_a_server_span_and_a_client_span(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    traced = await serve(
        tmp_path,
        upstream,
        "rest-w3c",
        f"traces: {{sampling: 1.0}}\nexporters: {{otlp: {{endpoint: '{receiver.url}'}}}}",
    )
    try:
        inbound = f"00-{TRACE_ID}-{PARENT_ID}-01"
        status, _ = await get(traced.url("rest", "/items/42?q=shoes&token=t0k3n-value"), traceparent=inbound)
        assert status == 200
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 2)
    finally:
        await traced.close()
    assert len(spans) == 2 and all(s.trace_id == TRACE_ID for s in spans)
    [server], [client] = by_kind(spans, "SERVER"), by_kind(spans, "CLIENT")
    assert server.name == "GET /items/{id}" and server.parent_span_id == PARENT_ID
    assert server.attributes == {
        "http.request.method": "GET",
        "url.path": "/items/42",
        "url.scheme": "http",
        "http.route": "/items/{id}",
        "http.response.status_code": 200,
    }
    assert client.name == "GET" and client.parent_span_id == server.span_id
    port = int(upstream.url.rsplit(":", 1)[1])
    assert client.attributes == {
        "http.request.method": "GET",
        "url.full": f"{upstream.url}/items/42?q=shoes&token=REDACTED",  # a secret-looking name's value is not kept
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
    }
    assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns
    assert {s.service for s in spans} == {"naftiko-rest-w3c"} and {s.status for s in spans} == {"UNSET"}
    assert receiver.content_types and set(receiver.content_types) == {"application/x-protobuf"}
    [sent] = upstream.requests
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"
    assert "b3" not in {k.lower() for k in sent.headers}


async def test_an_inbound_tracestate_travels_upstream_with_the_trace(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    traced = await serve(tmp_path, upstream, "rest-state", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    try:
        inbound = f"00-{TRACE_ID}-{PARENT_ID}-01"
        status, _ = await get(traced.url("rest", "/items/7"), traceparent=inbound, tracestate="vendor=abc,other=x")
        assert status == 200
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 2)
    finally:
        await traced.close()
    [client] = by_kind(spans, "CLIENT")
    [sent] = upstream.requests
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"
    assert sent.headers["tracestate"] == "vendor=abc,other=x"


async def test_each_attempt_is_a_client_span_and_an_upstream_failure_marks_them_and_the_server_span(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    upstream.respond = lambda request, body: web.json_response(
        {"error": "down"}, status=503
    )  # an idempotent GET is resent
    traced = await serve(
        tmp_path, upstream, "rest-errors", f"exporters: {{otlp: {{endpoint: '{receiver.url}/v1/traces'}}}}"
    )
    try:
        status, _ = await get(traced.url("rest", "/items/7"))
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(by_kind(s, "SERVER")) == 1)
    finally:
        await traced.close()
    assert status == 502
    [server], clients = by_kind(spans, "SERVER"), by_kind(spans, "CLIENT")
    assert len(clients) == len(upstream.requests) > 1
    for client in clients:
        assert client.parent_span_id == server.span_id and client.status == "ERROR"
        assert client.attributes["error.type"] == "503" and client.attributes["http.response.status_code"] == 503
    assert sorted(sampled(r.headers["traceparent"]) for r in upstream.requests) == sorted(
        f"00-{server.trace_id}-{c.span_id}" for c in clients
    )
    assert (
        server.status == "ERROR"
        and server.attributes["http.response.status_code"] == 502
        and server.attributes["error.type"] == "502"
    )
    assert server.parent_span_id == ""  # a new trace: no inbound header


# -- MCP ------------------------------------------------------------------------------------------


async def test_an_mcp_tools_call_is_one_server_span_named_after_the_tool(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    traced = await serve(tmp_path, upstream, "mcp-sdk", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    try:
        async with Client(traced.url("mcp", "/mcp"), mode="legacy") as client:  # the official SDK
            result = await client.call_tool("get-item", {"id": "42"})
            assert not result.is_error
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 2)
        await asyncio.sleep(0.1)
        await traced.flush()
    finally:
        await traced.close()
    # initialize, notifications/initialized and the session's end record nothing
    assert len(receiver.spans) == 2
    [server], [client] = by_kind(spans, "SERVER"), by_kind(spans, "CLIENT")
    assert server.name == "tools/call get-item" and server.parent_span_id == ""
    assert server.attributes["mcp.method.name"] == "tools/call" and server.attributes["gen_ai.tool.name"] == "get-item"
    assert server.attributes["http.route"] == "/mcp" and server.attributes["http.response.status_code"] == 200
    assert "mcp.session.id" not in server.attributes  # it would let a reader of traces use the session
    assert client.parent_span_id == server.span_id and client.trace_id == server.trace_id
    assert client.attributes["url.full"] == f"{upstream.url}/items/42"
    [sent] = upstream.requests
    assert sampled(sent.headers["traceparent"]) == f"00-{server.trace_id}-{client.span_id}"


async def test_an_mcp_call_continues_the_inbound_trace_and_a_tool_error_marks_the_span(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    upstream.respond = lambda request, body: web.json_response({"message": "no such item"}, status=404)
    traced = await serve(tmp_path, upstream, "mcp-raw", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    try:
        reply = await mcp_call(
            traced.url("mcp", "/mcp"), "get-item", {"id": "9"}, traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01"
        )
        assert reply["result"]["isError"] is True
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 2)
    finally:
        await traced.close()
    [server], [client] = by_kind(spans, "SERVER"), by_kind(spans, "CLIENT")
    assert server.trace_id == TRACE_ID and server.parent_span_id == PARENT_ID
    assert server.status == "ERROR" and server.attributes["error.type"] == "tool_error"
    assert client.status == "ERROR" and client.attributes["error.type"] == "404"
    assert upstream.requests[0].headers["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"


async def test_an_mcp_call_over_http_continues_the_trace_its_meta_carries(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    """A client that puts the trace in `params._meta` (SEP-414) rather than the HTTP header is
    continued too; the header wins when both are there."""
    traced = await serve(tmp_path, upstream, "mcp-meta", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    other = "1" * 32
    try:
        meta = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=meta"}
        reply = await mcp_call(traced.url("mcp", "/mcp"), "get-item", {"id": "9"}, meta)
        assert reply["result"]["isError"] is False
        await mcp_call(
            traced.url("mcp", "/mcp"), "get-item", {"id": "8"}, meta, traceparent=f"00-{other}-{PARENT_ID}-01"
        )
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 4)
    finally:
        await traced.close()
    servers = by_kind(spans, "SERVER")
    assert sorted(s.trace_id for s in servers) == sorted([TRACE_ID, other])
    assert {s.parent_span_id for s in servers} == {PARENT_ID}
    assert upstream.requests[0].headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert upstream.requests[0].headers["tracestate"] == "vendor=meta"


# -- sampling and propagation ---------------------------------------------------------------------


async def test_sampling_zero_records_nothing_but_still_tells_the_upstream_and_follows_a_sampled_caller(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    traced = await serve(
        tmp_path,
        upstream,
        "sampling-zero",
        f"traces: {{sampling: 0}}\nexporters: {{otlp: {{endpoint: '{receiver.url}'}}}}",
    )
    try:
        for index in range(5):
            assert (await get(traced.url("rest", f"/items/{index}")))[0] == 200
        await traced.flush()
        await asyncio.sleep(0.2)
        assert receiver.spans == [] and receiver.posts == 0
        assert traced.tracing.buffer.recent() == []
        # the trace id still travels, marked not sampled, so the upstream does not sample either
        assert len(upstream.requests) == 5 and not any(
            int(r.headers["traceparent"][-2:], 16) & 1 for r in upstream.requests
        )
        # a caller that sampled its trace is followed (parent-based sampling)
        await get(traced.url("rest", "/items/5"), traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 2)
    finally:
        await traced.close()
    assert {s.trace_id for s in spans} == {TRACE_ID}


async def test_b3_is_continued_from_either_form_and_sent_upstream_as_the_b3_header(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    traced = await serve(
        tmp_path, upstream, "b3", f"traces: {{propagation: b3}}\nexporters: {{otlp: {{endpoint: '{receiver.url}'}}}}"
    )
    other_trace = "a" * 32
    try:
        await get(traced.url("rest", "/items/1"), b3=f"{TRACE_ID}-{PARENT_ID}-1")
        await get(
            traced.url("rest", "/items/2"),
            **{"X-B3-TraceId": other_trace, "X-B3-SpanId": "b" * 16, "X-B3-Sampled": "1"},
        )
        reply = await mcp_call(traced.url("mcp", "/mcp"), "get-item", {"id": "3"}, b3=f"{TRACE_ID}-{PARENT_ID}-1")
        assert reply["result"]["isError"] is False
        await traced.flush()
        spans = await receiver.wait_for(lambda s: len(s) >= 6)
    finally:
        await traced.close()
    servers = by_kind(spans, "SERVER")
    assert sorted((s.name, s.trace_id, s.parent_span_id) for s in servers) == sorted(
        [
            ("GET /items/{id}", TRACE_ID, PARENT_ID),
            ("GET /items/{id}", other_trace, "b" * 16),
            ("tools/call get-item", TRACE_ID, PARENT_ID),
        ]
    )
    clients = {s.span_id: s for s in by_kind(spans, "CLIENT")}
    for sent in upstream.requests:
        headers = {k.lower(): v for k, v in sent.headers.items()}
        assert "traceparent" not in headers
        trace_id, span_id, sampled = headers["b3"].split("-")
        assert sampled == "1" and clients[span_id].trace_id == trace_id


async def test_a_caller_supplied_propagation_header_is_replaced_not_duplicated(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    from naftiko.consumes.request import OutgoingRequest

    traced = await serve(tmp_path, upstream, "replace", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    try:
        client = traced.capability.clients[0]
        request = OutgoingRequest(
            "GET", upstream.url + "/items/1", headers={"TraceParent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
        )
        assert (await client.send(request)).status == 200
    finally:
        await traced.close()
    sent = upstream.requests[0].headers
    assert [k for k in sent if k.lower() == "traceparent"] == ["traceparent"] and "1" * 32 not in sent["traceparent"]


# -- a collector that is not there ----------------------------------------------------------------


async def test_an_unreachable_collector_drops_spans_with_one_warning_and_requests_go_on(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # the SDK's own retry budget (10 s by default)
    caplog.set_level(logging.DEBUG)
    closed = f"http://127.0.0.1:{free_port()}"
    traced = await serve(tmp_path, upstream, "unreachable", f"exporters: {{otlp: {{endpoint: '{closed}'}}}}")
    try:
        for _ in range(3):
            statuses = [(await get(traced.url("rest", f"/items/{i}")))[0] for i in range(5)]
            assert statuses == [200] * 5
            await traced.flush()
        assert len(traced.tracing.buffer.recent()) == 15  # the ring buffer does not depend on the collector
    finally:
        await traced.close()
    warnings = [r for r in caplog.records if "cannot export spans" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert closed in warnings[0].getMessage() and warnings[0].name == "naftiko"
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING]


# -- the ring buffer ------------------------------------------------------------------------------


async def test_a_reload_that_changes_the_collector_retires_the_old_exporter(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    """A file whose `observability` changed leaves its old tracing (batched spans, posting
    thread and all) behind unless the runtime retires it once the new configuration is served:
    what it still held reaches its collector, then its thread ends."""
    other = OtlpReceiver()
    await other.start()
    first = await serve(tmp_path, upstream, "retire", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    old = first.tracing
    await get(first.url("rest", "/items/1"))
    await first.flush()  # the posting thread is started
    await get(first.url("rest", "/items/2"))  # two spans left in the old exporter's batch
    second = await serve(tmp_path, upstream, "retire", f"exporters: {{otlp: {{endpoint: '{other.url}'}}}}")
    try:
        assert second.tracing is not old
        exporting = export_threads()
        retired = retire_unused([second.capability])  # the old one (and those other tests left)
        await asyncio.wait_for(asyncio.gather(*retired), 10)
        spans = await receiver.wait_for(lambda s: len(s) >= 4)
        assert sorted(s.attributes.get("url.path") for s in spans if s.kind == "SERVER") == ["/items/1", "/items/2"]
        for _ in range(100):
            if export_threads() < exporting:
                break
            await asyncio.sleep(0.05)
        assert export_threads() == exporting - 1
        status, _ = await get(second.url("rest", "/items/3"))
        assert status == 200
        await second.flush()
        spans = await other.wait_for(lambda s: len(s) >= 2)
        assert {s.service for s in spans} == {"naftiko-retire"}
        assert capability_tracing(second.capability) is second.tracing
    finally:
        await first.close()
        await second.close()
        await other.close()


async def test_the_ring_buffer_keeps_the_last_traces_for_the_control_port(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    def respond(request: web.Request, body: bytes) -> web.Response:
        return web.json_response(
            {"id": request.match_info["tail"]}, status=500 if request.path.endswith("/boom") else 200
        )

    upstream.respond = respond
    traced = await serve(tmp_path, upstream, "ring", "traces: {local: {buffer-size: 10}}")
    try:
        assert traced.tracing.exporter is None  # no endpoint: spans go to the ring buffer only
        for index in range(11):
            await get(traced.url("rest", f"/items/{index}"))
        await get(traced.url("rest", "/items/boom"))
        await mcp_call(traced.url("mcp", "/mcp"), "get-item", {"id": "m"})
        buffer = trace_buffer_of(traced.capability)
        assert buffer is traced.tracing.buffer
        recent = buffer.recent()
    finally:
        await traced.close()
    assert len(recent) == 10
    assert recent[0]["operation"] == "tools/call get-item" and recent[1]["operation"] == "GET /items/{id}"
    assert set(recent[0]) == {"traceId", "operation", "durationMs", "status", "spanCount", "timestamp"}
    assert recent[0]["spanCount"] == 2 and recent[0]["status"] == "ok" and recent[0]["durationMs"] > 0
    assert recent[0]["timestamp"].endswith("Z") and len(recent[0]["traceId"]) == 32
    assert recent[1]["status"] == "error"
    trace = buffer.trace(recent[1]["traceId"])
    assert trace is not None and {k: trace[k] for k in recent[1]} == recent[1]
    server, client = trace["spans"]
    assert (server["kind"], client["kind"]) == ("SERVER", "CLIENT")
    assert server["parentSpanId"] is None and client["parentSpanId"] == server["spanId"]
    assert server["name"] == "GET /items/{id}" and server["status"] == "error" and client["status"] == "error"
    assert client["attributes"]["http.response.status_code"] == 500 and client["attributes"]["url.full"].endswith(
        "/items/boom"
    )
    assert set(server) == {"spanId", "parentSpanId", "name", "kind", "startTime", "durationMs", "status", "attributes"}
    json.dumps(trace)  # served as it is
    assert buffer.trace("0" * 32) is None and buffer.trace("not-a-trace-id") is None


# -- configuration ----------------------------------------------------------------------------------


def test_bad_sampling_and_propagation_values_are_validate_errors_with_line_and_column(tmp_path: Path) -> None:
    path = capability_file(
        tmp_path,
        "bad",
        "traces:\n  sampling: 1.5\n  propagation: zipkin\nexporters: {otlp: {endpoint: 'collector:4318'}}",
    )
    document = load_document(path)
    errors = {(e.line, e.column, e.path): e.message for e in document.errors}
    lines = path.read_text().splitlines()
    sampling_line = next(i for i, line in enumerate(lines, 1) if "sampling: 1.5" in line)
    assert errors[
        (
            sampling_line,
            lines[sampling_line - 1].index("1.5") + 1,
            "$.capability.exposes[2].observability.traces.sampling",
        )
    ].startswith("traces.sampling must be a number from 0 to 1")
    assert (
        "w3c (traceparent) or b3, not 'zipkin'"
        in errors[
            (
                sampling_line + 1,
                lines[sampling_line].index("zipkin") + 1,
                "$.capability.exposes[2].observability.traces.propagation",
            )
        ]
    )
    assert any("exporters.otlp.endpoint must be an http:// or https:// URL" in m for m in errors.values())


def test_with_tracing_off_no_opentelemetry_module_is_loaded(tmp_path: Path) -> None:
    """No control exposure (or observability.enabled: false) and no OTEL_ endpoint: compiling and
    building the servers imports nothing of OpenTelemetry and installs no layer."""
    on = capability_file(tmp_path, "disabled", "enabled: false\nexporters: {otlp: {endpoint: 'http://127.0.0.1:4318'}}")
    script = f"""
import sys
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.server import PortServer, plan
from naftiko.spec.document import load_document
for path in ({str(REPO / "runtime/naftiko/defaults/track-customers.yaml")!r}, {str(on)!r}):
    capability = compile_capability(load_document(path), CompileOptions(environ={{"CUSTOMER_IO_USER": "u", "CUSTOMER_IO_PASS": "p", "CUSTOMER_IO_API_KEY": "k"}}))
    for port_plan in plan([capability]):
        server = PortServer(port_plan)
        assert "traced" not in repr(server.app), server.app
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    env = {k: v for k, v in _environment(None).items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_naftiko_run_exports_to_the_otel_environment_endpoint_without_a_control_exposure(
    upstream: FakeUpstream, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The standard variables alone turn tracing on: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME."""
    source = capability_file(tmp_path, "env-only", "enabled: true").read_text()
    path = tmp_path / "env-only-no-control.yaml"
    path.write_text(source[: source.index("  - type: control")], encoding="utf-8")
    rest_port = free_port()
    env = {
        **_environment(None),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "orders-gateway",
        **FAST_EXPORT,
    }
    argv = [
        sys.executable,
        "-m",
        "naftiko.cli",
        "run",
        str(path),
        "--upstream",
        f"up={upstream.url}",
        "--port",
        f"rest={rest_port}",
        "--port",
        f"mcp={free_port()}",
    ]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for _ in range(200):
            try:
                status, _ = await get(
                    f"http://127.0.0.1:{rest_port}/items/1", traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01"
                )
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        assert status == 200
        spans = await receiver.wait_for(lambda s: len(s) >= 2, timeout=10)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
    assert {s.service for s in spans} == {"orders-gateway"} and {s.trace_id for s in spans} == {TRACE_ID}
    assert sorted(s.kind for s in spans) == ["CLIENT", "SERVER"]


async def test_the_spans_still_batched_are_exported_when_naftiko_run_stops(
    upstream: FakeUpstream, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """Batches wait a minute here: a SIGTERM must still get the spans out before the process
    ends (they are batched on the event loop; nothing exports them once it is gone)."""
    source = capability_file(tmp_path, "stop", "enabled: true").read_text()
    path = tmp_path / "stop-no-control.yaml"
    path.write_text(source[: source.index("  - type: control")], encoding="utf-8")
    rest_port = free_port()
    env = {**_environment(None), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    argv = [sys.executable, "-m", "naftiko.cli", "run", str(path), "--upstream", f"up={upstream.url}"]
    argv += ["--port", f"rest={rest_port}", "--port", f"mcp={free_port()}"]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for _ in range(200):
            try:
                status, _ = await get(f"http://127.0.0.1:{rest_port}/items/7")
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        assert status == 200
        await asyncio.sleep(0.3)
        assert receiver.spans == []  # still batched
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 15) == 0
    assert sorted(s.kind for s in receiver.spans) == ["CLIENT", "SERVER"]
    assert {s.attributes.get("url.path") for s in receiver.spans if s.kind == "SERVER"} == {"/items/7"}


async def test_a_tools_call_over_stdio_is_a_server_span_continuing_the_trace_in_meta(
    upstream: FakeUpstream, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """No HTTP request carries the caller's trace over stdio: `params._meta.traceparent` does (SEP-414)."""
    path = capability_file(tmp_path, "stdio", f"exporters: {{otlp: {{endpoint: '{receiver.url}'}}}}")
    argv = [sys.executable, "-m", "naftiko.cli", "run", "--stdio", str(path), "--upstream", f"up={upstream.url}"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**_environment(None), **FAST_EXPORT},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    meta = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get-item", "arguments": {"id": "7"}, "_meta": meta},
        },
    ]
    try:
        process.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
        await process.stdin.drain()
        replies = [json.loads(await asyncio.wait_for(process.stdout.readline(), 30)) for _ in range(2)]
        assert replies[1]["id"] == 1 and replies[1]["result"]["isError"] is False, replies
        spans = await receiver.wait_for(lambda s: len(s) >= 2, timeout=10)
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 15)
    [server], [client] = by_kind(spans, "SERVER"), by_kind(spans, "CLIENT")
    assert server.name == "tools/call get-item" and server.trace_id == TRACE_ID and server.parent_span_id == PARENT_ID
    assert server.attributes == {
        "mcp.method.name": "tools/call",
        "network.transport": "pipe",
        "gen_ai.tool.name": "get-item",
    }
    assert client.parent_span_id == server.span_id and client.trace_id == TRACE_ID
    [sent] = upstream.requests
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"


def test_tracing_options_read_the_block_and_the_environment_wins() -> None:
    from naftiko.observability import tracing_options

    data = {
        "info": {"label": "Orders"},
        "capability": {
            "exposes": [
                {
                    "type": "control",
                    "port": 1,
                    "observability": {
                        "traces": {"sampling": 0.25, "propagation": "b3", "local": {"buffer-size": 50}},
                        "exporters": {"otlp": {"endpoint": "http://collector:4318/"}},
                    },
                }
            ]
        },
    }
    options = tracing_options(data, {})
    assert options is not None
    assert (options.service_name, options.ratio, options.propagators, options.traces_url, options.buffer_size) == (
        "naftiko-Orders",
        0.25,
        ("b3",),
        "http://collector:4318/v1/traces",
        50,
    )
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318",
        "OTEL_TRACES_SAMPLER_ARG": "0.5",
        "OTEL_PROPAGATORS": "tracecontext,b3multi",
        "OTEL_SERVICE_NAME": "svc",
    }
    overridden = tracing_options(data, environ)
    assert overridden is not None
    assert (overridden.service_name, overridden.ratio, overridden.propagators, overridden.traces_url) == (
        "svc",
        0.5,
        ("tracecontext", "b3multi"),
        "https://otel.example:4318/v1/traces",
    )
    assert replace(options, traces_url=None) == tracing_options(data, {"OTEL_TRACES_EXPORTER": "none"})
    assert tracing_options(data, {"OTEL_SDK_DISABLED": "true"}) is None
    no_reader = {
        "capability": {
            "exposes": [{"type": "control", "port": 1, "observability": {"traces": {"local": {"enabled": False}}}}]
        }
    }
    assert tracing_options(no_reader, {}) is None
    assert tracing_options({"capability": {"exposes": []}}, {}) is None
    assert (
        tracing_options(
            {"capability": {"exposes": []}}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}
        ).traces_url
        == "http://c:4318/custom"
    )  # type: ignore[union-attr]

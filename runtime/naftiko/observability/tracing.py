"""Traces with the OpenTelemetry SDK: a SERVER span per REST request and per MCP `tools/call`, a
CLIENT span per upstream attempt, W3C or B3 propagation, OTLP/HTTP export, the ring buffer.

Imported only when a capability turns tracing on (trace_config.py decides, at load); with
tracing off no OpenTelemetry module is loaded and the request path is unchanged. The pieces
are installed where the request already passes, as OpenTelemetry's ASGI middleware and
aiohttp-client instrumentation do, so no handler knows about them:

    server.py  PortServer._layers:  app = tracing.server_layer(app, kind)
    compile.py _Compiler._client:   transport = tracing.client(transport, namespace, secrets)

Server span (`SpanKind.SERVER`): the parent is the inbound `traceparent`, else a `b3` or
`X-B3-*` header (both are accepted whatever `propagation` says: it names what is *sent*), else,
for MCP, the `traceparent` in the request's `params._meta` (SEP-414, as over stdio). Its
name is `METHOD /route/template` for REST (the router sets `request.route`; `METHOD` alone when
no route matched) and `tools/call <tool>` for MCP (mcp_http.py sets `request.operation`). A
POST to `/mcp` that is not a `tools/call` and called no upstream (initialize, tools/list,
notifications) is not recorded; `/health`, `/metrics` and `/openapi.json` are not traced.
Attributes follow the HTTP server conventions, kept to the required ones because each costs
about 4 µs to record and encode (`http.request.method`, `url.path`, `url.scheme`, `http.route`,
`http.response.status_code`; `error.type` and status ERROR on 5xx) and, for MCP, the MCP ones
(`mcp.method.name`, `gen_ai.tool.name`; `error.type` = `tool_error` or the JSON-RPC error code,
with status ERROR, when the call failed). `mcp.session.id` is left out on purpose: a session id
lets whoever holds it use the session, and spans reach the collector and the control port.

Client span (`SpanKind.CLIENT`), one per attempt (a resend is a new span, as the conventions
ask): named after the method, child of the current server span, with `http.request.method`,
`url.full` (query values of secret-looking names or equal to the namespace's credentials read
`REDACTED`), `server.address`, `server.port`, `http.response.status_code`, and `error.type`
(the status, or the transport failure's class) with status ERROR from 400 on. The propagation header is written into `OutgoingRequest.headers`
(any copy the caller forwarded is replaced) before the inner transport serializes it, so the
upstream sees the trace id with the CLIENT span as parent.

Ended spans go to the `TraceBuffer` and to `OtlpExporter` (otlp_export.py: batches of up to
`OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (512) spans every `OTEL_BSP_SCHEDULE_DELAY` ms (1000 by
default), encoded on the event loop and posted by the SDK exporter's HTTP client).
The SDK gives the sampler, the id generator, the resource (`OTEL_RESOURCE_ATTRIBUTES` …), the
propagators and the exporter's configuration and transport; the span objects and the batching
are the runtime's own (spans.py says why).
Sampling is `ParentBased(TraceIdRatioBased(sampling))` unless `OTEL_TRACES_SAMPLER` says
otherwise: a sampled inbound trace is always continued, an unsampled one never recorded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .. import __version__
from ..consumes.request import OutgoingRequest
from ..consumes.transport import UpstreamResponse, UpstreamTransport
from ..http import Answer, Request, Responder, Response
from ..json_text import loads
from .otlp_encode import SpanEncoder
from .otlp_export import OtlpExporter
from .spans import LiveSpan, SharedAttributes, SpanRecorder, current, enter, in_context, leave
from .trace_buffer import TraceBuffer
from .trace_config import TracingOptions

log = logging.getLogger("naftiko")

UNTRACED_PATHS = frozenset({"/health", "/metrics", "/openapi.json"})
SECRET_NAME = re.compile(r"(?i)(pass|secret|token|key|credential|auth|private|sig)")
_ROOT = context_api.Context()
McpHandler = Callable[..., Awaitable[Any]]  # McpServer.handle(payload, session, notify)
_JSONRPC_ERROR = re.compile(rb'"error":\{"code":(-?\d+)')
_PROPAGATORS = {
    "tracecontext": TraceContextTextMapPropagator,
    "baggage": W3CBaggagePropagator,
    "b3": B3SingleFormat,
    "b3multi": B3MultiFormat,
}


class Tracing:
    """One tracing configuration: its sampler, span recorder, ring buffer and OTLP exporter, the
    inbound extractors and the outbound propagator. `buffer` is the ring buffer (None when
    `traces.local.enabled: false`), `exporter` None when spans are not exported."""

    def __init__(self, options: TracingOptions):
        self.options = options
        resource = Resource.create({"service.name": options.service_name, "service.version": __version__})
        sampler = _sampler(options)
        sinks, root_sinks = [], []
        self.buffer = TraceBuffer(options.buffer_size) if options.buffer_size is not None else None
        if self.buffer is not None:
            root_sinks.append(self.buffer.add)
        self.exporter = None
        if options.traces_url:
            encoder = SpanEncoder(resource, InstrumentationScope("naftiko", __version__))
            self.exporter = OtlpExporter(
                options.traces_url, encoder, options.schedule_delay_ms / 1000, options.max_batch, options.max_queue
            )
            sinks.append(self.exporter.add)
            if ":4317/" in self.exporter.traces_url:
                log.warning(
                    "tracing: %s is OTLP/gRPC's usual port; this runtime exports OTLP/HTTP (usually port 4318)",
                    self.exporter.traces_url,
                )
        self.recorder = SpanRecorder(
            sampler, RandomIdGenerator(), sinks, root_sinks, always_sample_roots=sampler is _PARENT_BASED_ALWAYS_ON
        )
        self.w3c = TraceContextTextMapPropagator()
        self.b3 = B3MultiFormat()  # reads the single `b3` header as well as X-B3-*
        propagators = [_PROPAGATORS[name]() for name in options.propagators]
        self.outbound: TextMapPropagator = propagators[0] if len(propagators) == 1 else CompositePropagator(propagators)
        self.outbound_fields = frozenset(f.lower() for p in propagators for f in p.fields)
        self.w3c_only = tuple(options.propagators) == ("tracecontext",)

    async def flush(self) -> None:
        """Export every span ended so far."""
        if self.exporter is not None:
            await self.exporter.flush()

    async def close(self) -> None:
        """Flush, then release the exporter's thread."""
        if self.exporter is not None:
            await self.exporter.close()

    # -- inbound ---------------------------------------------------------------------------------

    def parent_of(self, headers: Any) -> tuple[SpanContext | None, context_api.Context]:
        """The remote parent an inbound request continues (W3C first, then B3), if any, and the
        extracted `Context` (what a sampler reads)."""
        if "traceparent" in headers:
            extracted = self.w3c.extract(headers)
        elif "b3" in headers or "X-B3-TraceId" in headers:
            extracted = self.b3.extract(headers)
        else:
            return None, _ROOT
        parent = trace_api.get_current_span(extracted).get_span_context()
        return (parent if parent.is_valid else None), extracted

    def server_layer(self, inner: Responder, kind: str) -> Responder:
        """`inner` with a SERVER span around each traced request (a layer: Responder → Responder).
        Untraced requests get `inner`'s answer untouched (no coroutine is added)."""
        root, parent_of = self.recorder.root, self.parent_of
        mcp = kind == "mcp"
        outcomes: dict[tuple, tuple[str, SharedAttributes]] = {}  # an MCP span's name and attributes

        async def traced(request: Request) -> Response:
            parent, parent_context = parent_of(request.headers)
            if parent is None and mcp and b'"traceparent"' in request.body:  # SEP-414: in params._meta
                parent, parent_context = parent_of(_meta_of(request.body))
            span = root(request.method, SpanKind.SERVER, parent, parent_context)
            token = enter(span)
            try:
                answer = inner(request)
                response = answer if isinstance(answer, Response) else await answer
            except BaseException as exc:
                leave(token)
                if span.recording:
                    span.attributes = _server_attributes(request, None)
                    span.attributes["error.type"] = type(exc).__qualname__
                    span.error = True
                span.end()
                raise
            leave(token)
            if mcp and request.operation is None and not span.calls:
                return response  # not a tools/call and nothing called upstream: never ended, never recorded
            if span.recording:
                request.trace = (span.trace_id.to_bytes(16, "big").hex(), span.span_id.to_bytes(8, "big").hex())
                if mcp:
                    error = _mcp_error(response)
                    key = (request.operation, request.raw_path, request.scheme, response.status, error)
                    outcome = outcomes.get(key)
                    if outcome is None:
                        outcome = _mcp_outcome(request, response, error, outcomes)
                    span.name, span.attributes = outcome
                    span.error = error is not None
                else:
                    attributes = span.attributes = _server_attributes(request, response)
                    span.name = f"{request.method} {request.route}" if request.route else request.method
                    if response.status >= 500:
                        attributes["error.type"] = str(response.status)
                        span.error = True
            span.end()
            return response

        def layer(request: Request) -> Answer:
            if mcp:
                if request.method != "POST":
                    return inner(request)
            elif request.raw_path.partition("?")[0] in UNTRACED_PATHS:
                return inner(request)
            return traced(request)

        return layer

    def stdio_layer(self, inner: McpHandler) -> McpHandler:
        """`McpServer.handle` with a SERVER span around each `tools/call` read from stdin. With no
        HTTP request to carry it, the caller's trace comes in the request's `params._meta`
        (`traceparent`, `tracestate`: SEP-414, the OpenTelemetry MCP conventions)."""
        root, parent_of = self.recorder.root, self.parent_of

        async def traced(payload: Any, session: Any, notify: Any = None) -> Any:
            if not (isinstance(payload, dict) and payload.get("method") == "tools/call"):
                return await inner(payload, session, notify)
            params = payload.get("params")
            params = params if isinstance(params, dict) else {}
            tool = params.get("name") if isinstance(params.get("name"), str) else None
            meta = params.get("_meta")
            parent, parent_context = parent_of(meta) if isinstance(meta, dict) else (None, _ROOT)
            span = root(f"tools/call {tool}" if tool else "tools/call", SpanKind.SERVER, parent, parent_context)
            token = enter(span)
            try:
                reply = await inner(payload, session, notify)
            except BaseException as exc:
                span.attributes = {"mcp.method.name": "tools/call", "error.type": type(exc).__qualname__}
                span.error = True
                raise
            else:
                if span.recording:
                    span.attributes = attributes = {"mcp.method.name": "tools/call", "network.transport": "pipe"}
                    if tool:
                        attributes["gen_ai.tool.name"] = tool
                    error = _reply_error(reply)
                    if error is not None:
                        attributes["error.type"] = error
                        span.error = True
                return reply
            finally:
                leave(token)
                span.end()

        return traced

    # -- outbound --------------------------------------------------------------------------------

    def client(self, inner: UpstreamTransport, namespace: str, secrets: Sequence[str] = ()) -> TracingTransport:
        return TracingTransport(inner, self, namespace, secrets)

    def propagate(self, span: LiveSpan, headers: Any) -> None:
        """Write `span` as the parent into `headers` (replacing any propagation header there)."""
        for name in [name for name in headers if name.lower() in self.outbound_fields]:
            del headers[name]
        if not self.w3c_only:
            self.outbound.inject(headers, in_context(span))
            return
        trace_id, span_id = span.trace_id.to_bytes(16, "big").hex(), span.span_id.to_bytes(8, "big").hex()
        headers["traceparent"] = (
            f"00-{trace_id}-{span_id}-{'01' if span.sampled else '00'}"  # hex(): twice f"{:032x}"'s speed
        )
        if span.trace_state:
            headers["tracestate"] = span.trace_state.to_header()


class TracingTransport:
    """An `UpstreamTransport` that opens a CLIENT span per attempt and sends the trace upstream."""

    def __init__(self, inner: UpstreamTransport, tracing: Tracing, namespace: str, secrets: Sequence[str] = ()):
        self.inner = inner
        self.tracing = tracing
        self.namespace = namespace
        self.secrets = frozenset(s for s in secrets if s)
        self._origins: dict[str, tuple[str, int]] = {}
        self._last: tuple[str, tuple[str, int]] = ("\0", ("", 0))  # ("scheme://authority/", (host, port))

    async def send(self, request: OutgoingRequest, timeout: float) -> UpstreamResponse:
        tracing = self.tracing
        parent = current()
        if parent is not None:
            parent.calls += 1
            span = tracing.recorder.child(parent, request.method, SpanKind.CLIENT)
        else:  # a call outside any traced request (`naftiko call`, a token fetch at start)
            span = tracing.recorder.root(request.method, SpanKind.CLIENT, None, _ROOT)
        tracing.propagate(span, request.headers)
        try:
            response = await self.inner.send(request, timeout)
        except BaseException as exc:
            if span.recording:
                span.attributes = self._attributes(request)
                span.attributes["error.type"] = type(exc).__qualname__
                span.error = True
            span.end()
            raise
        if span.recording:
            attributes = span.attributes = self._attributes(request)
            attributes["http.response.status_code"] = response.status
            if response.status >= 400:
                attributes["error.type"] = str(response.status)
                span.error = True
        span.end()
        return response

    async def close(self) -> None:
        await self.inner.close()

    def _attributes(self, request: OutgoingRequest) -> dict[str, Any]:
        url = request.url
        host, port = self._origin(url)
        if request.query:
            url += "?" + "&".join(f"{name}={self._shown(name, value)}" for name, value in request.query)
        return {"http.request.method": request.method, "url.full": url, "server.address": host, "server.port": port}

    def _shown(self, name: str, value: str) -> str:
        return "REDACTED" if value in self.secrets or SECRET_NAME.search(name) else value

    def _origin(self, url: str) -> tuple[str, int]:
        """(host, port) of an absolute URL, cached by its `scheme://authority` part (the last
        one seen is checked first: a namespace mostly calls one)."""
        last_prefix, last = self._last
        if url.startswith(last_prefix):
            return last
        end = url.find("/", url.find("//") + 2)
        origin = url if end < 0 else url[:end]
        found = self._origins.get(origin)
        if found is None:
            scheme, _, authority = origin.partition("://")
            authority = authority.rpartition("@")[2]
            if authority.startswith("["):
                host, _, rest = authority[1:].partition("]")
                port_text = rest[1:] if rest.startswith(":") else ""
            else:
                host, _, port_text = authority.partition(":")
            port = int(port_text) if port_text.isdigit() else (443 if scheme == "https" else 80)
            found = (host, port)
            if len(self._origins) < 64:
                self._origins[origin] = found
        if end >= 0:
            self._last = (origin + "/", found)
        return found


def _server_attributes(request: Request, response: Response | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.path": request.raw_path.partition("?")[0],
        "url.scheme": request.scheme,
    }
    if request.route:
        attributes["http.route"] = request.route
    if response is not None:
        attributes["http.response.status_code"] = response.status
    return attributes


def _mcp_error(response: Response) -> str | None:
    """`error.type` of an MCP answer, None when it is a success. A tool's failure is a JSON-RPC
    result whose last key is `isError` (mcp.py:tool_result puts it last), so the answer's tail
    tells without parsing it."""
    body = response.body
    flag = body.find(b'"isError":', max(len(body) - 40, 0))
    if response.status >= 500:
        return str(response.status)
    if flag >= 0 and body.startswith(b"true}", flag + 10):
        return "tool_error"
    if flag >= 0 and body.startswith(b"false}", flag + 10):
        return None
    code = _JSONRPC_ERROR.search(body, 0, 512)
    return code.group(1).decode() if code is not None else None


MAX_OUTCOMES = 1024  # kept per port: (tool, path, scheme, status, error) seen


def _mcp_outcome(
    request: Request, response: Response, error: str | None, outcomes: dict[tuple, tuple[str, SharedAttributes]]
) -> tuple[str, SharedAttributes]:
    """The name and attributes of an MCP span, made once per kind of outcome and then shared by
    every span alike (the encoder writes a shared block once, not per span)."""
    tool = request.operation
    attributes = _server_attributes(request, response)
    if tool is not None:
        attributes["mcp.method.name"] = "tools/call"
        attributes["gen_ai.tool.name"] = tool
    if error is not None:
        attributes["error.type"] = error
    outcome = (f"tools/call {tool}" if tool is not None else "POST /mcp", SharedAttributes(attributes))
    if len(outcomes) >= MAX_OUTCOMES:
        outcomes.clear()
    outcomes[(tool, request.raw_path, request.scheme, response.status, error)] = outcome
    return outcome


def _meta_of(body: bytes) -> dict[str, Any]:
    """`params._meta` of a JSON-RPC request body: where an MCP client without the HTTP header
    puts `traceparent`/`tracestate` (SEP-414); empty when the body is not such a request."""
    try:
        payload = loads(body)
    except (ValueError, RecursionError):
        return {}
    params = payload.get("params") if isinstance(payload, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return {k: v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}


def _reply_error(reply: Any) -> str | None:
    """`error.type` of a JSON-RPC reply: the error code, `tool_error` for an `isError` result."""
    if not isinstance(reply, dict):
        return None
    error = reply.get("error")
    if isinstance(error, dict):
        return str(error.get("code"))
    result = reply.get("result")
    return "tool_error" if isinstance(result, dict) and result.get("isError") is True else None


def _sampler(options: TracingOptions) -> Sampler:
    name, ratio = options.sampler, options.ratio
    if name == "always_on":
        return ALWAYS_ON
    if name == "always_off":
        return ALWAYS_OFF
    if name == "traceidratio":
        return TraceIdRatioBased(ratio)
    if name == "parentbased_always_on":
        return _PARENT_BASED_ALWAYS_ON
    if name == "parentbased_always_off":
        return ParentBased(ALWAYS_OFF)
    if ratio >= 1:
        return _PARENT_BASED_ALWAYS_ON
    return ParentBased(ALWAYS_OFF if ratio <= 0 else TraceIdRatioBased(ratio))


_PARENT_BASED_ALWAYS_ON = ParentBased(ALWAYS_ON)  # sampling 1.0: the recorder decides without asking

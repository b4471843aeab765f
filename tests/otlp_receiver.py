"""A real OTLP/HTTP trace receiver for tests: an aiohttp server at `/v1/traces` that decodes each
`ExportTraceServiceRequest` (protobuf, optionally gzip) with `opentelemetry-proto`, as a collector
would, and keeps the spans as plain `ReceivedSpan`s.

    receiver = OtlpReceiver()
    await receiver.start()            # receiver.url: the base URL (OTEL_EXPORTER_OTLP_ENDPOINT style)
    spans = await receiver.wait_for(lambda spans: len(spans) >= 2)
    await receiver.close()

Run alone (`python tests/otlp_receiver.py PORT`) it counts spans and prints nothing, for bench/.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

KINDS = {Span.SPAN_KIND_SERVER: "SERVER", Span.SPAN_KIND_CLIENT: "CLIENT", Span.SPAN_KIND_INTERNAL: "INTERNAL"}


@dataclass
class ReceivedSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL…
    attributes: dict[str, Any]
    status: str  # UNSET, OK, ERROR
    service: str  # the resource's service.name
    start_ns: int
    end_ns: int


def _value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, which) if which else None


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=KINDS.get(span.kind, str(span.kind)),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        status={0: "UNSET", 1: "OK", 2: "ERROR"}.get(span.status.code, "?"),
                        service=str(resource.get("service.name", "")),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    posts: int = 0
    content_types: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        self.posts += 1
        self.content_types.append(request.headers.get("Content-Type", ""))
        self.spans.extend(decode(body))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def wait_for(
        self, condition: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition(self.spans):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"the receiver did not get the expected spans in {timeout:g} s; got {[(s.name, s.kind) for s in self.spans]}"
                )
            await asyncio.sleep(0.02)
        return self.spans

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def main() -> None:
    """A receiver on PORT that only counts (for benchmarks): each export is parsed (so a broken
    one fails) and its spans counted, without the per-span Python objects the tests read: a
    collector runs elsewhere, and decoding here must not take the CPU the load generator
    sharing this machine needs. GET /count answers the span and post counts."""
    port = int(sys.argv[1])
    counts = {"spans": 0, "posts": 0}

    async def export(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest.FromString(await request.read())
        counts["posts"] += 1
        counts["spans"] += sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def count(request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", export)
    app.router.add_get("/count", count)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()

"""Whether a capability is traced, and how: read from its control exposure's `observability`
block and the standard `OTEL_*` variables, without importing OpenTelemetry.

The alpha2 schema puts the block on the control exposure only (`ExposesControl.observability`):

    capability:
      exposes:
        - type: control
          port: 9190
          observability:              # enabled: true by default
            traces:
              sampling: 1.0            # 0..1, of the traces that start here (default 1.0)
              propagation: w3c         # w3c (traceparent) | b3 (the single `b3` header) upstream
              local: {enabled: true, buffer-size: 100}   # the control port's ring buffer
            exporters:
              otlp: {endpoint: "http://collector:4318"}  # OTLP/HTTP base URL: spans go to /v1/traces

Tracing is on for a capability when something would read its spans: a control exposure whose
observability is enabled (the ring buffer, unless `traces.local.enabled: false`), or an OTLP
endpoint (the block's, or `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
even without a control exposure). `observability.enabled: false`, `OTEL_SDK_DISABLED=true`, or
no reader switch it off: then no OpenTelemetry module is imported and nothing is added to the
request path. As in the reference engine, the variables win over the file:

| variable | effect |
|---|---|
| `OTEL_SDK_DISABLED=true` | no tracing at all |
| `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the full URL spans are posted to |
| `OTEL_EXPORTER_OTLP_ENDPOINT` | the base URL (`/v1/traces` is added), instead of `exporters.otlp.endpoint` |
| `OTEL_TRACES_EXPORTER=none` | no export (the ring buffer still fills) |
| `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | the sampler (`parentbased_traceidratio` with `sampling` by default) |
| `OTEL_PROPAGATORS` | what is sent upstream (`tracecontext`, `b3`, `b3multi`, `baggage`), instead of `propagation` |
| `OTEL_SERVICE_NAME` | `service.name` (default `naftiko-<info.label>`, as the reference engine) |
| `OTEL_BSP_SCHEDULE_DELAY` | milliseconds between batch exports (default here 1000, the SDK's is 5000) |
| `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_MAX_QUEUE_SIZE` | spans per export (2048; the SDK's is 512), spans waiting at most (8192) |

The SDK itself reads the other exporter variables (`OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`,
`…_COMPRESSION`, `…_CERTIFICATE`, `OTEL_RESOURCE_ATTRIBUTES`…) from the process environment.

One `Tracing` (tracer provider, exporter, ring buffer) is made per distinct `TracingOptions`
and shared by every capability configured alike; the engine asks for it when it builds a
namespace's client (`client_tracing`), the server when it builds a port's layers
(`server_tracing`), the control port for the ring buffer (`trace_buffer_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trace_buffer import TraceBuffer
    from .tracing import Tracing

log = logging.getLogger("naftiko")

PROPAGATIONS = ("w3c", "b3")
PROPAGATORS = ("tracecontext", "baggage", "b3", "b3multi")  # the OTEL_PROPAGATORS names we send
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_BUFFER_SIZE = 100
DEFAULT_SCHEDULE_DELAY_MS = 1000.0
DEFAULT_MAX_BATCH = 2048  # the SDK's 512 posts four times as often: ~2 µs of CPU a span instead of ~0.7
DEFAULT_MAX_QUEUE = 8192
TRACES_PATH = "/v1/traces"
_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class TracingOptions:
    """What a `Tracing` is made of (a value: equal options share one `Tracing`)."""

    service_name: str
    sampler: str = "parentbased_traceidratio"  # one of SAMPLERS
    ratio: float = 1.0  # for the traceidratio samplers
    propagators: tuple[str, ...] = ("tracecontext",)  # sent upstream; inbound accepts W3C and B3 alike
    traces_url: str | None = None  # OTLP/HTTP URL spans are posted to; None: no export
    buffer_size: int | None = DEFAULT_BUFFER_SIZE  # the ring buffer's traces; None: no ring buffer
    schedule_delay_ms: float = DEFAULT_SCHEDULE_DELAY_MS
    max_batch: int = DEFAULT_MAX_BATCH
    max_queue: int = DEFAULT_MAX_QUEUE


Render = Callable[[str, tuple], str]  # (text, JSON path of the text) → text with binds resolved


def tracing_options(
    data: Any, environ: Mapping[str, str] | None = None, render: Render | None = None
) -> TracingOptions | None:
    """The tracing a capability document asks for (with `environ`'s `OTEL_*`), or None when off.

    `render` resolves bind variables in the endpoint (`{{COLLECTOR_URL}}`); values the file gives
    that the schema refuses are reported by `naftiko validate` (spec/semantics.py), and here they
    fall back to the defaults."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    index, control = _control_exposure(data)
    observability = _mapping(control.get("observability")) if control is not None else {}
    if observability.get("enabled") is False:
        return None
    traces = _mapping(observability.get("traces"))
    local = _mapping(traces.get("local"))
    buffer_size = None
    if control is not None and local.get("enabled") is not False:
        size = local.get("buffer-size")
        buffer_size = (
            size
            if isinstance(size, int) and not isinstance(size, bool) and 10 <= size <= 10000
            else DEFAULT_BUFFER_SIZE
        )
    at = ("capability", "exposes", index, "observability", "exporters", "otlp", "endpoint")
    traces_url = _traces_url(observability, environ, render, at)
    if buffer_size is None and traces_url is None:
        return None  # nothing would read the spans
    sampler, ratio = _sampler(traces.get("sampling"), environ)
    return TracingOptions(
        service_name=environ.get("OTEL_SERVICE_NAME") or _service_name(data),
        sampler=sampler,
        ratio=ratio,
        propagators=_propagators(traces.get("propagation"), environ),
        traces_url=traces_url,
        buffer_size=buffer_size,
        schedule_delay_ms=_number(environ.get("OTEL_BSP_SCHEDULE_DELAY"), DEFAULT_SCHEDULE_DELAY_MS, minimum=1),
        max_batch=int(_number(environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), DEFAULT_MAX_BATCH, minimum=1)),
        max_queue=int(_number(environ.get("OTEL_BSP_MAX_QUEUE_SIZE"), DEFAULT_MAX_QUEUE, minimum=1)),
    )


def _control_exposure(data: Any) -> tuple[int, Mapping[str, Any] | None]:
    capability = data.get("capability") if isinstance(data, Mapping) else None
    exposes = capability.get("exposes") if isinstance(capability, Mapping) else None
    for index, exposure in enumerate(exposes if isinstance(exposes, list) else ()):
        if isinstance(exposure, Mapping) and exposure.get("type") == "control":
            return index, exposure
    return -1, None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _traces_url(
    observability: Mapping[str, Any], environ: Mapping[str, str], render: Render | None, at: tuple
) -> str | None:
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    full = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if full:
        return full
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        otlp = _mapping(_mapping(observability.get("exporters")).get("otlp"))
        endpoint = otlp.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.strip():
            return None
        base = (
            render(endpoint, at) if render is not None and ("{{" in endpoint or "<<" in endpoint) else endpoint
        ).strip()
        if not base.startswith(("http://", "https://")):
            return None  # semantics.py reports it; an unrendered placeholder in dry-run too
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def _sampler(sampling: Any, environ: Mapping[str, str]) -> tuple[str, float]:
    """ParentBased(TraceIdRatio(sampling)): an inbound trace's sampled flag is followed, traces
    that start here are kept at the file's rate. The OTEL_TRACES_SAMPLER* variables win."""
    ratio = (
        float(sampling)
        if isinstance(sampling, (int, float)) and not isinstance(sampling, bool) and 0 <= sampling <= 1
        else 1.0
    )
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if name and name not in SAMPLERS:
        log.warning(
            "OTEL_TRACES_SAMPLER=%s is not supported (one of %s): using parentbased_traceidratio",
            name[:40],
            ", ".join(SAMPLERS),
        )
        name = ""
    ratio = _number(environ.get("OTEL_TRACES_SAMPLER_ARG"), ratio, minimum=0, maximum=1)
    return name or "parentbased_traceidratio", ratio


def _propagators(propagation: Any, environ: Mapping[str, str]) -> tuple[str, ...]:
    listed = [p.strip().lower() for p in environ.get("OTEL_PROPAGATORS", "").split(",") if p.strip()]
    if listed:
        if listed == ["none"]:
            return ()
        unknown = [p for p in listed if p not in PROPAGATORS]
        if unknown:
            log.warning(
                "OTEL_PROPAGATORS: %s not supported (supported: %s)", ", ".join(unknown)[:80], ", ".join(PROPAGATORS)
            )
        known = tuple(dict.fromkeys(p for p in listed if p in PROPAGATORS))
        if known:
            return known
    return ("b3",) if propagation == "b3" else ("tracecontext",)


def _service_name(data: Any) -> str:
    info = data.get("info") if isinstance(data, Mapping) else None
    label = info.get("label") if isinstance(info, Mapping) else None
    return f"naftiko-{label}" if isinstance(label, str) and label.strip() else "naftiko"


def _number(text: str | None, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    if value != value or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        return default
    return value


# -- one Tracing per distinct options, found again by file -------------------------------------

_tracings: dict[TracingOptions, Tracing] = {}
_options_by_file: dict[str, TracingOptions | None] = {}


def tracing_of(options: TracingOptions) -> Tracing:
    """The `Tracing` of these options, made on first use (this is where OpenTelemetry is imported)."""
    tracing = _tracings.get(options)
    if tracing is None:
        from .tracing import Tracing

        tracing = _tracings[options] = Tracing(options)
    return tracing


def client_tracing(
    document: Any, environ: Mapping[str, str] | None = None, render: Render | None = None
) -> Tracing | None:
    """For the engine at load (`_Compiler._client`): the tracing of `document` (a spec Document),
    remembered by its file for the server and the control port; None when tracing is off."""
    options = tracing_options(document.resolved, environ, render)
    _options_by_file[document.file] = options
    return tracing_of(options) if options is not None else None


def capability_tracing(capability: Any) -> Tracing | None:
    """The tracing of a compiled capability: what the engine chose when it compiled it, or (a
    capability with no consumed namespace) what its document says with the process environment."""
    options = _capability_options(capability)
    return tracing_of(options) if options is not None else None


def _capability_options(capability: Any) -> TracingOptions | None:
    file = capability.file
    return _options_by_file[file] if file in _options_by_file else tracing_options(capability.document.resolved)


def tracing_status(capability: Any) -> dict[str, Any]:
    """What the control port's `/status` says of a capability's tracing (`otel`)."""
    options = _capability_options(capability)
    if options is None:
        return {"status": "inactive"}
    return {
        "status": "active",
        "sampler": options.sampler,
        "sampling": options.ratio,
        "propagators": list(options.propagators),
        "exporter": shown_url(options.traces_url) if options.traces_url else None,
        "localBufferSize": options.buffer_size,
    }


def shown_url(url: str) -> str:
    """`url` as logs and the control port show it: no userinfo, no query (either may hold a key)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}".partition("?")[0] if sep else url


def server_tracing(entries: Iterable[tuple[Any, Any]]) -> Tracing | None:
    """For a port at load: the tracing of the first traced capability it serves, or None (then
    the port gets no tracing layer). Ports merged from several files share one server span layer."""
    for capability, _ in entries:
        tracing = capability_tracing(capability)
        if tracing is not None:
            return tracing
    return None


def retire_unused(capabilities: Iterable[Any]) -> list[asyncio.Task[None]]:
    """After a reload, on the event loop: flush and close every `Tracing` that none of
    `capabilities`, the ones now served, uses any more — a file whose `observability` changed
    leaves one behind. Returns the tasks doing it (a flush may wait on the collector)."""
    in_use = {id(tracing) for capability in capabilities if (tracing := capability_tracing(capability)) is not None}
    retired = []
    for options, tracing in list(_tracings.items()):
        if id(tracing) not in in_use:
            del _tracings[options]
            task = asyncio.get_running_loop().create_task(tracing.close())
            _retiring.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(_retiring.discard)
            retired.append(task)
    return retired


_retiring: set[asyncio.Task[None]] = set()


async def close_all(timeout: float = 5.0) -> None:
    """Before the process stops: export every span ended so far (they are batched on the event
    loop: nothing exports them once it is gone) and close the exporters, `timeout` s at most."""
    if _tracings or _retiring:
        closing = [tracing.close() for tracing in _tracings.values()] + list(_retiring)
        _tracings.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout)


def trace_buffer_of(capability: Any) -> TraceBuffer | None:
    """For the control port: the ring buffer of `capability`'s traces (see `TraceBuffer`), or
    None when tracing is off or `traces.local.enabled: false`."""
    tracing = capability_tracing(capability)
    return tracing.buffer if tracing is not None else None

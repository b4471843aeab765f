"""OTLP/HTTP export that a missing collector cannot turn into a flood of log lines.

The SDK's exporter (`opentelemetry-exporter-otlp-proto-http`) retries a refused connection with
backoff for up to its timeout (10 s), logging a warning per retry and an error per batch, and
the batch processor logs "Queue full, dropping Span." for every span it drops meanwhile, on the
request path. Here those records are kept back (the last reason is remembered), and:

- after a failed export, batches are dropped without being encoded or sent for a cool-down that
  doubles from 5 s up to 60 s, so an absent collector costs neither CPU nor a retry storm;
- one warning per minute at most says where spans could not go, why, and how many were dropped;
- the first export that works again says so once.

Requests are never affected: export runs on the batch processor's own thread.

Spans are encoded by `otlp_encode.SpanEncoder` (5–10 times faster than the SDK's encoder, same
message) and posted by the SDK exporter's own HTTP client, so `OTEL_EXPORTER_OTLP_*` headers,
compression, certificates, timeouts and retries behave as the SDK documents. Should a future
SDK no longer have that client, the SDK's whole `export` is used instead (slower, same result).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .otlp_encode import SpanEncoder
from .trace_config import shown_url

log = logging.getLogger("naftiko")

WARN_EVERY = 60.0  # seconds between two warnings about the same exporter
FIRST_COOL_DOWN = 5.0
MAX_COOL_DOWN = 60.0
# The SDK loggers whose span-export records are kept back (the batch processor's is shared with
# logs and metrics: only its span records are).
_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
_PROCESSOR_LOGGER = "opentelemetry.sdk._shared_internal"


class _KeptBack(logging.Filter):
    """Keeps span-export records from the SDK's loggers out of the log; remembers the last one."""

    def __init__(self) -> None:
        super().__init__()
        self.last = ""
        self.queue_drops = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == _PROCESSOR_LOGGER:
            if "Span" not in message:
                return True
            if message.startswith("Queue full"):
                self.queue_drops += 1
                return False
        template, args = str(record.msg), record.args if isinstance(record.args, tuple) else ()
        if template.startswith("Transient error") and args:
            self.last = str(args[0])  # the cause (refused, timed out, 503…), better than what follows
        elif template.startswith("Failed to export %s batch code") and len(args) == 3:
            self.last = f"HTTP {args[1]}: {args[2]}" if args[1] is not None else str(args[2])
        elif not (template.startswith("Failed to export %s batch due to") and self.last):
            self.last = message
        return False


_kept_back = _KeptBack()
logging.getLogger(_EXPORTER_LOGGER).addFilter(_kept_back)
logging.getLogger(_PROCESSOR_LOGGER).addFilter(_kept_back)


class QuietOtlpExporter(SpanExporter):
    """`OTLPSpanExporter(traces_url)` with a cool-down after failures and rate-limited warnings."""

    def __init__(self, traces_url: str):
        self.traces_url = shown_url(traces_url)  # as logged
        self.inner = OTLPSpanExporter(endpoint=traces_url)
        client = getattr(self.inner, "_client", None)
        self._client = client if callable(getattr(client, "export", None)) else None
        self._encoder = SpanEncoder()
        self._lock = threading.Lock()
        self._cool_down = 0.0
        self._skip_until = 0.0
        self._next_warning = 0.0
        self._dropped = 0
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        now = time.monotonic()
        if now < self._skip_until:
            self._drop(len(spans), now)
            return SpanExportResult.FAILURE
        try:
            result = self._send(spans)
        except Exception as exc:  # noqa: BLE001 - a bad batch must not stop the export thread
            _kept_back.last = f"{type(exc).__name__}: {exc}"
            result = SpanExportResult.FAILURE
        now = time.monotonic()
        if result is SpanExportResult.SUCCESS:
            if self._failing:
                log.warning("tracing: spans reach %s again", self.traces_url)
            self._failing, self._cool_down = False, 0.0
            return result
        self._failing = True
        self._cool_down = min(MAX_COOL_DOWN, self._cool_down * 2 or FIRST_COOL_DOWN)
        self._skip_until = now + self._cool_down
        self._drop(len(spans), now)
        return result

    def _send(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._client is None:
            return self.inner.export(spans)
        outcome = self._client.export(self._encoder.encode(spans))
        return SpanExportResult.SUCCESS if outcome.success else SpanExportResult.FAILURE

    def _drop(self, count: int, now: float) -> None:
        with self._lock:
            self._dropped += count
            if now < self._next_warning:
                return
            self._next_warning = now + WARN_EVERY
            dropped, self._dropped = self._dropped + _kept_back.queue_drops, 0
            _kept_back.queue_drops = 0
        reason = _kept_back.last or "the collector refused the spans"
        log.warning(
            "tracing: cannot export spans to %s (%s); %d span(s) dropped, requests are not affected (next warning in a minute at most)",
            self.traces_url, reason[:300], dropped,
        )  # fmt: skip

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)

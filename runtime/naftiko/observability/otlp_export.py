"""OTLP/HTTP export of ended spans, batched on the event loop.

The SDK's `BatchSpanProcessor` hands every span to a thread through a lock-guarded queue, and
the thread encodes and posts there, contending with the event loop for the GIL; with the SDK's
spans that pipeline cost +55 % server CPU per MCP call at 16 concurrent calls
(bench/tracing_cost.py), against +24 % for this one. Here spans are kept in a plain list on the
loop that ends them (`add` is a SpanRecorder sink), and a batch goes out when `max_batch` spans are
waiting (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 2048 here: a post costs ~0.5 ms of CPU whatever its
size) or `schedule_delay` seconds after the first one:

- encoded on the loop as soon as `SLICE` spans have ended (otlp_encode.py: a fifth of a
  millisecond), while they are still in the CPU's caches; what waits is then bytes, not objects
  the garbage collector walks (keeping 2,048 spans as objects cost more than encoding them);
- posted by the SDK exporter's own HTTP client (`OTLPSpanExporter`'s), on one thread of this
  exporter's, so `OTEL_EXPORTER_OTLP_*` headers, compression, certificates, timeout and retries
  with backoff behave as the SDK documents; one batch is in flight at a time;
- at most `max_queue` spans wait (`OTEL_BSP_MAX_QUEUE_SIZE`, 8192 here); past that new spans
  are dropped and counted, so a slow collector never grows memory or slows requests.

A missing collector cannot turn into a flood of log lines: the SDK exporter's retry records are
kept back (the last reason is remembered); after a failed export, batches are dropped without
being encoded or sent for a cool-down that doubles from 5 s up to 60 s; one warning per minute
at most says where spans could not go, why, and how many were dropped; the first export that
works again says so once.

`flush()` exports everything waiting (the runtime awaits it before it stops, and before a
reload retires the exporter: trace_config.py); `close()` flushes and ends the thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from .otlp_encode import SpanEncoder
from .spans import LiveSpan
from .trace_config import DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, shown_url

log = logging.getLogger("naftiko")

SLICE = 64  # spans encoded at a time, soon after they end
WARN_EVERY = 60.0  # seconds between two warnings about the same exporter
FIRST_COOL_DOWN = 5.0
MAX_COOL_DOWN = 60.0
_EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.common.http")


class _KeptBack(logging.Filter):
    """Keeps the SDK exporter's records out of the log; remembers the last reason they give."""

    def __init__(self) -> None:
        super().__init__()
        self.last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        template, args = str(record.msg), record.args if isinstance(record.args, tuple) else ()
        if template.startswith("Transient error") and args:
            self.last = str(args[0])  # the cause (refused, timed out, 503…), better than what follows
        elif template.startswith("Failed to export %s batch code") and len(args) == 3:
            self.last = f"HTTP {args[1]}: {args[2]}" if args[1] is not None else str(args[2])
        elif not (template.startswith("Failed to export %s batch due to") and self.last):
            self.last = record.getMessage()
        return False


_kept_back = _KeptBack()
for _name in _EXPORTER_LOGGERS:
    logging.getLogger(_name).addFilter(_kept_back)


class OtlpExporter:
    """Batches ended spans on the event loop and posts them to `traces_url` (see the module)."""

    def __init__(
        self,
        traces_url: str,
        encoder: SpanEncoder,
        schedule_delay: float,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ):
        self.traces_url = shown_url(traces_url)  # as logged
        self.sdk = OTLPSpanExporter(endpoint=traces_url)
        self.encoder = encoder
        self.schedule_delay = schedule_delay
        self.max_batch = max_batch
        self.max_queue = max(max_queue, max_batch)
        self._fresh: list[LiveSpan] = []  # ended, not encoded yet
        self._encoded: list[bytes] = []  # encoded, not sent yet
        self._accepting = True  # False during a cool-down after a failed export
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the handles below are on
        self._encoding: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._due = False  # the schedule delay passed, or a flush asks: send what waits, full batch or not
        self._thread: ThreadPoolExecutor | None = None
        self._cool_down = 0.0
        self._next_warning = 0.0
        self._dropped = 0
        self._failing = False

    def add(self, span: LiveSpan) -> None:
        """A SpanRecorder sink: keep `span` for the next batch (dropped when `max_queue` wait or
        during a cool-down). It is encoded soon after, with the spans that ended around it."""
        fresh = self._fresh
        if not self._accepting or len(fresh) + len(self._encoded) >= self.max_queue:
            self._dropped += 1
            return
        fresh.append(span)
        if len(fresh) >= SLICE:
            if self._encoding is None:
                self._schedule(encode=True)
        elif self._timer is None:
            self._schedule(encode=False)

    async def flush(self) -> None:
        """Export every span ended so far."""
        self._on_loop(asyncio.get_running_loop())
        self._encode()
        self._due = True
        while self._encoded or self._task is not None:
            if self._task is None:
                self._start()
            assert self._task is not None
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Flush, then end the posting thread."""
        try:
            await self.flush()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
                self._thread = None
            self.sdk.shutdown()

    # -- batching ----------------------------------------------------------------------------------

    def _schedule(self, encode: bool) -> None:
        loop = asyncio._get_running_loop()
        if loop is None:  # ended off any loop: goes with the next batch or flush
            return
        self._on_loop(loop)
        if encode and self._encoding is None:
            self._encoding = loop.call_soon(self._encode)  # after the answer being made is sent
        if self._timer is None:
            self._timer = loop.call_later(self.schedule_delay, self._on_timer)

    def _on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget handles and a task left on another loop (one closed before they ran)."""
        if loop is not self._loop:
            self._loop, self._encoding, self._timer, self._task = loop, None, None, None

    def _encode(self) -> None:
        """Encode the fresh spans now: while they are still in the CPU's caches, and so that
        what waits to be sent is bytes, not objects for the garbage collector to walk."""
        self._encoding = None
        fresh = self._fresh
        if not fresh:
            return
        self._fresh = []
        try:
            self._encoded += self.encoder.spans(fresh)
        except Exception as exc:  # noqa: BLE001 - a span that cannot be encoded must not stop export
            _kept_back.last = f"cannot encode spans: {type(exc).__name__}: {exc}"
            self._drop(len(fresh), time.monotonic())
        if len(self._encoded) >= self.max_batch and self._task is None:
            self._start()

    def _on_timer(self) -> None:
        self._timer = None
        self._encode()
        self._due = True
        if self._task is None and self._encoded:
            self._start()

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._encoded and (self._due or len(self._encoded) >= self.max_batch):
                batch = self._encoded[: self.max_batch]
                del self._encoded[: self.max_batch]
                if not self._encoded:
                    self._due = False
                await self._send(batch)
        finally:
            self._task = None
            if (self._encoded or self._fresh) and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.schedule_delay, self._on_timer)

    # -- sending -----------------------------------------------------------------------------------

    async def _send(self, batch: list[bytes]) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="naftiko-otlp")
        loop = asyncio.get_running_loop()
        try:
            result: Any = await loop.run_in_executor(self._thread, self.sdk._client.export, self.encoder.request(batch))
            success = bool(result.success)
        except Exception as exc:  # noqa: BLE001 - a bad batch must not stop the export
            _kept_back.last = f"{type(exc).__name__}: {exc}"
            success = False
        now = time.monotonic()
        if success:
            if self._failing:
                log.warning("tracing: spans reach %s again", self.traces_url)
            self._failing, self._cool_down = False, 0.0
            if dropped := self._warning_due(now):
                log.warning(
                    "tracing: %d span(s) dropped: more than %d waited for %s (OTEL_BSP_MAX_QUEUE_SIZE)",
                    dropped, self.max_queue, self.traces_url,
                )  # fmt: skip
            return
        # a cool-down: what waits and what ends meanwhile is dropped, not encoded nor sent
        self._failing = True
        self._cool_down = min(MAX_COOL_DOWN, self._cool_down * 2 or FIRST_COOL_DOWN)
        self._accepting = False
        loop.call_later(self._cool_down, self._accept)
        dropped = len(batch) + len(self._encoded) + len(self._fresh)
        self._encoded, self._fresh = [], []
        self._drop(dropped, now)

    def _accept(self) -> None:
        self._accepting = True

    def _drop(self, count: int, now: float) -> None:
        self._dropped += count
        if not (dropped := self._warning_due(now)):
            return
        reason = _kept_back.last or "the collector refused the spans"
        log.warning(
            "tracing: cannot export spans to %s (%s); %d span(s) dropped, requests are not affected (next warning in a minute at most)",
            self.traces_url, reason[:300], dropped,
        )  # fmt: skip

    def _warning_due(self, now: float) -> int:
        """The spans dropped since the last warning, when another may be given (one a minute at
        most); 0 otherwise."""
        if not self._dropped or now < self._next_warning:
            return 0
        self._next_warning = now + WARN_EVERY
        dropped, self._dropped = self._dropped, 0
        return dropped

"""Observability: traces (trace_config.py decides, tracing.py records, trace_buffer.py keeps the
control port's recent traces, otlp_export.py exports) and logs (logs.py).

Importing this package imports no OpenTelemetry module: tracing.py is loaded only when a
capability turns tracing on, so a runtime without it pays nothing (DESIGN §6).
"""

from .trace_config import (
    TracingOptions,
    capability_tracing,
    client_tracing,
    close_all,
    retire_unused,
    server_tracing,
    trace_buffer_of,
    tracing_options,
)

__all__ = [
    "TracingOptions",
    "capability_tracing",
    "client_tracing",
    "close_all",
    "retire_unused",
    "server_tracing",
    "trace_buffer_of",
    "tracing_options",
]

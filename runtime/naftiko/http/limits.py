"""The bounds of our HTTP server, gathered in one value built once from the command line.

Defaults follow nginx and uvicorn where they agree: a 64 KiB request head, 75 s keep-alive,
a connection cap well below the usual 65,536 file descriptors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_connections: int = 4096  # client connections open at once; more get 503 and are closed
    max_head_bytes: int = 64 * 1024  # request line and headers, counted on bytes received
    max_body_bytes: int = 4 * 1024 * 1024  # a larger body is read and dropped, then 413
    max_dropped_body_bytes: int = 64 * 1024 * 1024  # past this the connection is cut
    max_pipelined: int = 16  # requests queued on one connection before reading pauses
    write_buffer_bytes: int = 64 * 1024  # unsent answer bytes before reading pauses (back-pressure)
    keep_alive_timeout: float = 75.0  # seconds an idle connection is kept
    header_timeout: float = 30.0  # seconds from a request's first byte to the end of its head
    body_timeout: float = 60.0  # seconds from the end of a request's head to the end of its body
    linger_timeout: float = 2.0  # seconds an error answer waits for the client to stop sending
    stop_timeout: float = 30.0  # seconds requests in flight may run after a stop is asked

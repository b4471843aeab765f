"""naftiko.http's connection protocol driven with a fake transport (uvicorn's way): flow control,
bounds and timeouts in milliseconds, without sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from naftiko.http import HttpServer, Request, Response, ServerLimits
from naftiko.http.server import _Connection

GET = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.reading = True
        self.closed = self.aborted = self.eof = False
        self.high: int | None = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high = high

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def statuses(self) -> list[int]:
        return [int(chunk.split(b" ", 2)[1]) for chunk in self.written if chunk.startswith(b"HTTP/1.1 ")]


async def answer_ok(request: Request) -> Response:
    return Response(200, b"x" * 1000)


def connect(
    limits: ServerLimits | None = None, handler: Any = answer_ok
) -> tuple[HttpServer, _Connection, FakeTransport]:
    server = HttpServer(handler, limits or ServerLimits())
    connection = _Connection(server)
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return server, connection, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_no_answer_is_started_while_the_client_reads_none_and_all_follow_in_order_once_it_does() -> None:
    _, connection, transport = connect()
    assert transport.high == ServerLimits().write_buffer_bytes
    connection.data_received(GET)
    await settle()
    assert transport.statuses() == [200]
    connection.pause_writing()  # the transport's buffer went past the high-water mark
    assert not transport.reading
    connection.data_received(GET * 5)
    await settle()
    assert transport.statuses() == [200]  # nothing more is written while the client does not read
    connection.resume_writing()
    for _ in range(10):
        await settle()
    assert transport.statuses() == [200] * 6
    assert transport.reading


async def test_reading_pauses_when_too_many_requests_wait() -> None:
    limits = ServerLimits(max_pipelined=4)
    gate = asyncio.Event()

    async def slow(request: Request) -> Response:
        await gate.wait()
        return Response(204)

    _, connection, transport = connect(limits, slow)
    connection.data_received(GET * 6)
    assert not transport.reading
    gate.set()
    for _ in range(20):
        await settle()
    assert transport.statuses() == [204] * 6 and transport.reading


async def test_a_head_without_end_is_refused_once_the_bound_is_received_not_buffered_further() -> None:
    limits = ServerLimits(max_head_bytes=1024)
    _, connection, transport = connect(limits)
    connection.data_received(b"GET /x HTTP/1.1\r\nX-Long: ")
    connection.data_received(b"a" * 4000)  # no line end
    assert transport.statuses() == [431]
    assert transport.eof  # lingering close: our side shut, the rest is read and dropped
    size = len(b"".join(transport.written))
    connection.data_received(b"a" * 100_000)
    assert len(b"".join(transport.written)) == size


async def test_many_small_pipelined_requests_in_one_read_are_not_mistaken_for_a_long_head() -> None:
    limits = ServerLimits(max_head_bytes=1024, max_pipelined=1000)
    _, connection, transport = connect(limits)
    connection.data_received(GET * 100)  # 3.7 KB in one read, every head small
    for _ in range(300):
        await settle()
    assert transport.statuses() == [200] * 100


async def test_connections_past_the_cap_are_answered_503_and_closed() -> None:
    server = HttpServer(answer_ok, ServerLimits(max_connections=2))
    transports = []
    for _ in range(3):
        transport = FakeTransport()
        _Connection(server).connection_made(transport)  # type: ignore[arg-type]
        transports.append(transport)
    assert [t.statuses() for t in transports] == [[], [], [503]]
    assert transports[2].closed and len(server.connections) == 2


async def test_timeouts_idle_head_body_and_a_client_that_never_reads() -> None:
    limits = ServerLimits(keep_alive_timeout=5, header_timeout=2, body_timeout=3)
    _, idle, idle_transport = connect(limits)
    _, head, head_transport = connect(limits)
    _, body, body_transport = connect(limits)
    _, stalled, stalled_transport = connect(limits)
    head.data_received(b"GET /x HTTP/1.1\r\nHost: 1")
    body.data_received(b"PUT /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
    stalled.pause_writing()
    now = asyncio.get_running_loop().time()
    for connection in (idle, head, body, stalled):
        connection.expire(now + 2.5)
    assert (idle_transport.closed, head_transport.closed, body_transport.closed) == (False, True, False)
    for connection in (idle, body, stalled):
        connection.expire(now + 4)
    assert (idle_transport.closed, body_transport.closed, stalled_transport.aborted) == (False, True, False)
    idle.expire(now + 6)
    stalled.expire(now + 6)
    assert idle_transport.closed and stalled_transport.aborted


async def test_a_request_without_host_or_with_two_is_400_but_http_1_0_may_omit_it() -> None:
    for payload, status in (
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\n\r\n", 200),
    ):
        _, connection, transport = connect()
        connection.data_received(payload)
        await settle()
        assert transport.statuses() == [status], payload


async def test_an_answer_that_ends_the_connection_lingers_until_the_client_closes() -> None:
    _, connection, transport = connect()
    connection.data_received(b"GET / HTTP/1.0\r\n\r\n")
    await settle()
    assert transport.statuses() == [200] and transport.eof and not transport.closed
    connection.eof_received()
    assert transport.closed

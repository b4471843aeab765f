"""naftiko.http's streaming answers (`StreamingResponse`, for server-sent events) under a fake
transport: chunked framing, back-pressure, the stream closed whichever way it ends."""

from __future__ import annotations

import asyncio

from test_http_flow import GET, FakeTransport, connect, settle

from naftiko.http import HttpServer, Request, Response, ServerLimits, StreamingResponse


class Events:
    """An async iterator of chunks fed by the test, recording how often it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = 0

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.queue.get()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self.closed += 1


def streaming(events: Events):
    async def handler(request: Request) -> Response:
        if request.raw_path == "/x":
            return StreamingResponse(events, content_type="text/event-stream")
        return Response(200, b"plain")

    return handler


async def test_a_stream_is_written_chunked_as_it_comes_and_the_connection_goes_on_after_it() -> None:
    events = Events()
    _, connection, transport = connect(handler=streaming(events))
    connection.data_received(GET + b"GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
    await settle()
    head = transport.written[0]
    assert (
        head.startswith(b"HTTP/1.1 200 OK\r\n")
        and b"Transfer-Encoding: chunked\r\n" in head
        and b"Content-Length" not in head
    )
    events.queue.put_nowait(b"data: 1\n\n")
    await settle()
    assert transport.written[-1] == b"9\r\ndata: 1\n\n\r\n"
    assert transport.statuses() == [200]  # the pipelined request waits for the stream
    events.queue.put_nowait(None)
    await settle()
    assert b"0\r\n\r\n" in transport.written and events.closed == 1
    assert transport.statuses() == [200, 200] and transport.written[-1].endswith(b"plain")


async def test_a_stream_waits_while_the_client_leaves_it_unread() -> None:
    events = Events()
    _, connection, transport = connect(handler=streaming(events))
    connection.data_received(GET)
    await settle()
    connection.pause_writing()
    events.queue.put_nowait(b"a")
    events.queue.put_nowait(b"b")
    await settle()
    assert transport.written[-1] == b"1\r\na\r\n"  # "b" waits for the client to read
    connection.resume_writing()
    await settle()
    assert transport.written[-1] == b"1\r\nb\r\n"


async def test_the_stream_is_closed_when_the_client_goes_away() -> None:
    events = Events()
    server, connection, transport = connect(handler=streaming(events))
    connection.data_received(GET)
    await settle()
    connection.connection_lost(None)
    await settle()
    assert events.closed == 1 and connection not in server.connections


async def test_the_stream_is_closed_and_ended_when_the_server_stops() -> None:
    events = Events()
    server, connection, transport = connect(handler=streaming(events))
    connection.data_received(GET)
    await settle()
    closing = asyncio.get_running_loop().create_task(server.close(timeout=5))
    await settle()
    assert events.closed == 1 and b"0\r\n\r\n" in transport.written and transport.eof
    connection.connection_lost(None)
    await closing


async def test_a_head_request_gets_the_head_alone_and_the_stream_is_still_closed() -> None:
    events = Events()
    _, connection, transport = connect(handler=streaming(events))
    connection.data_received(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")
    await settle()
    assert transport.statuses() == [200] and b"0\r\n" not in b"".join(transport.written) and events.closed == 1


async def test_a_stalled_stream_is_cut_after_the_keep_alive_timeout_but_an_idle_one_is_not() -> None:
    events = Events()
    server = HttpServer(streaming(events), ServerLimits(keep_alive_timeout=5))
    from naftiko.http.server import _Connection

    connection = _Connection(server)
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(GET)
    await settle()
    now = asyncio.get_running_loop().time()
    connection.expire(now + 100)  # quiet, but the client reads: kept
    assert not transport.closed and not transport.aborted
    connection.pause_writing()
    connection.expire(now + 100)
    assert transport.aborted

"""MCP over stdio: newline-delimited JSON-RPC on stdin/stdout (DESIGN §4.7).

stdout carries protocol messages only; logs belong on stderr. Each request runs in its own task,
so a slow call does not hold up the others; at end of input the calls still running finish and
their answers are written before `run_stdio` returns. Notifications (a call's progress and log
messages, resource updates) are written as they happen, between the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO

from .mcp import McpServer
from .mcp_jsonrpc import PARSE_ERROR, encode, error_response

MAX_LINE = 4 * 1024 * 1024 + 1024

Write = Callable[[bytes], Awaitable[None]]
Handle = Callable[..., Awaitable[Any]]  # McpServer.handle(payload, session, notify)


class _Stdout:
    """The session's outlet: a notification is written at once, in order with the answers."""

    def __init__(self, push: Callable[[bytes], None]):
        self._push = push

    def send(self, message: dict[str, Any]) -> None:
        self._push(encode(message) + b"\n")

    def close(self) -> None:
        pass  # stdout outlives the session


async def run_stdio(server: McpServer, handle: Handle | None = None) -> None:
    """Serve `server` on stdin/stdout; `handle` is its `handle`, or that wrapped (tracing)."""
    handle = handle or server.handle
    async with _reader(sys.stdin.buffer) as reader, _writer(sys.stdout.buffer) as (write, push):
        session = server.new_session()
        session.open_outlet(stdout := _Stdout(push))
        pending: set[asyncio.Task[None]] = set()

        async def answer(payload: Any) -> None:
            notify = stdout.send if server.reports(payload, session) else None
            reply = await handle(payload, session, notify)
            if reply is not None:
                await write(encode(reply) + b"\n")

        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than MAX_LINE
                await write(encode(error_response(None, PARSE_ERROR, "Parse error: message too large")) + b"\n")
                continue
            if not line:
                break
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except (ValueError, RecursionError):
                await write(
                    encode(error_response(None, PARSE_ERROR, "Parse error: a line is one JSON-RPC message")) + b"\n"
                )
                continue
            task = asyncio.create_task(answer(payload))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if session.watch is not None:
            session.watch.close()


@contextlib.asynccontextmanager
async def _reader(stream: BinaryIO) -> AsyncIterator[asyncio.StreamReader]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    except ValueError:  # a regular file, not a pipe: read it whole
        reader.feed_data(await asyncio.to_thread(stream.read))
        reader.feed_eof()
        yield reader
        return
    try:
        yield reader
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def _writer(stream: BinaryIO) -> AsyncIterator[tuple[Write, Callable[[bytes], None]]]:
    """`write` (waits while the reader lags) and `push` (buffers at once: for notifications,
    whose number per call is bounded by its steps)."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stream)
    except ValueError:  # a regular file, not a pipe

        def push_file(data: bytes) -> None:
            stream.write(data)
            stream.flush()

        async def write_file(data: bytes) -> None:
            push_file(data)

        yield write_file, push_file
        return
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def write_pipe(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        yield write_pipe, writer.write
    finally:
        transport.close()

"""naftiko.http's server over real sockets on 127.0.0.1: what HTTP/1.1 clients rely on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from naftiko.http import HttpServer, Request, Response, ServerLimits, json_response

LIMIT = 1024


async def echo(request: Request) -> Response:
    if request.oversized:
        return Response(413, b"too large")
    if request.raw_path.startswith("/slow"):
        await asyncio.sleep(0.3)
    return json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "path": request.path,
            "query": list(request.query.items()),
            "body": request.body.decode("utf-8", "replace"),
            "content_type": request.content_type,
            "cookies": dict(request.cookies),
        }
    )


@pytest.fixture
async def server() -> AsyncIterator[tuple[HttpServer, int]]:
    http = HttpServer(echo, ServerLimits(max_body_bytes=LIMIT))
    port = await http.listen("127.0.0.1", 0)
    yield http, port
    await http.close(timeout=2)


async def exchange(port: int, payload: bytes, answers: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Write raw bytes, read `answers` responses (Content-Length framed) off the same connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    out = []
    try:
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            out.append((status, headers, body))
    finally:
        writer.close()
    return out


async def test_keep_alive_serves_many_requests_on_one_connection(server: tuple[HttpServer, int]) -> None:
    http, port = server
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for i in range(5):
            async with session.post(
                f"http://127.0.0.1:{port}/a%2Fb/c?x={i}&y=+z",
                data=b'{"k":1}',
                headers={"Content-Type": "Application/JSON; charset=utf-8"},
            ) as response:
                body = await response.json()
                assert response.status == 200 and "Date" in response.headers
        assert len(http.connections) == 1
    assert body == {
        "method": "POST",
        "raw_path": "/a%2Fb/c?x=4&y=+z",
        "path": "/a/b/c",
        "query": [["x", "4"], ["y", " z"]],
        "body": '{"k":1}',
        "content_type": "application/json",
        "cookies": {},
    }


async def test_pipelined_requests_are_answered_in_order(server: tuple[HttpServer, int]) -> None:
    _, port = server
    requests = (
        b"GET /slow/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = await exchange(port, requests, answers=3)
    assert [json.loads(body)["raw_path"] for _, _, body in answers] == ["/slow/1", "/2", "/3"]


async def test_chunked_request_body_and_cookies(server: tuple[HttpServer, int]) -> None:
    _, port = server
    payload = b"POST /c HTTP/1.1\r\nHost: x\r\nCookie: a=1; b=two\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    [(status, _, body)] = await exchange(port, payload)
    assert status == 200
    assert json.loads(body)["body"] == "abcde" and json.loads(body)["cookies"] == {"a": "1", "b": "two"}


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_body_is_dropped_and_the_connection_closed(
    server: tuple[HttpServer, int], chunked: bool
) -> None:
    _, port = server
    data = b"x" * (LIMIT + 1)
    if chunked:
        payload = b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            len(data),
            data,
        )
    else:
        payload = b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
    [(status, headers, body)] = await exchange(port, payload)
    assert (status, body, headers.get("connection")) == (413, b"too large", "close")


async def test_expect_100_continue(server: tuple[HttpServer, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK")
    writer.close()


async def test_head_has_the_length_but_no_body(server: tuple[HttpServer, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    assert head.startswith("HTTP/1.1 200") and "Content-Length: " in head and "Content-Length: 0\r\n" not in head
    second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert second.startswith(b"HTTP/1.1 200")  # the next answer follows at once: HEAD sent no body
    writer.close()


@pytest.mark.parametrize(
    "payload",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["request-line", "header", "two-lengths"],
)
async def test_malformed_requests_are_400_problem_and_closed(server: tuple[HttpServer, int], payload: bytes) -> None:
    _, port = server
    [(status, headers, body)] = await exchange(port, payload)
    assert status == 400 and headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    assert json.loads(body)["status"] == 400


async def test_http_1_0_closes_after_the_answer(server: tuple[HttpServer, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /old HTTP/1.0\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)  # read() returns at EOF: the server closed
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
    writer.close()


async def test_a_handler_error_is_500_and_the_connection_goes_on() -> None:
    async def broken(request: Request) -> Response:
        if request.raw_path == "/boom":
            raise RuntimeError("boom")
        return Response(204)

    http = HttpServer(broken, ServerLimits(max_body_bytes=LIMIT))
    port = await http.listen("127.0.0.1", 0)
    try:
        answers = await exchange(
            port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /fine HTTP/1.1\r\nHost: x\r\n\r\n", answers=2
        )
        assert [status for status, _, _ in answers] == [500, 204]
    finally:
        await http.close(timeout=2)


async def test_close_lets_requests_in_flight_finish_and_refuses_new_ones() -> None:
    http = HttpServer(echo, ServerLimits(max_body_bytes=LIMIT))
    port = await http.listen("127.0.0.1", 0)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    in_flight = asyncio.create_task(exchange(port, b"GET /slow/x HTTP/1.1\r\nHost: x\r\n\r\n"))
    await asyncio.sleep(0.1)
    await http.close(timeout=5)
    [(status, headers, _)] = await in_flight
    assert status == 200 and headers["connection"] == "close"
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # the idle connection was closed
    idle_writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.parametrize("where", ["url", "header", "many-headers"])
async def test_a_head_over_the_limit_is_431_and_closed(server: tuple[HttpServer, int], where: str) -> None:
    _, port = server
    big = "x" * (70 * 1024)
    if where == "url":
        payload = f"GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    elif where == "header":
        payload = f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode()
    else:
        payload = b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"y" * 100) for i in range(1000)) + b"\r\n"
    [(status, headers, body)] = await exchange(port, payload)
    assert (status, headers["connection"], json.loads(body)["status"]) == (431, "close", 431)

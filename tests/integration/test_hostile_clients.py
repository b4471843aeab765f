"""Hostile and careless clients against a real `naftiko run` (DESIGN §7, network safety), over raw
sockets: write back-pressure, bounded request heads, the connection cap, lingering close and
the header / keep-alive timeouts. Each test holds one bound and fails when it breaks."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from run_process import (
    CREDENTIALS,
    Answers,
    Naftiko,
    Upstream,
    closed_within,
    connect,
    exchange,
    head,
    read_answer,
    run_to_exit,
)
from support import free_port

MB = 1024  # RSS is read in KiB


@pytest.fixture
def fresh() -> Iterator[Naftiko]:
    """A dry-run server of its own: memory bounds are measured on a process no other test has used
    (memory freed by an earlier test would hide growth)."""
    with Naftiko() as server:
        yield server


@pytest.fixture(scope="module")
def shared() -> Iterator[Naftiko]:
    with Naftiko() as server:
        yield server


def warm_up(server: Naftiko, requests: bytes, count: int) -> None:
    """Send `requests` `count` times on one connection and read every answer, so the measured
    growth is not the first-use cost of routes, caches and allocator arenas."""
    with connect(server.rest_port) as sock:
        sock.sendall(requests * count)
        parser = Answers()
        while len(parser.done) < count * requests.count(b" HTTP/1.1\r\n"):
            data = sock.recv(1 << 20)
            assert data, "closed during the warm-up"
            parser.feed(data)


# -- 1. write back-pressure --------------------------------------------------------------------


def test_a_client_that_pipelines_without_reading_cannot_grow_the_server_memory(fresh: Naftiko) -> None:
    """Bound: one connection pipelining `GET /openapi.json` (4.7 KB answers from 50-byte requests) as
    fast as the socket takes them for ~4 s, reading nothing, grows the server's RSS by < 20 MB:
    the server stops reading while its unsent answers exceed a small buffer."""
    request = head("GET", "/openapi.json", fresh.rest_port)
    warm_up(fresh, request, 500)
    base = peak = fresh.rss_kb()
    batch = memoryview(request * 1000)
    offset = sent = 0
    sock = connect(fresh.rest_port)
    sock.setblocking(False)
    start = sampled = time.monotonic()
    try:
        while time.monotonic() - start < 4.0:
            _, writable, _ = select.select([], [sock], [], 0.05)
            if writable:
                try:
                    n = sock.send(batch[offset:])
                except BlockingIOError:
                    n = 0
                offset = (offset + n) % len(batch)
                sent += n
            if time.monotonic() - sampled > 0.1:
                sampled = time.monotonic()
                peak = max(peak, fresh.rss_kb())
                if peak - base > 20 * MB:
                    break  # failed already: stop feeding it
        peak = max(peak, fresh.rss_kb())
    finally:
        sock.close()
    assert peak - base < 20 * MB, (
        f"RSS grew by {(peak - base) / MB:.0f} MB while the client sent {sent / 1e6:.1f} MB of requests and read nothing"
    )
    assert fresh.alive() and exchange(fresh.rest_port, "GET", "/health").status == 200


def test_a_stalled_pipelining_client_is_kept_and_then_answered_every_request_in_order(shared: Naftiko) -> None:
    """Bound: 5,000 pipelined requests (every 5th a dry-run PUT naming its index, the others
    `GET /openapi.json`), then 3 s without reading: the connection stays open, and once the client
    reads it gets exactly 5,000 answers, each the answer to its own request, in order."""
    total = 5000
    requests = []
    for i in range(total):
        if i % 5 == 0:
            requests.append(
                head(
                    "PUT",
                    f"/v1/customers/c{i}",
                    shared.rest_port,
                    {"Content-Type": "application/json"},
                    json.dumps({"n": i}).encode(),
                )
            )
        else:
            requests.append(head("GET", "/openapi.json", shared.rest_port))
    outgoing = memoryview(b"".join(requests))
    offset = 0
    parser = Answers()
    sock = connect(shared.rest_port)
    sock.setblocking(False)
    try:
        stall_ends = time.monotonic() + 3.0
        while time.monotonic() < stall_ends:  # push what the socket takes, read nothing
            _, writable, _ = select.select([], [sock] if offset < len(outgoing) else [], [], 0.05)
            if writable:
                try:
                    offset += sock.send(outgoing[offset:])
                except BlockingIOError:
                    pass
        deadline = time.monotonic() + 30
        while len(parser.done) < total:
            assert time.monotonic() < deadline, f"{len(parser.done)} answers of {total} after 30 s of reading"
            readable, writable, _ = select.select([sock], [sock] if offset < len(outgoing) else [], [], 0.5)
            if writable:
                try:
                    offset += sock.send(outgoing[offset:])
                except BlockingIOError:
                    pass
            if readable:
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                assert data, f"the server closed the stalled connection after {len(parser.done)} answers of {total}"
                parser.feed(data)
    finally:
        sock.close()
    assert len(parser.done) == total
    for i, answer in enumerate(parser.done):
        assert answer.status == 200, (i, answer.status, answer.body[:200])
        if i % 5 == 0:
            assert answer.json()["request"]["url"].endswith(f"/customers/c{i}"), (i, answer.body[:200])
        else:
            assert answer.body.startswith(b'{"openapi"'), (i, answer.body[:100])


# -- 2. request heads bounded before buffering -------------------------------------------------


def test_a_32_mb_header_line_without_a_line_end_is_refused_within_2_s_without_being_buffered(fresh: Naftiko) -> None:
    """Bound: a header line of 32 MB that never ends is answered 431 (problem+json) or the
    connection closed within 2 s of the first byte, and the server's RSS grows by < 10 MB."""
    warm_up(fresh, head("GET", "/health", fresh.rest_port), 200)
    base = peak = fresh.rss_kb()
    outgoing = memoryview(
        f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{fresh.rest_port}\r\nX-Big: ".encode() + b"a" * (32 << 20)
    )
    offset = 0
    parser = Answers()
    refused = ""
    sock = connect(fresh.rest_port)
    sock.setblocking(False)
    start = time.monotonic()
    try:
        while not refused and time.monotonic() - start < 2.0:
            readable, writable, _ = select.select([sock], [sock] if offset < len(outgoing) else [], [], 0.05)
            if readable:
                try:
                    data = sock.recv(65536)
                    refused = "closed" if not data else ("answered" if parser.feed(data) else "")
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    refused = "reset"
            if writable and not refused:
                try:
                    offset += sock.send(outgoing[offset : offset + (1 << 20)])
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    refused = "reset"
            peak = max(peak, fresh.rss_kb())
        elapsed = time.monotonic() - start
        if refused and not parser.done:  # the 431 may still be readable after a failed send
            sock.setblocking(True)
            sock.settimeout(0.5)
            try:
                while (data := sock.recv(65536)) and not parser.feed(data):
                    pass
            except OSError:
                pass
    finally:
        sock.close()
    time.sleep(0.2)
    peak = max(peak, fresh.rss_kb())
    assert refused, f"neither answered nor closed after {elapsed:.1f} s and {offset / 1e6:.1f} MB of one header line"
    if parser.done:
        [answer] = parser.done
        assert answer.status == 431 and answer.headers["content-type"].startswith("application/problem+json"), answer
    assert peak - base < 10 * MB, (
        f"RSS grew by {(peak - base) / MB:.0f} MB for {offset / 1e6:.1f} MB of one header line"
    )
    assert exchange(fresh.rest_port, "GET", "/health").status == 200


@pytest.mark.parametrize("shape", ["many headers", "long request line"])
def test_a_request_head_over_64_kib_is_answered_431(shared: Naftiko, shape: str) -> None:
    """Bound: a complete request head (request line + headers) of ~80 KB is answered 431
    problem+json, and the answer is readable (not lost to a reset)."""
    if shape == "many headers":
        request = head("GET", "/health", shared.rest_port, {f"X-Pad-{n}": "p" * 1000 for n in range(80)})
    else:
        request = head("GET", "/health?pad=" + "p" * 80_000, shared.rest_port)
    with connect(shared.rest_port) as sock:
        sock.sendall(request)
        answer = read_answer(sock)
    assert answer.status == 431 and answer.headers["content-type"].startswith("application/problem+json"), answer


# -- 5. the connection cap ---------------------------------------------------------------------


def test_with_max_connections_8_at_most_8_of_20_connections_are_served_at_once_and_the_server_recovers() -> None:
    """Bound: `--max-connections 8`, 20 connections each sending a PUT that the upstream holds
    0.5 s: the upstream never sees more than 8 calls at once; each of the 20 gets its 200, a 503 or
    a close (none hangs); afterwards the server serves new connections again."""
    with (
        Upstream(delay=0.5) as upstream,
        Naftiko(
            "--max-connections", "8", "--upstream", f"track-customers={upstream.base}", dry_run=False, env=CREDENTIALS
        ) as server,
    ):
        outcomes: list[str] = []

        def client(i: int) -> None:
            try:
                with socket.create_connection(("127.0.0.1", server.rest_port), timeout=15) as sock:
                    sock.sendall(
                        head(
                            "PUT",
                            f"/v1/customers/c{i}",
                            server.rest_port,
                            {"Content-Type": "application/json", "Connection": "close"},
                            b"{}",
                        )
                    )
                    outcomes.append(str(read_answer(sock).status))
            except (ConnectionError, OSError) as exc:
                outcomes.append("timeout" if isinstance(exc, TimeoutError) else "closed")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert upstream.most_in_flight <= 8, (
            f"{upstream.most_in_flight} calls in flight at once with --max-connections 8"
        )
        assert len(outcomes) == 20 and set(outcomes) <= {"200", "503", "closed"}, sorted(outcomes)
        assert outcomes.count("200") >= 8, sorted(outcomes)
        assert exchange(server.rest_port, "GET", "/health").status == 200
        answer = exchange(server.rest_port, "PUT", "/v1/customers/after", {"Content-Type": "application/json"}, b"{}")
        assert answer.status == 200, answer


# -- 7. lingering close ------------------------------------------------------------------------


def test_a_client_sending_10_mb_to_a_4_mb_route_can_read_the_413_after_sending_everything(shared: Naftiko) -> None:
    """Bound: a 10 MB PUT body (limit 4 MB) sent whole before reading: sending is neither blocked
    nor reset, and the 413 problem+json is then read from the connection."""
    body = b"x" * (10 << 20)
    with connect(shared.rest_port, timeout=10) as sock:
        try:
            sock.sendall(head("PUT", "/v1/customers/c1", shared.rest_port, {"Content-Type": "application/json"}, body))
        except (BrokenPipeError, ConnectionResetError) as exc:
            pytest.fail(f"the connection was reset while the client was still sending: {exc!r}")
        except TimeoutError:
            pytest.fail("the server stopped reading the body and sending blocked for 10 s")
        try:
            answer = read_answer(sock)
        except ConnectionResetError as exc:
            pytest.fail(f"the connection was reset before the client could read the 413: {exc!r}")
    assert answer.status == 413 and answer.headers["content-type"].startswith("application/problem+json"), answer


def test_a_client_still_sending_48_mb_of_header_lines_after_its_431_can_read_the_431(shared: Naftiko) -> None:
    """Bound: the server answers 431 after 64 KiB of a 48 MB head (complete header lines, more than
    the kernel buffers hold) while the client is still sending; it must go on reading and dropping
    (lingering close) rather than close with unread bytes, which resets the connection: the
    client's send fails and the 431 may be destroyed before it is read."""
    line = b"X-Pad: " + b"p" * 1017 + b"\r\n"  # 1 KiB
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{shared.rest_port}\r\n".encode() + line * (48 * 1024) + b"\r\n"
    with connect(shared.rest_port, timeout=10) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError) as exc:
            pytest.fail(f"the connection was reset while the client was still sending its head: {exc!r}")
        try:
            answer = read_answer(sock)
        except ConnectionResetError as exc:
            pytest.fail(f"the connection was reset before the client could read the 431: {exc!r}")
    assert answer.status == 431 and answer.headers["content-type"].startswith("application/problem+json"), answer


# -- 9. timeouts and their flags ---------------------------------------------------------------


def test_with_timeout_keep_alive_1_an_idle_keep_alive_connection_is_closed_within_a_few_seconds() -> None:
    """Bound: `--timeout-keep-alive 1`: after a kept-alive answer, an idle connection is closed by
    the server within 4 s (about 1–2 s expected)."""
    with Naftiko("--timeout-keep-alive", "1") as server, connect(server.rest_port) as sock:
        sock.sendall(head("GET", "/health", server.rest_port))
        answer = read_answer(sock)
        assert answer.status == 200 and "close" not in answer.headers.get("connection", "")
        closed, late = closed_within(sock, 4.0)
    assert closed and not late, f"still open 4 s after its last answer (read {late[:100]!r})"


def test_with_timeout_header_1_a_half_sent_request_head_is_closed_or_answered_408() -> None:
    """Bound: `--timeout-header 1`: a connection that sends half a request head and stalls is
    closed (or answered 408) within 4 s."""
    with Naftiko("--timeout-header", "1") as server, connect(server.rest_port) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.rest_port}\r\nX-Half: wa".encode())
        closed, received = closed_within(sock, 4.0)
    assert closed, f"a half-sent head was still open after 4 s (read {received[:100]!r})"
    if received:
        [answer] = Answers().feed(received)
        assert answer.status == 408, answer


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout-keep-alive", "abc"),
        ("--timeout-header", "abc"),
        ("--max-connections", "0"),
        ("--max-connections", "many"),
    ],
)
def test_a_bad_network_flag_value_is_exit_2_naming_the_flag(flag: str, value: str) -> None:
    """Bound: a malformed or out-of-range value stops `naftiko run` before serving, exit 2, with a
    message naming the flag (not argparse's 'unrecognized arguments', not a traceback)."""
    ports = ("--port", f"track-customers-rest={free_port()}", "--port", f"track-customers-mcp={free_port()}")
    code, err = run_to_exit("--dry-run", *ports, flag, value, timeout=15)
    assert code == 2, err
    assert flag in err and "unrecognized arguments" not in err and "Traceback" not in err, err

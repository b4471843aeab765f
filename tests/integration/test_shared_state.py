"""`naftiko run --redis URL`: several real processes sharing one real redis-server (README "Fleet").

One rate limit for all of them (calls over it are refused, not queued: REST 429 + Retry-After,
MCP an isError result), MCP sessions valid on every replica and ended on every replica, and
calls that go on when Redis dies and share again when it returns.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from naftiko.state.rate_limit import LocalBucket, SharedBucket
from naftiko.state.redis_link import RedisLink
from redis_server import RedisServer, redis_binary
from run_process import CREDENTIALS, Naftiko, Upstream, run_to_exit

NS = "track-customers"
HANDSHAKE = "2025-06-18"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer(redis_binary()) as server:
        yield server


@contextmanager
def replicas(count: int, *flags: str, upstream: Upstream | None = None) -> Iterator[list[Naftiko]]:
    with ExitStack() as stack:
        extra = ("--upstream", f"{NS}={upstream.base}") if upstream is not None else ()
        yield [
            stack.enter_context(Naftiko(*flags, *extra, dry_run=upstream is None, env=CREDENTIALS))
            for _ in range(count)
        ]


def http(
    method: str, port: int, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), answer.read()


def put_customer(server: Naftiko, name: str = "c1") -> tuple[int, dict[str, str], bytes]:
    return http("PUT", server.rest_port, f"/v1/customers/{name}", {})


def mcp(server: Naftiko, session_id: str | None, method: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One handshake-era JSON-RPC request: (HTTP status, decoded reply or None)."""
    headers = {"Accept": "application/json, text/event-stream"}
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    status, _, body = http("POST", server.mcp_port, "/mcp", message, headers)
    return status, json.loads(body) if body else None


def initialize(server: Naftiko) -> str:
    params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "fleet-test", "version": "1"}}
    message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    status, headers, body = http(
        "POST", server.mcp_port, "/mcp", message, {"Accept": "application/json, text/event-stream"}
    )
    assert status == 200 and json.loads(body)["result"]["protocolVersion"] == HANDSHAKE, body
    return headers["Mcp-Session-Id"]


def identify(server: Naftiko, session_id: str) -> dict[str, Any]:
    status, reply = mcp(
        server, session_id, "tools/call", {"name": "identify-customer", "arguments": {"identifier": "c1"}}
    )
    assert status == 200 and "result" in reply, reply
    return reply["result"]


def test_a_redis_url_that_is_not_one_is_exit_2_naming_the_flag_and_never_the_password() -> None:
    code, stderr = run_to_exit("--redis", "http://admin:hunter2@cache:6379")
    assert code == 2 and "--redis" in stderr and "hunter2" not in stderr, stderr
    code, stderr = run_to_exit(env={"NAFTIKO_REDIS_URL": "cache:6379"})  # the variable, checked as the flag
    assert code == 2 and "--redis" in stderr and "Traceback" not in stderr, stderr


# -- one rate limit for every process -------------------------------------------------------------


def test_three_processes_at_20_per_second_send_about_100_calls_in_5_s_together(redis: RedisServer) -> None:
    """6 clients hammer 3 replicas sharing `--rate-limit track-customers=20` for 5 s: the
    upstream gets at most one bucket (20) plus 20/s — not three times that — and every call over
    the limit is answered 429 problem+json with a Retry-After in whole seconds, never sent."""
    with (
        Upstream() as upstream,
        replicas(3, "--redis", redis.url, "--rate-limit", f"{NS}=20", upstream=upstream) as servers,
    ):
        statuses: Counter[int] = Counter()
        refusals: list[tuple[dict[str, str], bytes]] = []
        lock = threading.Lock()
        started = time.monotonic()
        until = started + 5

        def client(server: Naftiko) -> None:
            while time.monotonic() < until:
                status, headers, body = put_customer(server)
                with lock:
                    statuses[status] += 1
                    if status == 429 and len(refusals) < 5:
                        refusals.append((headers, body))

        threads = [threading.Thread(target=client, args=(s,)) for s in servers for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started
        sent = len(upstream.requests)
    print(f"shared limit 20/s, 3 replicas, {elapsed:.1f} s: {sent} calls sent upstream, answers {dict(statuses)}")
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] == sent, (statuses, sent)
    allowed = 20 + 20 * elapsed  # one full bucket, then 20 per second, for all three together
    assert sent <= allowed + 5, f"{sent} calls reached the upstream in {elapsed:.1f} s (limit {allowed:.0f})"
    assert sent >= 50, f"only {sent} calls got through: the shared bucket refused calls it had tokens for"
    assert statuses[429] > 0 and refusals
    for headers, body in refusals:
        assert headers["Content-Type"].startswith("application/problem+json"), headers
        assert int(headers["Retry-After"]) >= 1, headers
        problem = json.loads(body)
        assert problem["status"] == 429 and "rate limit of 20" in problem["detail"], problem


def test_a_call_over_the_shared_limit_is_429_on_rest_and_is_error_on_mcp_on_another_replica(
    redis: RedisServer,
) -> None:
    """One token per 5 s shared by two replicas: A's call spends it, so B refuses both its REST
    call (429) and its MCP tool call (isError saying so); the upstream got A's call only."""
    with (
        Upstream() as upstream,
        replicas(2, "--redis", redis.url, "--rate-limit", f"{NS}=0.2", upstream=upstream) as (
            a,
            b,
        ),
    ):
        session = initialize(b)
        assert put_customer(a)[0] == 200
        status, headers, body = put_customer(b)
        result = identify(b, session)
        sent = len(upstream.requests)
    assert status == 429 and "Retry-After" in headers, (status, body)
    assert result["isError"] is True
    refusal = json.loads(result["content"][0]["text"])
    assert refusal["error"] == "rate_limited" and "rate limit" in refusal["message"], refusal
    assert sent == 1


# -- MCP sessions on every replica ----------------------------------------------------------------


def test_a_session_initialized_on_one_replica_works_on_the_others_and_ends_on_all(redis: RedisServer) -> None:
    with replicas(3, "--redis", redis.url) as (a, b, c):
        session = initialize(a)
        for server in (b, c, a):
            status, reply = mcp(server, session, "tools/list")
            assert status == 200 and reply["result"]["tools"], reply
        altered = session[:-1] + ("A" if session[-1] != "A" else "B")
        for forged in (altered, "forged-session-id", "x" * 32):
            for server in (a, b, c):
                status, reply = mcp(server, forged, "tools/list")
                assert status == 404, (forged, status, reply)
        assert http("DELETE", a.mcp_port, "/mcp", headers={"Mcp-Session-Id": session})[0] == 204
        for server in (b, c, a):
            status, reply = mcp(server, session, "tools/list")
            assert status == 404, (status, reply)
        assert http("DELETE", c.mcp_port, "/mcp", headers={"Mcp-Session-Id": session})[0] == 404


def test_a_log_level_set_on_one_replica_applies_to_the_sessions_calls_on_another(redis: RedisServer) -> None:
    """The session's portable fields (version, client info and capabilities, log level) travel
    with it: `logging/setLevel` on A, and B's tool call streams log notifications to the client."""
    with replicas(2, "--redis", redis.url) as (a, b):
        session = initialize(a)
        assert mcp(a, session, "logging/setLevel", {"level": "info"})[0] == 200
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "identify-customer", "arguments": {"identifier": "c1"}},
        }
        headers = {"Accept": "application/json, text/event-stream", "Mcp-Session-Id": session}
        status, answer_headers, body = http("POST", b.mcp_port, "/mcp", call, headers)
    assert status == 200 and answer_headers["Content-Type"].startswith("text/event-stream"), (status, body)
    messages = [json.loads(line[len("data: ") :]) for line in body.decode().splitlines() if line.startswith("data: ")]
    assert any(m.get("method") == "notifications/message" for m in messages), messages
    assert messages[-1]["id"] == 7 and "result" in messages[-1], messages


# -- Redis goes away, then comes back ------------------------------------------------------------


def warnings(server: Naftiko) -> int:
    return sum("Redis at" in line and "unavailable" in line for line in server.stderr().splitlines())


def test_when_redis_dies_calls_go_on_with_one_warning_and_share_again_when_it_returns(redis: RedisServer) -> None:
    with (
        Upstream() as upstream,
        replicas(2, "--redis", redis.url, "--rate-limit", f"{NS}=50", upstream=upstream) as (
            a,
            b,
        ),
    ):
        session = initialize(a)
        assert mcp(b, session, "tools/list")[0] == 200
        redis.kill()
        for _ in range(10):  # each answered, none hanging: the per-process bucket (50/s) decides
            assert put_customer(a)[0] in (200, 429)
            assert identify(a, session)["isError"] in (False, True)
        assert put_customer(b)[0] == 200
        assert warnings(a) == 1 and warnings(b) == 1, a.stderr()[-3000:]
        fresh = initialize(b)  # a new session while Redis is away lives on its replica
        assert mcp(b, fresh, "tools/list")[0] == 200

        redis.start()  # empty: nothing was saved
        deadline = time.monotonic() + 15
        while "is back" not in a.stderr() or "is back" not in b.stderr():
            assert time.monotonic() < deadline, a.stderr()[-3000:]
            put_customer(a)
            put_customer(b)
            time.sleep(0.2)
        # The replicas wrote back the sessions they knew; both now work on the other replica.
        assert mcp(a, session, "tools/list")[0] == 200
        assert mcp(b, fresh, "tools/list")[0] == 200
        assert mcp(b, session, "tools/list")[0] == 200
        assert mcp(a, fresh, "tools/list")[0] == 200
        assert f"naftiko:rate:{NS}" in redis.keys("naftiko:rate:*")
        assert warnings(a) == 1 and warnings(b) == 1


# -- the buckets themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.5, 5.0])
async def test_the_shared_bucket_admits_and_refuses_as_the_local_one_does(redis: RedisServer, rate: float) -> None:
    """Same behaviour alone or shared: a burst of one second's worth (at least one call), then a
    refusal saying how long until the next token."""
    link = RedisLink(redis.url)
    try:
        buckets = {"local": LocalBucket(rate), "shared": SharedBucket(link, f"parity-{rate}", rate)}
        for name, bucket in buckets.items():
            waits = [await bucket.acquire() for _ in range(int(max(rate, 1)) + 1)]
            assert waits[:-1] == [0.0] * (len(waits) - 1), (name, waits)
            assert 0 < waits[-1] <= 1 / rate, (name, waits)
    finally:
        await link.close()


async def test_calls_arriving_together_share_round_trips_and_never_more_than_the_bucket(redis: RedisServer) -> None:
    """60 calls at once, two buckets in front of one Redis key (two processes' worth): the
    batches they form still admit one bucket of 20 between them."""
    links = [RedisLink(redis.url), RedisLink(redis.url)]
    try:
        buckets = [SharedBucket(link, "together", 20) for link in links]
        waits = await asyncio.gather(*(buckets[i % 2].acquire() for i in range(60)))
    finally:
        for link in links:
            await link.close()
    admitted = [w for w in waits if w == 0.0]
    assert 20 <= len(admitted) <= 21, waits  # 21: a token refilled while the 60 were being taken
    assert all(0 < w <= 1 / 20 for w in waits if w), waits


async def test_a_redis_that_accepts_but_never_answers_does_not_hold_a_call() -> None:
    """A silent peer (a partition, a stopped process): the bounded timeouts hand the call to the
    per-process bucket instead of waiting on Redis."""
    silent = socket.create_server(("127.0.0.1", 0))
    link = RedisLink(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    try:
        bucket = SharedBucket(link, "silent", 10)
        assert await asyncio.wait_for(bucket.acquire(), 10) == 0.0  # answered by the fallback
        assert await asyncio.wait_for(bucket.acquire(), 10) == 0.0  # at once: Redis left alone a while
    finally:
        await link.close()
        silent.close()

"""Failover behind a real nginx: three `naftiko run --redis` replicas of the seed, round-robin,
one killed with SIGKILL mid-run (README "Fleet").

One client alternates REST calls (PUT, idempotent) and MCP `tools/call`s of `suppress-customer`
(a POST upstream, not idempotent) in one handshake-era session, every call through nginx, so the
session hops between replicas all along. nginx passes a request to the next replica when
connecting fails, and an idempotent one also when the replica dies under it
(`proxy_next_upstream error timeout`, nginx's default `non_idempotent` off): a POST that reached
the killed replica is never sent twice, so it may fail and is counted as failed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from processes import started, wait_http
from redis_server import RedisServer, redis_binary
from support import REPO, free_port

NGINX = "/usr/sbin/nginx"
CALLS = 800  # 400 REST + 400 MCP
CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
ACCEPT = {"Accept": "application/json, text/event-stream"}

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream rest {{ {rest} }}
    upstream mcp {{ {mcp} }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_connect_timeout 2s;
    proxy_read_timeout 30s;
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 3;
    server {{ listen 127.0.0.1:{rest_port}; location / {{ proxy_pass http://rest; }} }}
    server {{ listen 127.0.0.1:{mcp_port}; location / {{ proxy_pass http://mcp; }} }}
}}
"""


@contextmanager
def nginx(rest_ports: list[int], mcp_ports: list[int]) -> Iterator[tuple[int, int]]:
    """nginx with its own prefix and configuration in a temporary folder, as whoever runs the tests."""
    if not Path(NGINX).exists():
        pytest.skip(f"{NGINX} is not installed (apt-get install nginx; .ci/run does)")
    rest_port, mcp_port = free_port(), free_port()

    def servers(ports: list[int]) -> str:
        return " ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in ports)

    with tempfile.TemporaryDirectory(prefix="naftiko-nginx-") as folder:
        Path(folder).chmod(0o755)
        conf = Path(folder) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=folder, rest=servers(rest_ports), mcp=servers(mcp_ports), rest_port=rest_port, mcp_port=mcp_port
            )
        )
        with started([NGINX, "-p", folder, "-c", str(conf)], f"http://127.0.0.1:{rest_port}/health"):
            yield rest_port, mcp_port


def exchange(method: str, url: str, message: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body); status 0 when no answer came at all."""
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method=method)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
            return answer.status, dict(answer.headers), json.loads(body) if body else None
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), None
    except OSError:
        return 0, {}, None


def stats(upstream_port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{upstream_port}/__bench/stats", timeout=10) as answer:
        return json.loads(answer.read())


def test_killing_one_of_three_replicas_behind_nginx_keeps_995_per_mille_of_calls_and_the_session() -> None:
    binary = redis_binary()
    upstream_port = free_port()
    rest_ports, mcp_ports = [free_port() for _ in range(3)], [free_port() for _ in range(3)]
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(binary))
        stack.enter_context(
            started(
                [sys.executable, str(REPO / "bench" / "fake_upstream.py"), str(upstream_port)],
                f"http://127.0.0.1:{upstream_port}/__bench/stats",
            )
        )
        replicas = [
            stack.enter_context(
                started(
                    [
                        sys.executable,
                        "-m",
                        "naftiko.cli",
                        "run",
                        "--redis",
                        redis.url,
                        "--upstream",
                        f"track-customers=http://127.0.0.1:{upstream_port}/api/v1",
                        "--port",
                        f"track-customers-rest={rest}",
                        "--port",
                        f"track-customers-mcp={mcp}",
                    ],  # fmt: skip
                    f"http://127.0.0.1:{rest}/health",
                    env=CREDENTIALS,
                )
            )
            for rest, mcp in zip(rest_ports, mcp_ports, strict=True)
        ]
        for port in mcp_ports:
            wait_http(f"http://127.0.0.1:{port}/health", replicas[0])
        rest_port, mcp_port = stack.enter_context(nginx(rest_ports, mcp_ports))
        rest_url, mcp_url = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{mcp_port}/mcp"

        initialize = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        status, headers, reply = exchange("POST", mcp_url, initialize, ACCEPT)
        assert status == 200 and "result" in reply, (status, reply)
        session = {**ACCEPT, "Mcp-Session-Id": headers["Mcp-Session-Id"]}
        assert exchange("POST", mcp_url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)[0] == 202

        outcomes: dict[str, list[bool]] = {"rest": [], "mcp": []}
        halfway = threading.Event()

        def client() -> None:
            for i in range(CALLS // 2):
                if i == CALLS // 4:
                    halfway.set()
                outcomes["rest"].append(exchange("PUT", f"{rest_url}/v1/customers/c{i}", {}, {})[0] == 200)
                call = {
                    "jsonrpc": "2.0",
                    "id": i + 1,
                    "method": "tools/call",
                    "params": {"name": "suppress-customer", "arguments": {"identifier": f"c{i}"}},
                }
                status, _, reply = exchange("POST", mcp_url, call, session)
                outcomes["mcp"].append(status == 200 and reply["result"]["isError"] is False)

        calling = threading.Thread(target=client)
        calling.start()
        assert halfway.wait(120), "the client never got halfway"
        replicas[1].kill()  # SIGKILL: no drain, connections cut
        calling.join(300)
        assert not calling.is_alive()
        after_kill = [
            exchange("POST", mcp_url, {"jsonrpc": "2.0", "id": "x", "method": "tools/list"}, session) for _ in range(6)
        ]
        seen = stats(upstream_port)

    rest_ok, mcp_ok = sum(outcomes["rest"]), sum(outcomes["mcp"])
    total = len(outcomes["rest"]) + len(outcomes["mcp"])
    print(f"failover: {rest_ok + mcp_ok}/{total} calls succeeded (REST {rest_ok}, MCP {mcp_ok}); upstream saw {seen}")
    assert total == CALLS
    assert rest_ok + mcp_ok >= 0.995 * CALLS, outcomes
    # The session lives on: every replica still standing answers it (nginx alternates between them).
    assert all(status == 200 and "result" in reply for status, _, reply in after_kill), after_kill
    # Each suppress-customer POST reached the upstream at most once, and every success did.
    assert mcp_ok <= seen.get("POST", 0) <= CALLS // 2, seen
    assert seen.get("PUT", 0) >= rest_ok, seen

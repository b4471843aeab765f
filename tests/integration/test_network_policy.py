"""Who may call, from where, and how: Origin (CSRF) and CORS, Host (DNS rebinding), server TLS,
X-Forwarded-* from trusted proxies and --public-url, against a real `naftiko run` (DESIGN §7,
network safety). The Origin tests run without --dry-run against a recording upstream, so a
refused request is seen never to reach it."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from run_process import (
    CREDENTIALS,
    MCP_HEADERS,
    MCP_INIT,
    Answer,
    Naftiko,
    Upstream,
    closed_within,
    connect,
    exchange,
    head,
    read_answer,
    run_to_exit,
)
from support import free_port, self_signed

APP = "https://app.example.com"
FOREIGN = ["https://evil.example", "null", "http://127.0.0.1.evil.example", "http://127.0.0.1:1"]
UNSAFE = [
    ("PUT", "/v1/customers/c1"),
    ("POST", "/v1/customers/c1/suppress"),
    ("DELETE", "/v1/customers/c1"),
    ("PATCH", "/v1/customers/c1"),
]
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as recording:
        yield recording


@pytest.fixture(scope="module")
def server(upstream: Upstream) -> Iterator[Naftiko]:
    """Credentials set, the upstream overridden to the recording one, one extra allowed origin."""
    with Naftiko(
        "--allow-origin", APP, "--upstream", f"track-customers={upstream.base}", dry_run=False, env=CREDENTIALS
    ) as running:
        yield running


def problem(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/problem+json"), answer
    assert answer.json()["status"] == status


def no_cors(answer: Answer) -> None:
    assert not any(name.startswith("access-control-") for name in answer.headers), answer.headers


# -- 3. Origin on REST (CSRF) and CORS ---------------------------------------------------------


@pytest.mark.parametrize("origin", FOREIGN)
@pytest.mark.parametrize(("method", "path"), UNSAFE)
def test_an_unsafe_request_from_a_foreign_origin_is_refused_403_and_never_reaches_the_upstream(
    server: Naftiko, upstream: Upstream, method: str, path: str, origin: str
) -> None:
    """Bound: POST/PUT/PATCH/DELETE with an Origin that is neither the request's own (scheme, host
    and port of its Host) nor an --allow-origin one — `null` and another loopback port included —
    get 403 problem+json, no CORS header, and no upstream call."""
    before = len(upstream.requests)
    answer = exchange(server.rest_port, method, path, {**JSON, "Origin": origin}, b"{}")
    problem(answer, 403)
    no_cors(answer)
    time.sleep(0.05)
    assert len(upstream.requests) == before, upstream.requests[before:]


@pytest.mark.parametrize("origin", [None, "own", APP])
def test_an_unsafe_request_without_origin_from_its_own_origin_or_an_allowed_one_reaches_the_upstream(
    server: Naftiko, upstream: Upstream, origin: str | None
) -> None:
    """Bound: no Origin, `Origin: http://127.0.0.1:PORT` (the Host's own) and an --allow-origin
    origin are served; only the allowed cross origin gets `Access-Control-Allow-Origin` (its own)."""
    headers = dict(JSON)
    if origin is not None:
        headers["Origin"] = f"http://127.0.0.1:{server.rest_port}" if origin == "own" else origin
    before = len(upstream.requests)
    answer = exchange(server.rest_port, "PUT", "/v1/customers/c1", headers, b'{"email":"a@b.c"}')
    assert answer.status == 200, answer
    assert len(upstream.requests) == before + 1
    if origin == APP:
        assert answer.headers.get("access-control-allow-origin") == APP, answer.headers
    elif origin is None:
        no_cors(answer)


def test_a_preflight_from_an_allowed_origin_is_answered_204_with_the_cors_headers(
    server: Naftiko, upstream: Upstream
) -> None:
    """Bound: `OPTIONS` with an --allow-origin Origin and Access-Control-Request-Method is answered
    204 with Allow-Origin (that origin), Allow-Methods (including the asked one) and Allow-Headers,
    and calls nothing upstream."""
    before = len(upstream.requests)
    answer = exchange(
        server.rest_port, "OPTIONS", "/v1/customers/c1",
        {"Origin": APP, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"},
    )  # fmt: skip
    assert answer.status == 204, answer
    assert answer.headers.get("access-control-allow-origin") == APP, answer.headers
    assert "PUT" in answer.headers.get("access-control-allow-methods", "").upper(), answer.headers
    assert "content-type" in answer.headers.get("access-control-allow-headers", "").lower(), answer.headers
    assert len(upstream.requests) == before


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_preflight_from_a_foreign_origin_gets_no_cors_headers(server: Naftiko, origin: str) -> None:
    """Bound: a disallowed origin never gets Access-Control-* headers, even on a preflight."""
    answer = exchange(
        server.rest_port, "OPTIONS", "/v1/customers/c1", {"Origin": origin, "Access-Control-Request-Method": "PUT"}
    )
    assert answer.status != 204 or not answer.headers.get("access-control-allow-origin"), answer
    no_cors(answer)


@pytest.mark.parametrize("path", ["/health", "/openapi.json"])
def test_a_get_from_a_foreign_origin_is_answered_without_cors_headers(server: Naftiko, path: str) -> None:
    """Bound: safe methods are answered whatever the Origin, but a foreign one gets no CORS header
    (the browser then hides the answer from the page)."""
    answer = exchange(server.rest_port, "GET", path, {"Origin": "https://evil.example"})
    assert answer.status == 200, answer
    no_cors(answer)


@pytest.mark.parametrize(
    ("origin", "status"), [(APP, 200), ("http://localhost:6274", 200), ("https://evil.example", 403), ("null", 403)]
)
def test_allow_origin_also_opens_the_mcp_endpoint_and_other_origins_stay_refused(
    server: Naftiko, origin: str, status: int
) -> None:
    """Bound: --allow-origin adds to the MCP endpoint's allowed origins (loopback ones stay allowed);
    any other Origin is 403 there."""
    answer = exchange(server.mcp_port, "POST", "/mcp", {**MCP_HEADERS, "Origin": origin}, MCP_INIT)
    assert answer.status == status, answer


# -- 4. Host (DNS rebinding) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "localhost.evil.example", "10.0.0.1:{port}"],
)
def test_a_foreign_host_on_a_loopback_server_is_refused_421_on_rest_and_mcp(
    server: Naftiko, upstream: Upstream, host: str
) -> None:
    """Bound: bound to 127.0.0.1, a Host that is not localhost / 127.0.0.1 / [::1] gets 421
    problem+json on the REST port (GET and PUT, the PUT never reaching the upstream) and on /mcp."""
    before = len(upstream.requests)
    rest, mcp = host.format(port=server.rest_port), host.format(port=server.mcp_port)
    problem(exchange(server.rest_port, "GET", "/health", host=rest), 421)
    problem(exchange(server.rest_port, "PUT", "/v1/customers/c1", JSON, b"{}", host=rest), 421)
    problem(exchange(server.mcp_port, "POST", "/mcp", MCP_HEADERS, MCP_INIT, host=mcp), 421)
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:{port}", "localhost", "localhost:1", "LocalHost:{port}", "[::1]:{port}", "[::1]"]
)
def test_a_loopback_host_on_any_port_is_served_on_rest_and_mcp(server: Naftiko, host: str) -> None:
    """Bound: the loopback names (any port, any letter case) pass the Host check on both ports."""
    assert exchange(server.rest_port, "GET", "/health", host=host.format(port=server.rest_port)).status == 200
    assert (
        exchange(server.mcp_port, "POST", "/mcp", MCP_HEADERS, MCP_INIT, host=host.format(port=server.mcp_port)).status
        == 200
    )


@pytest.mark.parametrize(
    "hosts", [[], ["127.0.0.1", "127.0.0.1"], ["127.0.0.1", "localhost"]], ids=["missing", "twice", "two"]
)
def test_an_http_1_1_request_without_exactly_one_host_is_400(server: Naftiko, hosts: list[str]) -> None:
    """Bound: an HTTP/1.1 request with no Host, or with two Host headers, is 400 (RFC 9112 §3.2)."""
    for port in (server.rest_port, server.mcp_port):
        raw = "GET /health HTTP/1.1\r\n" + "".join(f"Host: {h}\r\n" for h in hosts) + "\r\n"
        answer = exchange(port, "GET", "/health", raw=raw.encode())
        assert answer.status == 400, (port, answer)


def test_an_http_1_0_request_without_host_is_still_served(server: Naftiko) -> None:
    """Bound: Host is required of HTTP/1.1 only; an HTTP/1.0 request without one is answered."""
    assert exchange(server.rest_port, "GET", "/health", raw=b"GET /health HTTP/1.0\r\n\r\n").status == 200


# -- 6. server TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for IP 127.0.0.1 and its key, as two PEM files."""
    return self_signed(tmp_path_factory.mktemp("tls"))


def test_with_a_certificate_every_rest_and_mcp_port_speaks_https_and_only_https(certificate: tuple[Path, Path]) -> None:
    """Bound: --ssl-certfile/--ssl-keyfile: REST and MCP answer over TLS verified against that
    certificate; plain HTTP to the same ports gets no HTTP answer."""
    certfile, keyfile = certificate
    trust = ssl.create_default_context(cafile=str(certfile))
    with Naftiko("--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)) as server:
        with connect(server.rest_port, tls=trust) as sock:
            sock.sendall(head("GET", "/health", server.rest_port))
            assert read_answer(sock).status == 200
        with connect(server.rest_port, tls=trust) as sock:
            sock.sendall(head("PUT", "/v1/customers/c1", server.rest_port, JSON, b"{}"))
            answer = read_answer(sock)
            assert answer.status == 200 and answer.json()["dryRun"] is True, answer
        with connect(server.mcp_port, tls=trust) as sock:
            sock.sendall(head("POST", "/mcp", server.mcp_port, MCP_HEADERS, MCP_INIT))
            assert read_answer(sock).status == 200
        for port in (server.rest_port, server.mcp_port):
            with connect(port) as sock:
                sock.sendall(head("GET", "/health", port))
                _, received = closed_within(sock, 3.0)
            assert not received.startswith(b"HTTP/1.1 200"), received[:200]


def test_a_missing_certificate_file_is_exit_2_naming_the_flag(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    """Bound: --ssl-certfile naming no file stops `naftiko run` before serving, exit 2, naming the flag."""
    ports = ("--port", f"track-customers-rest={free_port()}", "--port", f"track-customers-mcp={free_port()}")
    code, err = run_to_exit(
        "--dry-run",
        *ports,
        "--ssl-certfile",
        str(tmp_path / "missing.pem"),
        "--ssl-keyfile",
        str(certificate[1]),
        timeout=15,
    )
    assert code == 2, err
    assert "--ssl-certfile" in err and "unrecognized arguments" not in err and "Traceback" not in err, err


# -- 8. X-Forwarded-* from trusted proxies, --public-url ---------------------------------------


@pytest.fixture(scope="module")
def proxied() -> Iterator[Naftiko]:
    with Naftiko("--forwarded-allow-ips", "127.0.0.1") as running:
        yield running


def logged_client(server: Naftiko, answer: Answer) -> str:
    request_id = answer.headers["x-request-id"]
    return server.wait_log(lambda entry: entry.get("requestId") == request_id)["client"]


def test_behind_a_trusted_proxy_the_access_log_names_the_forwarded_client(proxied: Naftiko) -> None:
    """Bound: with --forwarded-allow-ips 127.0.0.1, a request from 127.0.0.1 carrying
    X-Forwarded-For is logged with that address as its client."""
    answer = exchange(
        proxied.rest_port, "GET", "/health", {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    assert answer.status == 200, answer
    assert logged_client(proxied, answer) == "203.0.113.7"


def test_without_forwarded_allow_ips_the_access_log_names_the_peer_whatever_x_forwarded_for_says(
    server: Naftiko,
) -> None:
    """Bound: without --forwarded-allow-ips, X-Forwarded-For is ignored: the client is the peer."""
    answer = exchange(
        server.rest_port, "GET", "/health", {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    assert answer.status == 200, answer
    assert logged_client(server, answer) == "127.0.0.1"


def test_public_url_is_the_first_server_of_the_openapi_document() -> None:
    """Bound: --public-url NS=URL makes /openapi.json's servers[0].url exactly that URL."""
    with Naftiko("--public-url", "track-customers-rest=https://api.example.com/base") as server:
        answer = exchange(server.rest_port, "GET", "/openapi.json")
    assert answer.status == 200, answer
    assert json.loads(answer.body)["servers"][0]["url"] == "https://api.example.com/base"

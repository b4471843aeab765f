"""Security properties of the served capability, against a recording fake upstream.

- path/host injection through every input location (path, query, header, cookie, body) never
  changes the upstream host or path; CR/LF in a value bound for a header is refused;
- caller input is data, never a template: `{{env.CUSTOMER_IO_PASS}}` and `<<env.X>>` reach the
  upstream literally, never rendered into the secret;
- exposure authentication (bearer) guards every REST route and the MCP endpoint; `/health` and
  `/metrics` stay open for probes, `/openapi.json` stays open and holds no secret;
- MCP refuses foreign origins; bodies over the limit get 413, a 100k-deep JSON body 400;
- secrets never appear in answers, logs or stderr across representative flows.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from test_fuzz_inputs import CREDENTIALS, McpClient, Stack, assert_upstream_shape, raw_request

from naftiko.http import ServerLimits
from support import SEED

MAX_REQUEST_BYTES = ServerLimits().max_body_bytes

USER, PASS = CREDENTIALS["CUSTOMER_IO_USER"], CREDENTIALS["CUSTOMER_IO_PASS"]
TOKEN = "gateway-token-SECRET-789"
SECRETS = [USER, PASS, TOKEN, base64.b64encode(f"{USER}:{PASS}".encode()).decode()]
ENVIRON = {**CREDENTIALS, "GATEWAY_TOKEN": TOKEN, "X": "x-secret-value-321"}
SECRETS.append(ENVIRON["X"])

PROBE = """\
naftiko: 1.0.0-alpha2
info:
  label: Injection probe
  description: Every input location wired into a path parameter, a header, a query parameter and a body.
capability:
  consumes:
  - type: http
    namespace: track-customers
    baseUri: https://track.customer.io/api/v1
    authentication:
      type: basic
      username: '{{env.CUSTOMER_IO_USER}}'
      password: '{{env.CUSTOMER_IO_PASS}}'
    resources:
    - name: suppress
      path: /customers/{identifier}/suppress
      operations:
      - name: suppress
        method: POST
        inputParameters:
        - {name: X-Note, in: header, type: string, required: false}
        - {name: note, in: query, type: string, required: false}
        - {name: body, in: body, type: object, required: false}
  exposes:
  - type: rest
    namespace: probe-rest
    port: 8080
    resources:
    - path: /by-path/{identifier}
      name: by-path
      operations:
      - method: POST
        name: by-path
        call: track-customers.suppress
        inputParameters:
        - {name: identifier, in: path, type: string, required: true}
        - {name: note, in: query, type: string, required: false}
        - {name: body, in: body, type: object, required: false}
        with: {identifier: rest.identifier, X-Note: rest.note, note: rest.note, body: rest.body}
    - path: /by-query
      name: by-query
      operations:
      - method: POST
        name: by-query
        call: track-customers.suppress
        inputParameters:
        - {name: identifier, in: query, type: string, required: true}
        with: {identifier: rest.identifier, note: rest.identifier}
    - path: /by-header
      name: by-header
      operations:
      - method: POST
        name: by-header
        call: track-customers.suppress
        inputParameters:
        - {name: X-Identifier, in: header, type: string, required: true}
        with: {identifier: rest.X-Identifier, X-Note: rest.X-Identifier}
    - path: /by-cookie
      name: by-cookie
      operations:
      - method: POST
        name: by-cookie
        call: track-customers.suppress
        inputParameters:
        - {name: identifier, in: cookie, type: string, required: true}
        with: {identifier: rest.identifier, X-Note: rest.identifier}
    - path: /by-body
      name: by-body
      operations:
      - method: POST
        name: by-body
        call: track-customers.suppress
        inputParameters:
        - {name: identifier, in: body, type: string, required: true}
        with: {identifier: rest.identifier, X-Note: rest.identifier, note: rest.identifier}
"""

PROTECTED = (
    SEED.read_text(encoding="utf-8")
    .replace(
        "    port: 8080\n",
        "    port: 8080\n    authentication:\n      type: bearer\n      token: '{{env.GATEWAY_TOKEN}}'\n",
    )
    .replace(
        "    port: 9090\n",
        "    port: 9090\n    authentication:\n      type: bearer\n      token: '{{env.GATEWAY_TOKEN}}'\n",
    )
)
assert PROTECTED.count("GATEWAY_TOKEN") == 2


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = tmp_path_factory.mktemp("probe") / "probe.yaml"
    path.write_text(PROBE, encoding="utf-8")
    with Stack(path, ENVIRON) as running:
        yield running


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = tmp_path_factory.mktemp("protected") / "protected.yaml"
    path.write_text(PROTECTED, encoding="utf-8")
    with Stack(path, ENVIRON) as running:
        yield running


HOSTILE = [
    "../../admin",
    "..",
    ".",
    "a/b",
    "a?x=1",
    "a#frag",
    "%2e%2e",
    "%2F..%2F",
    "@evil.example",
    "//evil.example/x",
    "http://evil.example/",
    "a\\..\\b",
    "évil😀",
    "{{env.CUSTOMER_IO_PASS}}",
    "<<env.X>>",
]


def send(stack: Stack, location: str, value: str) -> tuple[int, dict[str, str], bytes]:
    port = stack.ports["rest"]
    if location == "path":
        return raw_request(port, "POST", f"/by-path/{quote(value, safe='')}")
    if location == "query":
        return raw_request(port, "POST", f"/by-query?identifier={quote(value, safe='')}")
    if location == "header":
        return raw_request(port, "POST", "/by-header", [("X-Identifier", value)])
    if location == "cookie":
        return raw_request(port, "POST", "/by-cookie", [("Cookie", f"identifier={quote(value, safe='')}")])
    body = json.dumps({"identifier": value}).encode()
    return raw_request(port, "POST", "/by-body", [("Content-Type", "application/json")], body)


LOCATIONS = ["path", "query", "header", "cookie", "body"]


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("value", HOSTILE)
def test_no_input_location_changes_the_upstream_host_or_path(probe: Stack, location: str, value: str) -> None:
    if location in ("header",) and not value.isascii():
        value = value.encode("utf-8").decode("latin-1")  # what a header can carry
    probe.reset()
    status, _, body = send(probe, location, value)
    assert status < 500, body
    assert_upstream_shape(probe)
    for recorded in probe.fake.requests:
        assert recorded.path.endswith("/suppress")
        segment = recorded.path.removeprefix("/api/v1/customers/").removesuffix("/suppress")
        assert "/" not in segment and unquote(segment) not in ("", ".", "..")
    # a cookie carries the value percent-encoded, as sent: the runtime keeps that text
    expected = quote(value, safe="") if location == "cookie" else value
    if expected in (".", ".."):
        assert status == 400 and not probe.fake.requests
    if status == 200:
        [recorded] = probe.fake.requests
        assert unquote(recorded.path.removeprefix("/api/v1/customers/").removesuffix("/suppress")) == expected


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize(
    "template",
    [
        "{{env.CUSTOMER_IO_PASS}}",
        "<<env.X>>",
        "{{CUSTOMER_IO_PASS}}",
        "{{track-customers.CUSTOMER_IO_USER}}",
        "{{identifier}}",
    ],
)
def test_caller_input_is_never_rendered(probe: Stack, location: str, template: str) -> None:
    probe.reset()
    status, _, answer = send(probe, location, template)
    assert status == 200, answer
    [recorded] = probe.fake.requests
    for secret in (PASS, USER, ENVIRON["X"]):
        seen = (
            recorded.path
            + json.dumps(recorded.query)
            + recorded.body.decode()
            + json.dumps({k: v for k, v in recorded.headers.items() if k != "Authorization"})
        )
        assert secret not in seen
        assert secret not in answer.decode()
    if location != "cookie":
        assert unquote(recorded.path.removeprefix("/api/v1/customers/").removesuffix("/suppress")) == template
    if location in ("header", "cookie", "body"):
        assert recorded.headers.get("X-Note") in (template, quote(template, safe=""))
    if location in ("query", "body"):
        assert dict(recorded.query).get("note") == template


def test_caller_input_in_a_json_body_is_not_rendered(probe: Stack) -> None:
    probe.reset()
    body = {"a": "{{env.CUSTOMER_IO_PASS}}", "b": ["<<env.X>>"], "{{env.CUSTOMER_IO_USER}}": '"},"x":"'}
    # `{name: body, in: body}` receives the whole request body
    status, _, _ = raw_request(
        probe.ports["rest"],
        "POST",
        "/by-path/c1?note=%7B%7Benv.CUSTOMER_IO_PASS%7D%7D",
        [("Content-Type", "application/json")],
        json.dumps(body).encode(),
    )
    assert status == 200
    [recorded] = probe.fake.requests
    assert recorded.json() == body
    assert recorded.headers["X-Note"] == "{{env.CUSTOMER_IO_PASS}}"
    assert PASS not in recorded.body.decode()


@pytest.mark.parametrize("location", ["path", "query", "header", "cookie", "body"])
@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rb", "a\x00b"])
def test_cr_lf_never_reaches_a_header(probe: Stack, location: str, value: str) -> None:
    probe.reset()
    if location == "header":
        # written raw: CRLF just ends the header line (two headers arrive: X-Identifier `a` and X-Evil,
        # which is not an input); a bare CR or LF or a NUL inside a value is refused by the HTTP parser
        status, _, _ = raw_request(probe.ports["rest"], "POST", "/by-header", [("X-Identifier", value)])
    else:
        status, _, _ = send(probe, location, value)
    for recorded in probe.fake.requests:
        assert "X-Evil" not in recorded.headers and all(
            "\r" not in v and "\n" not in v for v in recorded.headers.values()
        )
    if location == "header" and "\r\n" in value:
        assert status == 200 and [r.headers["X-Note"] for r in probe.fake.requests] == ["a"]
    elif location == "cookie":
        # a cookie value is percent-encoded text: it arrives as is and is carried encoded
        assert status in (200, 400)
    else:
        assert (
            status in (400, 404) and not probe.fake.requests
        )  # 404: the router refuses a control character in a segment


def test_header_injection_via_query_is_refused(probe: Stack) -> None:
    probe.reset()
    status, headers, body = raw_request(probe.ports["rest"], "POST", "/by-path/c1?note=a%0D%0AX-Evil%3A%201")
    assert status == 400 and headers["content-type"].startswith("application/problem+json")
    assert not probe.fake.requests


# -- exposure authentication ----------------------------------------------------------------------

ROUTES = [
    ("PUT", "/v1/customers/c1"),
    ("DELETE", "/v1/customers/c1"),
    ("POST", "/v1/customers/c1/suppress"),
    ("POST", "/v1/customers/c1/unsuppress"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", f"Bearer {TOKEN[:-1]}"],
)
def test_bearer_guards_every_rest_route(protected: Stack, method: str, path: str, authorization: str | None) -> None:
    protected.reset()
    headers = [("Authorization", authorization)] if authorization is not None else []
    status, answer_headers, body = raw_request(protected.ports["rest"], method, path, headers)
    assert status == 401, body
    assert answer_headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in body.decode()
    assert not protected.fake.requests


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_bearer_admits_the_right_token(protected: Stack, method: str, path: str) -> None:
    protected.reset()
    status, _, _ = raw_request(protected.ports["rest"], method, path, [("Authorization", f"Bearer {TOKEN}")])
    assert status == 200 and len(protected.fake.requests) == 1
    assert (
        protected.fake.requests[0].headers["Authorization"].startswith("Basic ")
    )  # the caller's token is not passed on


def test_unknown_routes_on_a_protected_exposure_leak_nothing(protected: Stack) -> None:
    status, _, body = raw_request(protected.ports["rest"], "GET", "/v1/customers/c1/../../admin")
    assert status in (401, 404, 405) and TOKEN not in body.decode()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong"])
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_bearer_guards_the_mcp_endpoint(protected: Stack, authorization: str | None, method: str) -> None:
    protected.reset()
    headers = [("Accept", "application/json, text/event-stream"), ("Content-Type", "application/json")]
    headers += [("Authorization", authorization)] if authorization else []
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "delete-customer", "arguments": {"identifier": "c1"}},
    }
    status, answer_headers, body = raw_request(
        protected.ports["mcp"], method, "/mcp", headers, json.dumps(call).encode() if method == "POST" else b""
    )
    assert status == 401, body
    assert answer_headers["www-authenticate"].startswith("Bearer")
    assert not protected.fake.requests


def test_mcp_admits_the_right_token(protected: Stack) -> None:
    protected.reset()
    client = McpClient(protected.ports["mcp"], Authorization=f"Bearer {TOKEN}")
    client.initialize()
    status, _, body = client.post(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "delete-customer", "arguments": {"identifier": "c1"}},
        }
    )
    assert status == 200 and "result" in json.loads(body)
    assert [r.path for r in protected.fake.requests] == ["/api/v1/customers/c1"]


def test_probes_and_openapi_on_a_protected_exposure(protected: Stack) -> None:
    """Decision: /health and /metrics stay open (probes, scrapers); /openapi.json stays open too —
    it describes the contract, including that bearer is required, and holds no secret."""
    for kind in ("rest", "mcp"):
        for path in ("/health", "/metrics"):
            status, _, body = raw_request(protected.ports[kind], "GET", path)
            assert status == 200
            assert not any(secret in body.decode() for secret in SECRETS)
    status, _, body = raw_request(protected.ports["rest"], "GET", "/openapi.json")
    assert status == 200
    text = body.decode()
    assert not any(secret in text for secret in SECRETS)
    assert "GATEWAY_TOKEN" not in text and "CUSTOMER_IO_PASS" not in text and "CUSTOMER_IO_USER" not in text
    assert "track.customer.io" not in text and protected.fake.url not in text  # the upstream stays private too
    assert json.loads(text)["openapi"].startswith("3.")


# -- MCP origin, size and depth limits ------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example", 403),
        ("null", 403),
        ("http://localhost.evil.example", 403),
        ("http://127.0.0.1:1234", 200),
    ],
)
def test_mcp_origin_is_checked(probe: Stack, stack_mcp: McpClient, origin: str, status: int) -> None:
    got, _, body = stack_mcp.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, Origin=origin)
    assert got == status, body


@pytest.fixture(scope="module")
def seed_stack() -> Iterator[Stack]:
    with Stack() as running:
        yield running


@pytest.fixture(scope="module")
def stack_mcp(seed_stack: Stack) -> McpClient:
    client = McpClient(seed_stack.ports["mcp"])
    client.initialize()
    return client


def test_request_size_limit_is_413(seed_stack: Stack, stack_mcp: McpClient) -> None:
    huge = json.dumps({"pad": "x" * (MAX_REQUEST_BYTES + 1)}).encode()
    status, headers, _ = raw_request(
        seed_stack.ports["rest"], "PUT", "/v1/customers/c1", [("Content-Type", "application/json")], huge
    )
    assert status == 413 and headers["content-type"].startswith("application/problem+json")
    assert stack_mcp.post(None, raw=huge)[0] == 413
    assert not seed_stack.fake.requests or all(len(r.body) < MAX_REQUEST_BYTES for r in seed_stack.fake.requests)


def test_a_100k_deep_json_body_is_400(seed_stack: Stack, stack_mcp: McpClient) -> None:
    seed_stack.reset()
    deep = b"[" * 100_000 + b"]" * 100_000
    status, headers, _ = raw_request(
        seed_stack.ports["rest"],
        "PUT",
        "/v1/customers/c1",
        [("Content-Type", "application/json")],
        b'{"a": ' + deep + b"}",
    )
    assert status == 400 and headers["content-type"].startswith("application/problem+json")
    status, _, body = stack_mcp.post(
        None, raw=b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"a": ' + deep + b"}}"
    )
    assert status in (200, 400) and json.loads(body)["error"]["code"] == -32700
    assert not seed_stack.fake.requests
    assert raw_request(seed_stack.ports["rest"], "GET", "/health")[0] == 200  # still serving


# -- secrets never leak ---------------------------------------------------------------------------


def _flows(stack: Stack, mcp: McpClient) -> list[bytes]:
    """Representative calls; returns every answer (headers and body) as bytes."""
    answers = []
    auth = [("Authorization", f"Bearer {TOKEN}")]
    for method, path in ROUTES:
        status, headers, body = raw_request(
            stack.ports["rest"], method, path, auth, b'{"email": "a@b.c"}' if method == "PUT" else b""
        )
        answers.append(json.dumps(headers).encode() + body)
    for bad in ("/v1/customers/..", "/v1/customers/%0D%0A/suppress", "/nope"):
        status, headers, body = raw_request(stack.ports["rest"], "POST", bad, auth)
        answers.append(json.dumps(headers).encode() + body)
    status, headers, body = raw_request(
        stack.ports["rest"], "PUT", "/v1/customers/c1", auth + [("Content-Type", "application/json")], b"{bad"
    )
    answers.append(body)
    answers.append(
        raw_request(stack.ports["rest"], "POST", "/v1/customers/c1/suppress", [("Authorization", "Bearer wrong")])[2]
    )
    for tool in ("identify-customer", "delete-customer", "suppress-customer"):
        answers.append(
            mcp.post(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": {"identifier": "c1"}},
                }
            )[2]
        )
    answers.append(
        mcp.post(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "delete-customer", "arguments": {"identifier": 5}},
            }
        )[2]
    )
    answers.append(mcp.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})[2])
    return answers


@pytest.mark.parametrize("scenario", ["dry-run", "upstream-401", "upstream-500", "unreachable"])
def test_secrets_never_leak(
    tmp_path: Path, scenario: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "protected.yaml"
    path.write_text(PROTECTED, encoding="utf-8")
    unreachable = None
    if scenario == "unreachable":
        from support import free_port

        unreachable = f"http://127.0.0.1:{free_port()}/api/v1"
    caplog.set_level(logging.DEBUG)
    with Stack(path, ENVIRON, dry_run=scenario == "dry-run", upstream=unreachable) as stack:
        if scenario == "upstream-401":
            stack.fake.respond = lambda request, body: web.json_response(
                {"meta": {"error": "Unauthorized request"}}, status=401
            )
        elif scenario == "upstream-500":
            stack.fake.respond = lambda request, body: web.Response(status=500, text="boom")
        client = McpClient(stack.ports["mcp"], Authorization=f"Bearer {TOKEN}")
        client.initialize()
        answers = _flows(stack, client)
        if scenario == "dry-run":
            assert not stack.fake.requests
            assert any(b"Authorization" in a or b"authorization" in a for a in answers)  # shown, masked
        elif scenario != "unreachable":
            assert stack.fake.requests  # the flows did reach the upstream with the real credentials
    out, err = capfd.readouterr()
    records = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}"
        + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    haystacks = {
        "answers": b"\n".join(answers).decode("utf-8", "replace"),
        "stdout": out,
        "stderr": err,
        "logs": records,
    }
    for where, text in haystacks.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {where}"


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/by-path/%FF", []),
        ("/by-path/c1?note=%FE", []),
        ("/by-query?identifier=%FF", []),
        ("/by-query?identifier=%ED%A0%80", []),
        ("/by-header", [("X-Identifier", "\udcff")]),  # a raw 0xFF byte in the header value
        ("/by-cookie", [("Cookie", "identifier=\udcfe")]),
    ],
    ids=["path", "query-to-header", "query", "query-surrogate", "header", "cookie"],
)
def test_bytes_that_are_not_utf8_are_refused_not_replaced(
    probe: Stack, target: str, headers: list[tuple[str, str]]
) -> None:
    """Replacing them with U+FFFD would make `%FF` and `%FE` reach the same upstream customer."""
    probe.reset()
    status, answer_headers, body = raw_request(probe.ports["rest"], "POST", target, headers)
    assert status == 400 and answer_headers["content-type"].startswith("application/problem+json"), body
    assert not probe.fake.requests

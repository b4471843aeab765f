"""The REST exposure in process: real aiohttp server on 127.0.0.1, recording fake upstream."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from naftiko.consumes.client import ClientSettings
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.http import ServerLimits
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import SEED, FakeUpstream, Serving

MAX_REQUEST_BYTES = ServerLimits().max_body_bytes

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}


async def serve(path: Path, upstream_url: str, **options) -> tuple[Serving, object]:
    capability = compile_capability(
        load_document(path), CompileOptions(upstreams={"track-customers": upstream_url}, environ=CREDENTIALS, **options)
    )
    [rest_plan] = [p for p in plan([capability]) if p.kind == "rest"]
    server = Serving(rest_plan)
    await server.start_server()
    return server, capability


@pytest.fixture
async def rest(upstream: FakeUpstream) -> AsyncIterator[str]:
    server, capability = await serve(SEED, upstream.url + "/api/v1")
    yield str(server.make_url("")).rstrip("/")
    await server.close()
    await capability.close()


async def call(method: str, url: str, **kwargs) -> tuple[int, dict, object]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        body = await response.json(content_type=None) if (await response.read()) else None
        return response.status, dict(response.headers), body


async def test_all_four_routes_reach_the_upstream(rest: str, upstream: FakeUpstream) -> None:
    assert (await call("PUT", f"{rest}/v1/customers/c1", json={"email": "a@b.c"}))[0] == 200
    assert (await call("DELETE", f"{rest}/v1/customers/c1"))[0] == 200
    assert (await call("POST", f"{rest}/v1/customers/c1/suppress"))[0] == 200
    assert (await call("POST", f"{rest}/v1/customers/c1/unsuppress"))[0] == 200
    seen = [(r.method, r.path) for r in upstream.requests]
    assert seen == [
        ("PUT", "/api/v1/customers/c1"),
        ("DELETE", "/api/v1/customers/c1"),
        ("POST", "/api/v1/customers/c1/suppress"),
        ("POST", "/api/v1/customers/c1/unsuppress"),
    ]
    assert upstream.requests[0].json() == {"email": "a@b.c"}
    expected = "Basic " + base64.b64encode(b"site-id-123:api-key-SECRET-456").decode()
    assert all(r.headers["Authorization"] == expected for r in upstream.requests)


async def test_upstream_json_and_status_pass_through(rest: str, upstream: FakeUpstream) -> None:
    upstream.respond = lambda request, body: web.json_response({"ok": 1}, status=201)
    status, headers, body = await call("POST", f"{rest}/v1/customers/c1/suppress")
    assert (status, body) == (201, {"ok": 1})
    upstream.respond = lambda request, body: web.json_response({"meta": {"error": "no"}}, status=404)
    status, _, body = await call("DELETE", f"{rest}/v1/customers/c1")
    assert (status, body) == (404, {"meta": {"error": "no"}})


def assert_problem(status: int, headers: dict, body: object, expected_status: int, kind: str) -> None:
    assert status == expected_status
    assert headers["Content-Type"].startswith("application/problem+json")
    assert isinstance(body, dict) and body["status"] == expected_status and body["type"].endswith("/" + kind)


async def test_unknown_path_is_404_problem(rest: str) -> None:
    assert_problem(*await call("GET", f"{rest}/v2/nothing"), 404, "not-found")


async def test_wrong_method_is_405_with_allow(rest: str) -> None:
    status, headers, body = await call("GET", f"{rest}/v1/customers/c1")
    assert_problem(status, headers, body, 405, "method-not-allowed")
    assert set(headers["Allow"].split(",")) == {"PUT", "DELETE"}


async def test_bad_json_and_wrong_type_are_400(rest: str, upstream: FakeUpstream) -> None:
    assert_problem(
        *await call("PUT", f"{rest}/v1/customers/c1", data=b'{"email":', headers={"Content-Type": "application/json"}),
        400,
        "malformed-json",
    )
    status, headers, body = await call("PUT", f"{rest}/v1/customers/c1", json=[1, 2])
    assert_problem(status, headers, body, 400, "invalid-input")
    assert body["invalid-params"][0]["name"] == "body"
    assert upstream.requests == []


async def test_oversized_body_is_413(rest: str) -> None:
    status, headers, body = await call("PUT", f"{rest}/v1/customers/c1", data=b"x" * (MAX_REQUEST_BYTES + 1))
    assert_problem(status, headers, body, 413, "payload-too-large")


async def test_unreachable_upstream_is_502() -> None:
    server, capability = await serve(SEED, "http://127.0.0.1:9/api/v1")
    status, headers, body = await call("POST", str(server.make_url("/v1/customers/c1/suppress")))
    await server.close()
    await capability.close()
    assert_problem(status, headers, body, 502, "upstream-unreachable")


async def test_upstream_5xx_is_502_with_its_status(rest: str, upstream: FakeUpstream) -> None:
    upstream.respond = lambda request, body: web.json_response({"boom": True}, status=500)
    status, headers, body = await call("POST", f"{rest}/v1/customers/c1/suppress")
    assert_problem(status, headers, body, 502, "upstream-error")
    assert body["upstreamStatus"] == 500 and body["upstreamBody"] == {"boom": True}


async def test_hanging_upstream_is_504_within_the_timeout() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    slow = TestServer(app, host="127.0.0.1")
    await slow.start_server()
    server, capability = await serve(SEED, str(slow.make_url("")), settings=ClientSettings(total_timeout=0.5))
    started = asyncio.get_running_loop().time()
    status, headers, body = await call("POST", str(server.make_url("/v1/customers/c1/suppress")))
    elapsed = asyncio.get_running_loop().time() - started
    await server.close()
    await capability.close()
    await slow.close()
    assert_problem(status, headers, body, 504, "upstream-timeout")
    assert elapsed < 5


PROTECTED = SEED.read_text(encoding="utf-8").replace(
    "    port: 8080\n",
    "    port: 8080\n    authentication:\n      type: bearer\n      token: '{{env.GATEWAY_TOKEN}}'\n",
)


async def test_exposure_auth_is_enforced_with_401(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "protected.yaml"
    path.write_text(PROTECTED, encoding="utf-8")
    CREDENTIALS["GATEWAY_TOKEN"] = "gateway-token-789"
    try:
        server, capability = await serve(path, upstream.url)
    finally:
        del CREDENTIALS["GATEWAY_TOKEN"]
    url = str(server.make_url("/v1/customers/c1/suppress"))
    refused = await call("POST", url)
    wrong = await call("POST", url, headers={"Authorization": "Bearer nope"})
    allowed = await call("POST", url, headers={"Authorization": "Bearer gateway-token-789"})
    await server.close()
    await capability.close()
    for status, headers, body in (refused, wrong):
        assert_problem(status, headers, body, 401, "unauthorized")
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert allowed[0] == 200 and len(upstream.requests) == 1
    assert upstream.requests[0].headers["Authorization"].startswith("Basic ")


async def test_health_metrics_and_openapi(rest: str) -> None:
    await call("DELETE", f"{rest}/v1/customers/c1")
    assert (await call("GET", f"{rest}/health"))[2] == {"status": "ok"}
    async with aiohttp.ClientSession() as session, session.get(f"{rest}/metrics") as response:
        text = await response.text()
    assert 'naftiko_requests_total{method="DELETE",route="/v1/customers/{identifier}",status="200"} 1' in text
    assert "naftiko_request_duration_seconds_bucket" in text
    status, _, document = await call("GET", f"{rest}/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"
    put = document["paths"]["/v1/customers/{identifier}"]["put"]
    [parameter] = put["parameters"]
    assert {k: parameter[k] for k in ("name", "in", "required")} == {
        "name": "identifier",
        "in": "path",
        "required": True,
    }
    assert (
        parameter["schema"]["type"] == "string" and parameter["schema"]["minLength"] == 1
    )  # what a path segment can carry
    assert put["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"


async def test_encoded_slash_stays_inside_the_identifier(rest: str, upstream: FakeUpstream) -> None:
    status, _, _ = await call("POST", f"{rest}/v1/customers/a%2Fb%3Fc/suppress")
    assert status == 200
    assert upstream.requests[0].path == "/api/v1/customers/a%2Fb%3Fc/suppress"

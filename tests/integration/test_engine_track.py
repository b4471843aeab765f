"""The engine against a recording fake upstream: what Customer.io would receive, byte for byte."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import DryRun, InvalidInput, Success, TimedOut, Unreachable, UpstreamError
from naftiko.spec.document import load_document
from support import SEED, FakeUpstream

CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
BASIC = "Basic " + base64.b64encode(b"site-id-123:api-key-SECRET-456").decode()


def capability(upstream: FakeUpstream, **options):
    document = load_document(SEED)
    assert document.valid, document.errors
    return compile_capability(
        document,
        CompileOptions(upstreams={"track-customers": upstream.url + "/api/v1"}, environ=CREDENTIALS, **options),
    )


@pytest.mark.parametrize(
    ("target", "method", "path"),
    [
        ("identify-customer", "PUT", "/api/v1/customers/cust-1"),
        ("delete-customer", "DELETE", "/api/v1/customers/cust-1"),
        ("suppress-customer", "POST", "/api/v1/customers/cust-1/suppress"),
        ("unsuppress-customer", "POST", "/api/v1/customers/cust-1/unsuppress"),
        ("track-customers-rest.identifycustomer", "PUT", "/api/v1/customers/cust-1"),
        ("track-customers.deletecustomer", "DELETE", "/api/v1/customers/cust-1"),
    ],
)
async def test_each_seed_operation_reaches_customer_io_as_expected(
    upstream: FakeUpstream, target: str, method: str, path: str
) -> None:
    cap = capability(upstream)
    inputs: dict = {"identifier": "cust-1"}
    if "identify" in target:
        inputs["body"] = {"email": "ada@example.com", "created_at": 1705312800, "plan": "pro"}
    result = await cap.invoke(cap.find(target), inputs)
    await cap.close()
    assert isinstance(result, Success) and result.status == 200
    [request] = upstream.requests
    assert (request.method, request.path) == (method, path)
    assert request.headers["Authorization"] == BASIC
    if "identify" in target:
        assert request.headers["Content-Type"] == "application/json"
        assert request.json() == inputs["body"]
    else:
        assert request.body == b""


@pytest.mark.parametrize("identifier", ["../admin", "a/b?c#d", "%2e%2e", "x y"])
async def test_identifiers_stay_inside_their_path_segment(upstream: FakeUpstream, identifier: str) -> None:
    cap = capability(upstream)
    result = await cap.invoke(cap.find("delete-customer"), {"identifier": identifier})
    await cap.close()
    assert isinstance(result, Success)
    [request] = upstream.requests
    prefix = "/api/v1/customers/"
    assert request.path.startswith(prefix)
    segment = request.path[len(prefix) :]
    assert "/" not in segment and "?" not in segment and "#" not in segment
    from urllib.parse import unquote

    assert unquote(segment) == identifier


@pytest.mark.parametrize("identifier", ["..", ".", "", "x\r\nInjected: 1"])
async def test_unsafe_identifiers_are_refused_before_sending(upstream: FakeUpstream, identifier: str) -> None:
    cap = capability(upstream)
    result = await cap.invoke(cap.find("delete-customer"), {"identifier": identifier})
    await cap.close()
    assert isinstance(result, InvalidInput) and result.name == "identifier"
    assert upstream.requests == []


async def test_inputs_are_checked_against_inferred_types(upstream: FakeUpstream) -> None:
    cap = capability(upstream)
    target = cap.find("identify-customer")
    assert [(f.name, f.type, f.required) for f in target.inputs] == [
        ("body", "object", False),
        ("identifier", "string", True),
    ]
    missing = await cap.invoke(target, {"body": {}})
    wrong = await cap.invoke(target, {"identifier": "a", "body": "not an object"})
    unknown = await cap.invoke(target, {"identifier": "a", "nope": 1})
    await cap.close()
    assert isinstance(missing, InvalidInput) and missing.name == "identifier"
    assert isinstance(wrong, InvalidInput) and "must be of type object" in wrong.reason
    assert isinstance(unknown, InvalidInput) and unknown.name == "nope"
    assert upstream.requests == []


async def test_upstream_errors_keep_status_and_body(upstream: FakeUpstream) -> None:
    upstream.respond = lambda request, body: web.json_response({"meta": {"error": "bad"}}, status=422)
    cap = capability(upstream)
    result = await cap.invoke(cap.find("suppress-customer"), {"identifier": "x"})
    await cap.close()
    assert result == UpstreamError(422, {"meta": {"error": "bad"}}, "application/json; charset=utf-8")


async def test_unreachable_and_timeout_are_typed(upstream: FakeUpstream) -> None:
    from naftiko.consumes.client import ClientSettings

    document = load_document(SEED)
    down = compile_capability(
        document, CompileOptions(upstreams={"track-customers": "http://127.0.0.1:9"}, environ=CREDENTIALS)
    )
    assert isinstance(await down.invoke(down.find("suppress-customer"), {"identifier": "x"}), Unreachable)
    await down.close()

    async def hang(request: web.Request) -> web.Response:
        import asyncio

        await asyncio.sleep(5)
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    from aiohttp.test_utils import TestServer

    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    slow = compile_capability(
        document,
        CompileOptions(
            upstreams={"track-customers": str(server.make_url(""))},
            environ=CREDENTIALS,
            settings=ClientSettings(total_timeout=0.3),
        ),
    )
    result = await slow.invoke(slow.find("suppress-customer"), {"identifier": "x"})
    await slow.close()
    await server.close()
    assert isinstance(result, TimedOut)


async def test_idempotent_calls_retry_on_503_and_others_do_not(upstream: FakeUpstream) -> None:
    statuses = iter([503, 200, 503, 503])
    upstream.respond = lambda request, body: web.Response(status=next(statuses), headers={"Retry-After": "0"})
    cap = capability(upstream)
    assert isinstance(await cap.invoke(cap.find("delete-customer"), {"identifier": "x"}), Success)  # DELETE: retried
    assert isinstance(
        await cap.invoke(cap.find("suppress-customer"), {"identifier": "x"}), UpstreamError
    )  # POST: not retried
    await cap.close()
    assert [r.method for r in upstream.requests] == ["DELETE", "DELETE", "POST"]


async def test_dry_run_needs_no_secrets_and_masks_authorization() -> None:
    document = load_document(SEED)
    cap = compile_capability(document, CompileOptions(dry_run=True, environ={}))
    result = await cap.invoke(cap.find("identify-customer"), {"identifier": "c1", "body": {"email": "a@b"}})
    await cap.close()
    assert isinstance(result, DryRun)
    assert result.request == {
        "method": "PUT",
        "url": "https://track.customer.io/api/v1/customers/c1",
        "headers": {"Content-Type": "application/json", "Authorization": "Basic ****"},
        "cookies": {},
        "body": {"email": "a@b"},
    }


def test_missing_credentials_stop_compilation_one_line_each() -> None:
    from naftiko.spec.diagnostics import CapabilityError

    with pytest.raises(CapabilityError) as caught:
        compile_capability(load_document(SEED), CompileOptions(environ={}))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert all("track-customers.yaml:" in line and "is not set" in line for line in lines)
    assert "CUSTOMER_IO_USER" in lines[0] and "CUSTOMER_IO_PASS" in lines[1]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMER_IO")}
    return subprocess.run(
        [sys.executable, "-m", "naftiko.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
    )


@pytest.mark.parametrize("identifier", ["../admin", "a/b?c#d", "%2e%2e", "x\r\nInjected: 1"])
def test_call_cli_keeps_hostile_identifiers_in_their_segment(identifier: str) -> None:
    done = run_cli("call", "--dry-run", str(SEED), "delete-customer", "--json", json.dumps({"identifier": identifier}))
    output = json.loads(done.stdout)
    if "\r" in identifier:
        assert done.returncode == 1 and output["error"] == "invalid_input" and output["input"] == "identifier"
        return
    assert done.returncode == 0
    url = output["request"]["url"]
    segment = url.removeprefix("https://track.customer.io/api/v1/customers/")
    assert (
        "/" not in segment
        and "?" not in segment
        and "#" not in segment
        and "Injected" not in json.dumps(output["request"]["headers"])
    )


async def test_secrets_never_appear_in_outputs_or_errors(upstream: FakeUpstream) -> None:
    upstream.respond = lambda request, body: web.json_response({"error": "nope"}, status=401)
    import asyncio

    # The fake upstream lives on this event loop: run the CLI in a thread so the loop can answer it.
    done = await asyncio.to_thread(
        run_cli,
        "call",
        "--upstream",
        f"track-customers={upstream.url}",
        str(SEED),
        "suppress-customer",
        "--arg",
        "identifier=x",
        env=CREDENTIALS,
    )
    dry = run_cli("call", "--dry-run", str(SEED), "suppress-customer", "--arg", "identifier=x", env=CREDENTIALS)
    everything = done.stdout + done.stderr + dry.stdout + dry.stderr
    assert done.returncode == 1 and json.loads(done.stdout)["status"] == 401
    assert "api-key-SECRET-456" not in everything
    assert BASIC.split()[1] not in everything


def test_call_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("call", str(SEED), "no-such-tool").returncode == 2
    assert run_cli("call", str(tmp_path / "missing.yaml"), "x").returncode == 2
    assert run_cli("call", "--dry-run", str(SEED), "delete-customer", "--json", "[1]").returncode == 2

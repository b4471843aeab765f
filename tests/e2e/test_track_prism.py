"""End to end: `naftiko run` on the seed capability, Prism mocking Customer.io's Track API.

Prism runs with --errors, so any request that violates Customer.io's own OpenAPI document is
answered 4xx/422 instead of 2xx.
"""

from __future__ import annotations

import json
import sys
import urllib.request

import pytest

from node_tools import REPO, node_tool
from processes import output, started
from support import SHARED, free_port

SEED = REPO / "runtime" / "naftiko" / "defaults" / "track-customers.yaml"  # the seed, verbatim


def request(method: str, url: str, body: object | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_four_rest_routes_through_prism_have_no_violations() -> None:
    prism = node_tool("prism")
    spec = SHARED / "upstreams" / "customer-io" / "customer-io-track-api-openapi.prism.json"
    if not spec.exists():
        pytest.skip(f"{spec} is not available (the ../shared reference folder is missing)")
    prism_port, rest_port, mcp_port = free_port(), free_port(), free_port()
    prism_command = [prism, "mock", "--errors", "-h", "127.0.0.1", "-p", str(prism_port), str(spec)]
    naftiko_command = [
        sys.executable,
        "-m",
        "naftiko.cli",
        "run",
        str(SEED),
        "--upstream",
        f"track-customers=http://127.0.0.1:{prism_port}/api/v1",
        "--port",
        f"track-customers-rest={rest_port}",
        "--port",
        f"track-customers-mcp={mcp_port}",
    ]
    credentials = {"CUSTOMER_IO_USER": "site-id", "CUSTOMER_IO_PASS": "api-key"}
    with (
        started(prism_command, f"http://127.0.0.1:{prism_port}/api/v1/accounts/region") as mock,
        started(naftiko_command, f"http://127.0.0.1:{rest_port}/health", env=credentials),
    ):
        base = f"http://127.0.0.1:{rest_port}/v1/customers/cust-42"
        answers = {
            "identify": request("PUT", base, {"email": "ada@example.com", "created_at": 1705312800, "plan": "pro"}),
            "delete": request("DELETE", base),
            "suppress": request("POST", base + "/suppress"),
            "unsuppress": request("POST", base + "/unsuppress"),
        }
        mock.terminate()
        mock.wait(timeout=15)
        log = output(mock)
    for name, (status, headers, body) in answers.items():
        assert 200 <= status < 300, (name, status, body, log[-3000:])
        assert "sl-violations" not in {k.lower() for k in headers}, (name, headers)
    calls = log[log.lower().index("put /api/v1/customers/cust-42") :]  # after the readiness probe
    assert "did not pass the validation rules" not in calls and "violation" not in calls.lower(), calls[-3000:]

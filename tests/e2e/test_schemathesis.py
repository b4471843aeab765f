"""Schemathesis against `/openapi.json` of the Track capability, Prism playing Customer.io:
no 5xx from our server (upstream errors come back as Prism's 4xx, passed through)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node_tools import REPO, node_tool
from processes import started
from support import SHARED, free_port

CAPABILITY = REPO / "capabilities" / "track-customers.yaml"


def test_generated_requests_never_get_a_server_error(tmp_path: Path) -> None:
    prism = node_tool("prism")
    schemathesis = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if schemathesis is None:
        pytest.skip("schemathesis (st) is not installed (pip install -e '.[test]' installs it)")
    spec = SHARED / "upstreams" / "customer-io" / "customer-io-track-api-openapi.prism.json"
    if not spec.exists():
        pytest.skip(f"{spec} is not available (the ../shared reference folder is missing)")
    prism_port, rest_port = free_port(), free_port()
    naftiko = [
        sys.executable,
        "-m",
        "naftiko.cli",
        "run",
        str(CAPABILITY),
        "--upstream",
        f"track-customers=http://127.0.0.1:{prism_port}/api/v1",
        "--port",
        f"track-customers-rest={rest_port}",
        "--port",
        f"track-customers-mcp={free_port()}",
    ]
    credentials = {"CUSTOMER_IO_USER": "site-id", "CUSTOMER_IO_PASS": "api-key"}
    with (
        started(
            [prism, "mock", "--errors", "-h", "127.0.0.1", "-p", str(prism_port), str(spec)],
            f"http://127.0.0.1:{prism_port}/api/v1/accounts/region",
        ),
        started(naftiko, f"http://127.0.0.1:{rest_port}/health", env=credentials),
    ):
        run = subprocess.run(
            [
                schemathesis,
                "run",
                f"http://127.0.0.1:{rest_port}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "30",
                "--seed",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,  # its report folder goes there
        )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout


# -- /openapi.json tells the truth (issue #16 item 7) ---------------------------------------------
# Every REST exposure of capabilities/, served together by `naftiko run --dry-run capabilities/`
# (no upstream, no secrets), each on its own port: `--checks all` finds nothing, so what the
# document promises is what the server does (path values it refuses are excluded by the schema,
# bodies of the wrong type, JSON null included, are refused). Examples per operation are bounded
# (app-rest has 115 operations): the whole of it takes about 2 minutes on the 2-core machine.

CAPABILITIES = REPO / "capabilities"
GATEWAY_CREDENTIALS = {"GATEWAY_SITE_ID": "site-id", "GATEWAY_API_KEY": "api-key"}


def _exposures(kind: str) -> list[str]:
    import yaml

    found = []
    for path in sorted(CAPABILITIES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        found += [e["namespace"] for e in data["capability"]["exposes"] if e.get("type") == kind]
    return found


REST_EXPOSURES = _exposures("rest")
EXAMPLES = {"app-rest": 8}  # per operation; 115 operations there


@pytest.fixture(scope="module")
def dry_run_ports(tmp_path_factory: pytest.TempPathFactory):
    from processes import stop, wait_http

    ports = {namespace: free_port() for namespace in REST_EXPOSURES}
    mcp_port = free_port()
    command = [sys.executable, "-m", "naftiko.cli", "run", "--dry-run", str(CAPABILITIES)]
    for namespace, port in ports.items():
        command += ["--port", f"{namespace}={port}"]
    for namespace in _exposures("mcp"):
        command += ["--port", f"{namespace}={mcp_port}"]
    log = (tmp_path_factory.mktemp("naftiko") / "run.log").open("w")  # not a pipe: thousands of access-log lines
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **GATEWAY_CREDENTIALS})
    try:
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/health", process)
        yield ports
    finally:
        stop(process)
        log.close()


@pytest.mark.parametrize("namespace", REST_EXPOSURES)
def test_every_capabilities_rest_exposure_keeps_its_openapi_promises(
    namespace: str, dry_run_ports: dict[str, int], tmp_path: Path
) -> None:
    schemathesis = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if schemathesis is None:
        pytest.skip("schemathesis (st) is not installed (pip install -e '.[test]' installs it)")
    command = [
        schemathesis,
        "run",
        f"http://127.0.0.1:{dry_run_ports[namespace]}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES.get(namespace, 25)),
        "--seed",
        "1",
    ]
    if namespace == "customer-io-gateway":  # the exposure's own basic authentication
        credential = base64.b64encode(
            f"{GATEWAY_CREDENTIALS['GATEWAY_SITE_ID']}:{GATEWAY_CREDENTIALS['GATEWAY_API_KEY']}".encode()
        ).decode()
        command += ["-H", f"Authorization: Basic {credential}"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout

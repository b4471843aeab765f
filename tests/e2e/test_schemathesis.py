"""Schemathesis against `/openapi.json` of the Track capability, Prism playing Customer.io:
no 5xx from our server (upstream errors come back as Prism's 4xx, passed through)."""

from __future__ import annotations

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
        sys.executable, "-m", "naftiko.cli", "run", str(CAPABILITY),
        "--upstream", f"track-customers=http://127.0.0.1:{prism_port}/api/v1",
        "--port", f"track-customers-rest={rest_port}", "--port", f"track-customers-mcp={free_port()}",
    ]
    credentials = {"CUSTOMER_IO_USER": "site-id", "CUSTOMER_IO_PASS": "api-key"}
    with started([prism, "mock", "--errors", "-h", "127.0.0.1", "-p", str(prism_port), str(spec)],
                 f"http://127.0.0.1:{prism_port}/api/v1/accounts/region"), started(
        naftiko, f"http://127.0.0.1:{rest_port}/health", env=credentials
    ):
        run = subprocess.run(
            [schemathesis, "run", f"http://127.0.0.1:{rest_port}/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "30", "--seed", "1"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path,  # its report folder goes there
        )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout

"""`naftiko run` as a process: refuses bad input before opening ports, serves, stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support import SEED, free_port


def naftiko(*args: str, env: dict | None = None) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMER_IO")}
    return subprocess.Popen(
        [sys.executable, "-m", "naftiko.cli", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, **(env or {})},
    )


def wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def ports() -> list[str]:
    return ["--port", f"track-customers-rest={free_port()}", "--port", f"track-customers-mcp={free_port()}"]


def test_missing_credentials_refuse_to_start_with_one_line_each() -> None:
    process = naftiko(str(SEED), *ports())
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("is not set" in line and "track-customers.yaml:" in line for line in lines)


def test_dry_run_serves_without_credentials_and_stops_on_sigterm() -> None:
    rest_port = free_port()
    process = naftiko(
        "--dry-run",
        str(SEED),
        "--port",
        f"track-customers-rest={rest_port}",
        "--port",
        f"track-customers-mcp={free_port()}",
    )
    try:
        wait_ready(f"http://127.0.0.1:{rest_port}/health", process)
        request = urllib.request.Request(f"http://127.0.0.1:{rest_port}/v1/customers/c%2F1/suppress", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert answer["request"]["url"] == "https://track.customer.io/api/v1/customers/c%2F1/suppress"
    assert answer["request"]["headers"]["Authorization"] == "Basic ****"
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    [call] = [entry for entry in logged if entry["method"] == "POST"]
    assert {"route": "/v1/customers/{identifier}/suppress", "status": 200}.items() <= call.items()
    assert {"latencyMs", "requestId", "upstreamStatus"} <= call.keys()


def test_conflicting_routes_name_both_files(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    second.write_text(
        SEED.read_text(encoding="utf-8")
        .replace("namespace: track-customers-mcp", "namespace: other-mcp")
        .replace("namespace: track-customers\n", "namespace: other\n")
        .replace("call: track-customers.", "call: other."),
        encoding="utf-8",
    )
    process = naftiko("--dry-run", str(tmp_path))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "a.yaml" in err and "b.yaml" in err and "Traceback" not in err


def test_unreadable_path_is_exit_2(tmp_path: Path) -> None:
    process = naftiko(str(tmp_path / "missing.yaml"))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "no such file" in err


def refused(*args: str) -> str:
    """Runs `naftiko run --dry-run ARGS` expecting exit 2 before serving; returns stderr."""
    process = naftiko("--dry-run", str(SEED), *args)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert "Traceback" not in err and "serving" not in err
    return err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--port", "nosuch=1234"],
            "--port: no namespace named 'nosuch' (known: track-customers-mcp, track-customers-rest)",
        ),
        (
            ["--upstream", "nosuch=http://127.0.0.1:1"],
            "--upstream: no namespace named 'nosuch' (known: track-customers)",
        ),
        (["--rate-limit", "nosuch=10"], "--rate-limit: no namespace named 'nosuch' (known: track-customers)"),
        (["--upstream-timeout", "nosuch=10"], "no namespace named 'nosuch' (known: track-customers)"),
        (
            ["--upstream", "track-customers=notaurl"],
            "--upstream track-customers=notaurl: needs an http:// or https:// URL",
        ),
        (
            ["--upstream", "track-customers=ftp://example.com"],
            "--upstream track-customers=ftp://example.com: needs an http:// or https:// URL",
        ),
        (["--port", "control=1234"], "--port: no namespace named 'control'"),
        (["--allow-origin", "example.com"], "--allow-origin needs an origin"),
        (["--forwarded-allow-ips", "not-an-ip"], "--forwarded-allow-ips"),
        (["--upstream-cafile", "track-customers=/no/such.pem"], "--upstream-cafile: cannot read '/no/such.pem'"),
    ],
)
def test_a_flag_naming_an_unknown_namespace_or_a_bad_value_is_exit_2_naming_the_flag(
    args: list[str], expected: str
) -> None:
    assert expected in refused(*args)


def test_a_busy_port_names_the_exposure_and_the_flag_to_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = refused("--port", f"track-customers-rest={port}", "--port", f"track-customers-mcp={free_port()}")
    assert f"port {port} on 127.0.0.1 is already in use (wanted by track-customers-rest)" in err
    assert "--port track-customers-rest=PORT" in err


def test_openapi_with_an_unknown_namespace_names_the_rest_exposures() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "openapi", "--namespace", "nope", str(SEED)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2
    assert "no REST exposure named 'nope' (known: track-customers-rest)" in process.stderr


def test_an_unusable_upstream_ca_file_or_proxy_variable_is_exit_2_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n", encoding="utf-8")
    err = refused("--upstream-cafile", f"track-customers={bad}")
    assert "cafile" in err and "no PEM certificate" in err
    process = naftiko("--dry-run", str(SEED), env={"HTTPS_PROXY": "socks5://user:secret@127.0.0.1:1"})
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "only http:// proxies" in err and "secret" not in err and "Traceback" not in err

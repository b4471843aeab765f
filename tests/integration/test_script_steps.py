"""Script steps end to end: `naftiko run` in its own process with REST, MCP (the official SDK as
client) and the control port, and `naftiko call`; the scripts are in tests/scripting_fixtures.

The official `script-step.yml` runs with the scripts it names (written from what it documents);
a second capability holds one REST operation and one MCP tool per case: shaping data in both
languages, a throw, results JSON cannot carry, timeouts, the statement limit, 2 GB
allocations, and escape attempts that must get nothing out.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from mcp import Client

from e2e.processes import output, started
from support import REPO, SHARED, FakeUpstream, free_port

SCRIPTS = REPO / "tests" / "scripting_fixtures" / "scripts"
SECRET = "s3cr3t-value-0123456789"  # in the server's environment; conftest TEST_SECRETS
TIMEOUT_MS = 1000
MEMORY_CEILING = 500 << 20  # the server and its script workers together, in bytes
INPUTS = {"items": "array", "factor": "number", "n": "number", "kind": "string", "canary": "string"}
INPUTS |= {"listener": "string", "listener_port": "integer"}
CASES = {  # name → (language, file)
    "shape-js": ("javascript", "shape.js"),
    "shape-py": ("python", "shape.py"),
    "throws-js": ("javascript", "throws.js"),
    "throws-py": ("python", "throws.py"),
    "not-json-js": ("javascript", "not-json.js"),
    "not-json-py": ("python", "not-json.py"),
    "backtrack-js": ("javascript", "backtrack.js"),
    "backtrack-py": ("python", "backtrack.py"),
    "spin-js": ("javascript", "spin.js"),
    "spin-py": ("python", "spin.py"),
    "allocate-js": ("javascript", "allocate.js"),
    "allocate-py": ("python", "allocate.py"),
    "escape-js": ("javascript", "escape.js"),
    "escape-py": ("python", "escape.py"),
    "leftover-js": ("javascript", "leftover.js"),
    "leftover-py": ("python", "leftover.py"),
}


def script_step(name: str) -> dict[str, Any]:
    language, file = CASES[name]
    step = {"type": "script", "name": "run-" + name, "language": language, "file": file}
    if name.startswith("shape"):
        step["with"] = {"factor": 3}
    return step


def cases_capability(ports: dict[str, int], scripting: dict[str, Any]) -> dict[str, Any]:
    """One REST operation (POST /NAME, inputs in a JSON body) and one MCP tool per case, plus
    a call step feeding a script (`/orders-total`: `context['list-orders']`)."""
    rest_inputs = [{"name": n, "in": "body", "type": t, "description": n} for n, t in INPUTS.items()]
    mcp_inputs = [{"name": n, "type": t, "description": n, "required": False} for n, t in INPUTS.items()]
    resources = [
        {
            "path": "/" + name,
            "name": name,
            "operations": [
                {
                    "method": "POST",
                    "name": name,
                    "inputParameters": rest_inputs,
                    "steps": [script_step(name)],
                    "mappings": [{"targetName": "result", "value": f"$.run-{name}"}],
                }
            ],
        }
        for name in CASES
    ]
    resources.append(
        {
            "path": "/orders-total",
            "name": "orders-total",
            "operations": [
                {
                    "method": "GET",
                    "name": "orders-total",
                    "steps": [
                        {"type": "call", "name": "list-orders", "call": "data.list-orders"},
                        {"type": "script", "name": "total", "language": "python", "file": "orders-total.py"},
                    ],
                    "mappings": [{"targetName": "total", "value": "$.total"}],
                }
            ],
        }
    )
    tools = [
        {
            "name": name,
            "description": f"script case {name}",
            "inputParameters": mcp_inputs,
            "steps": [script_step(name)],
            "mappings": [{"targetName": "result", "value": f"$.run-{name}"}],
        }
        for name in CASES
    ]
    return {
        "naftiko": "1.0.0-alpha2",
        "info": {"label": "Script step cases", "description": "tests/integration/test_script_steps.py"},
        "capability": {
            "exposes": [
                {"type": "control", "port": ports["control"], "management": {"scripting": scripting}},
                {"type": "rest", "port": ports["rest"], "namespace": "cases", "resources": resources},
                {"type": "mcp", "port": ports["mcp"], "namespace": "cases-mcp", "tools": tools},
            ],
            "consumes": [
                {
                    "type": "http",
                    "namespace": "data",
                    "baseUri": "http://data.invalid",
                    "resources": [
                        {"path": "/orders", "name": "orders", "operations": [{"method": "GET", "name": "list-orders"}]}
                    ],
                }
            ],
        },
    }


def write_cases(tmp_path: Path, scripting: dict[str, Any] | None = None) -> tuple[Path, dict[str, int]]:
    ports = {"control": free_port(), "rest": free_port(), "mcp": free_port()}
    settings = {"defaultLocation": SCRIPTS.as_uri(), "timeout": TIMEOUT_MS, "statementLimit": 200_000}
    path = tmp_path / "cases.yml"
    path.write_text(yaml.safe_dump(cases_capability(ports, {**settings, **(scripting or {})}), sort_keys=False))
    return path, ports


@contextmanager
def serving(file: Path, ports: dict[str, int], *flags: str, env: dict[str, str] | None = None) -> Iterator[Any]:
    command = [sys.executable, "-m", "naftiko.cli", "run", str(file), *flags]
    ready = f"http://127.0.0.1:{ports['control']}/health/live"
    with started(command, ready, {"NAFTIKO_TEST_SECRET": SECRET, **(env or {})}) as process:
        yield process


async def post(port: int, path: str, body: dict[str, Any]) -> tuple[int, str, dict[str, Any], float]:
    began = time.monotonic()
    async with aiohttp.ClientSession() as session, session.post(f"http://127.0.0.1:{port}{path}", json=body) as answer:
        text = await answer.text()
        return answer.status, answer.headers.get("Content-Type", ""), json.loads(text), time.monotonic() - began


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the script workers)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration):
            continue
    return total


@contextmanager
def peak_memory(pid: int) -> Iterator[list[int]]:
    """Samples the process tree's RSS every 10 ms while the block runs; yields [peak]."""
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(pid))
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join(5)


def data_upstream(upstream: FakeUpstream) -> None:
    def respond(request: web.Request, body: bytes) -> web.Response:
        if request.path.endswith("/orders"):
            return web.json_response([{"id": 1, "amount": 12.5}, {"id": 2, "amount": 7.5}])
        if request.path.startswith("/orgs/"):
            return web.json_response(
                [
                    {"login": "ada", "id": 1, "type": "User"},
                    {"login": "bob", "id": 2, "type": "User", "active": False},
                    {"login": "cy", "id": 3, "type": "User", "suspended_at": "2026-01-01T00:00:00Z"},
                    {"login": "dee", "id": 4, "type": "User"},
                ]
            )
        if request.path.startswith("/devices/"):
            return web.json_response([{"value": 20.5}, {"value": 22.0}, {"value": 18.5}, {"value": 23.0}])
        return web.json_response({"unexpected": request.path}, status=404)

    upstream.respond = respond


# -- the official example ---------------------------------------------------------------------


def official_example(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    source = SHARED / "conformance" / "official" / "script-step.yml"
    if not source.is_file():
        pytest.skip(f"{source} is absent (set NAFTIKO_SHARED)")
    ports = {"control": free_port(), "mcp": free_port()}
    text = source.read_text().replace("file:///app/capabilities/scripts", SCRIPTS.as_uri())
    text = text.replace("port: 9090", f"port: {ports['control']}").replace("port: 3000", f"port: {ports['mcp']}")
    path = tmp_path / "script-step.yml"
    path.write_text(text)
    return path, ports


async def test_the_official_example_answers_as_documented_over_mcp(tmp_path: Path, upstream: FakeUpstream) -> None:
    data_upstream(upstream)
    file, ports = official_example(tmp_path)
    flags = ("--upstream", f"github={upstream.url}", "--upstream", f"sensors={upstream.url}")
    with serving(file, ports, *flags) as process:
        async with Client(f"http://127.0.0.1:{ports['mcp']}/mcp", mode="legacy") as client:
            members = await client.call_tool("active-members", {"org": "naftiko"})
            readings = await client.call_tool("readings-summary", {"device-id": "sensor-7"})
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ports['control']}/scripting") as answer:
                settings = await answer.json()
        assert not members.is_error, output(process)
        assert json.loads(members.content[0].text) == {
            "active-members": [{"login": "ada", "id": 1}, {"login": "dee", "id": 4}]
        }
        assert not readings.is_error, output(process)
        assert json.loads(readings.content[0].text) == {"average": 21.0, "min": 18.5, "max": 23.0, "count": 4}
    assert [r.path for r in upstream.requests] == ["/orgs/naftiko/members", "/devices/sensor-7/readings"]
    assert settings["available"] is True and settings["enabled"] is True
    assert (settings["timeout"], settings["statementLimit"]) == (3000, 50000)
    assert settings["allowedLanguages"] == ["javascript", "python"] and settings["executions"] == 2


async def test_dry_run_describes_the_calls_and_still_runs_the_scripts(tmp_path: Path, upstream: FakeUpstream) -> None:
    file, _ = official_example(tmp_path)
    done = await naftiko_call("--dry-run", str(file), "active-members", "--arg", "org=naftiko")
    assert done["ok"] and done["dryRun"], done
    steps = done["request"]["steps"]
    assert steps[0]["step"] == "list-members" and steps[0]["url"].endswith("/orgs/naftiko/members")
    assert steps[1] == {"step": "filter-active", "result": []}  # the script ran on the would-be request
    assert upstream.requests == []


# -- both languages through REST, MCP and `naftiko call` --------------------------------------


async def naftiko_call(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "naftiko.cli", "call", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert out, err.decode()
    return json.loads(out)


async def test_both_languages_shape_data_through_rest_mcp_and_call(tmp_path: Path, upstream: FakeUpstream) -> None:
    data_upstream(upstream)
    file, ports = write_cases(tmp_path)
    expected = {"doubled": [2, 4, 6], "total": 12, "factor": 3}
    with serving(file, ports, "--upstream", f"data={upstream.url}") as process:
        for name in ("shape-js", "shape-py"):
            status, _, body, _ = await post(ports["rest"], "/" + name, {"items": [1, 2, 3], "factor": 99})
            assert (status, body) == (200, {"result": expected}), output(process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ports['rest']}/orders-total") as answer:
                assert (answer.status, await answer.json()) == (200, {"total": 20.0})
        async with Client(f"http://127.0.0.1:{ports['mcp']}/mcp", mode="legacy") as client:
            for name in ("shape-js", "shape-py"):
                result = await client.call_tool(name, {"items": [1, 2, 3]})
                assert not result.is_error and json.loads(result.content[0].text) == {"result": expected}
    for name in ("shape-js", "shape-py"):
        done = await naftiko_call(str(file), "cases-mcp." + name, "--json", '{"items": [1, 2, 3]}')
        assert done == {"ok": True, "status": 200, "body": {"result": expected}}


# -- bad scripts, limits, sandbox -------------------------------------------------------------


async def test_failures_are_problems_naming_the_step_and_the_server_keeps_serving(tmp_path: Path) -> None:
    file, ports = write_cases(tmp_path)
    with serving(file, ports):
        for name, line in (("throws-js", "throws.js line 3"), ("throws-py", "throws.py line 3")):
            status, content_type, body, _ = await post(ports["rest"], "/" + name, {"n": -7})
            assert status == 500 and content_type.startswith("application/problem+json"), body
            assert body["type"].endswith("/script-failure") and body["step"] == f"run-{name}", body
            assert f"script step 'run-{name}'" in body["detail"] and "reading -7 is negative" in body["detail"]
            assert line in body["detail"] and "Traceback" not in body["detail"]
        for name, kind, says in (
            ("not-json-js", "function", "it holds a function"),
            ("not-json-js", "cycle", "circular"),
            ("not-json-js", "nan", "it holds NaN"),
            ("not-json-js", "nothing", "assigned nothing to `result`"),
            ("not-json-py", "nan", "Out of range float values are not JSON compliant"),
            ("not-json-py", "set", "Object of type set is not JSON serializable"),
            ("not-json-py", "date", "Object of type date is not JSON serializable"),
        ):
            status, _, body, _ = await post(ports["rest"], "/" + name, {"kind": kind})
            assert status >= 500 and says in body["detail"], (name, kind, body)
        for name in ("spin-js", "spin-py"):
            status, _, body, _ = await post(ports["rest"], "/" + name, {})
            assert status >= 500 and "statement limit (200000)" in body["detail"], body
        for name in ("backtrack-js", "backtrack-py"):
            status, _, body, elapsed = await post(ports["rest"], "/" + name, {})
            assert status == 504 and f"script step 'run-{name}' timed out after 1000 ms" in body["detail"], body
            assert body["type"].endswith("/script-timeout") and body["title"] == "Script step timed out", body
            assert elapsed < 2 * TIMEOUT_MS / 1000, elapsed  # the bound the issue sets, not a speed goal
        async with Client(f"http://127.0.0.1:{ports['mcp']}/mcp", mode="legacy") as client:
            thrown = await client.call_tool("throws-py", {"n": -1})
            late = await client.call_tool("backtrack-js", {})
            after = await client.call_tool("shape-py", {"items": [5]})
        assert (
            thrown.is_error
            and "run-throws-py" in thrown.content[0].text
            and "reading -1 is negative" in thrown.content[0].text
        )
        assert late.is_error and "timed out" in late.content[0].text and "run-backtrack-js" in late.content[0].text
        assert not after.is_error and json.loads(after.content[0].text)["result"]["total"] == 10
        for name in ("shape-js", "shape-py"):  # each worker that was stopped or killed was replaced
            status, _, body, _ = await post(ports["rest"], "/" + name, {"items": [1]})
            assert (status, body["result"]["total"]) == (200, 2)


async def test_two_gigabytes_fail_while_the_server_and_workers_stay_under_500_mb(tmp_path: Path) -> None:
    file, ports = write_cases(tmp_path, {"timeout": 20000})
    with serving(file, ports) as process:
        for name in ("shape-js", "shape-py"):  # both workers running before measuring
            await post(ports["rest"], "/" + name, {"items": [1]})
        for name, kind in (("allocate-js", "buffers"), ("allocate-js", "heap"), ("allocate-py", "")):
            with peak_memory(process.pid) as peak:
                status, _, body, _ = await post(ports["rest"], "/" + name, {"kind": kind})
            assert status >= 500 and f"script step 'run-{name}'" in body["detail"], body
            assert any(s in body["detail"] for s in ("memory", "allocation failed")), body
            print(f"{name} {kind}: the server and its workers peaked at {peak[0] >> 20} MB")
            assert 0 < peak[0] < MEMORY_CEILING, f"{name} {kind}: {peak[0] >> 20} MB"
            status, _, body, _ = await post(ports["rest"], "/shape-" + name[-2:], {"items": [2]})
            assert (status, body["result"]["total"]) == (200, 4), output(process)


@contextmanager
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
        return True
    except BlockingIOError:
        return False


async def test_escape_attempts_get_nothing_out(tmp_path: Path) -> None:
    file, ports = write_cases(tmp_path)
    canary = tmp_path / "canary"
    with listener() as sock, serving(file, ports) as process:
        port = sock.getsockname()[1]
        inputs = {"canary": str(canary), "listener": f"http://127.0.0.1:{port}/", "listener_port": port}
        answers = {}
        for name in ("escape-js", "escape-py"):
            status, _, body, _ = await post(ports["rest"], "/" + name, inputs)
            assert status == 200, (body, output(process))
            answers[name] = body["result"]
        leftovers = [(await post(ports["rest"], f"/leftover-{lang}", {}))[2]["result"] for lang in ("js", "py")] * 2
        assert not connected(sock)
    assert not canary.exists()
    assert SECRET not in json.dumps(answers)
    js, py = answers["escape-js"], answers["escape-py"]
    refused = ("require", "process", "fetch", "constructor", "globalThis", "deno", "xhr", "timer", "webassembly")
    assert all(js[k].startswith("refused") for k in refused), js
    assert js["leave-global"].startswith("refused") and js["leave-prototype"].startswith("refused"), js
    assert all(py[k].startswith("refused") for k in ("open", "os", "socket", "subprocess", "format")), py
    assert all(py[k].startswith("refused") for k in ("globals", "getattr", "datetime.sys")), py
    assert py["json.decoder"] == "got None", py  # modules are seen without their submodules
    assert leftovers[0] == {"global": "undefined", "prototype": "undefined"} and leftovers[1] == {"seen": None}


# -- governance --------------------------------------------------------------------------------


async def test_governance_refuses_naming_the_setting_and_the_file_wins_over_the_environment(tmp_path: Path) -> None:
    file, _ = write_cases(tmp_path, {"enabled": False})
    refused = await naftiko_call(str(file), "cases.shape-js", "--json", '{"items": [1]}')
    assert not refused["ok"] and "management.scripting.enabled: false" in refused["message"], refused
    file, _ = write_cases(tmp_path)
    by_env = await naftiko_call(
        str(file), "cases.shape-py", "--json", '{"items": [1]}', env={"NAFTIKO_SCRIPTING": "false"}
    )
    assert not by_env["ok"] and "NAFTIKO_SCRIPTING=false" in by_env["message"], by_env
    file, _ = write_cases(tmp_path, {"enabled": True})
    allowed = await naftiko_call(
        str(file), "cases.shape-py", "--json", '{"items": [1]}', env={"NAFTIKO_SCRIPTING": "false"}
    )
    assert allowed["ok"] and allowed["body"]["result"]["total"] == 2, allowed

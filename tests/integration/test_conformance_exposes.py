"""Official alpha2 examples: REST `forward` resources, the control port, the skill catalogue.

In process: real aiohttp servers on 127.0.0.1, a recording fake upstream (SEMANTICS §4.6, §7.1, §7.2).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.server import PlanError, Runtime, plan
from naftiko.spec.document import load_document
from support import FakeUpstream, Serving, free_port, shared_path


def official(name: str) -> Path:
    return shared_path("conformance", "official", name)


def compile_file(path: Path, **options):
    return compile_capability(load_document(path), CompileOptions(**options))


async def start(port_plan) -> Serving:
    server = Serving(port_plan)
    await server.start_server()
    return server


async def call(method: str, url: str | URL, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


def base_of(server: Serving) -> str:
    return str(server.make_url("")).rstrip("/")


# -- forward ---------------------------------------------------------------------------------


@pytest.fixture
async def forward_value(upstream: FakeUpstream) -> AsyncIterator[str]:
    capability = compile_file(
        official("http-forward-value-capability.yaml"), upstreams={"external": upstream.url + "/v1"}
    )
    [port_plan] = plan([capability])
    server = await start(port_plan)
    yield base_of(server)
    await server.close()
    await capability.close()


@pytest.fixture
async def register(upstream: FakeUpstream) -> AsyncIterator[str]:
    capability = compile_file(
        official("register.capability.yml"), upstreams={"notion": upstream.url + "/rest/Notion+API/1.0.0"}
    )
    [port_plan] = plan([capability])
    server = await start(port_plan)
    yield base_of(server)
    await server.close()
    await capability.close()


async def test_forward_adds_consume_level_headers_and_keeps_the_query(
    forward_value: str, upstream: FakeUpstream
) -> None:
    upstream.respond = lambda request, body: web.Response(status=201, text="<ok/>", content_type="application/xml")
    status, headers, body = await call(
        "GET", f"{forward_value}/forward/users/42?q=a+b&q=c&page=2", headers={"X-Other": "drop me"}
    )
    assert (status, body) == (201, b"<ok/>")
    assert headers["Content-Type"].startswith("application/xml")
    [seen] = upstream.requests
    assert (seen.method, seen.path) == ("GET", "/v1/users/42")
    assert seen.query == [("q", "a b"), ("q", "c"), ("page", "2")]
    assert seen.headers["X-API-Version"] == "2026-03-03"
    assert seen.headers["X-API-Key"] == "secret-key-123"
    assert "X-Other" not in seen.headers


async def test_forward_passes_method_body_and_only_trusted_headers_with_consume_auth(
    register: str, upstream: FakeUpstream
) -> None:
    upstream.respond = lambda request, body: web.json_response({"object": "user"}, status=200)
    status, _, body = await call(
        "PATCH",
        f"{register}/notion/v1/users/me",
        data=b'{"name":"x"}',
        headers={
            "Notion-Version": "2022-06-28",
            "X-Untrusted": "no",
            "Authorization": "Bearer caller",
            "Content-Type": "application/json",
        },
    )
    assert (status, body) == (200, b'{"object": "user"}')
    [seen] = upstream.requests
    assert (seen.method, seen.path, seen.body) == ("PATCH", "/rest/Notion+API/1.0.0/v1/users/me", b'{"name":"x"}')
    assert seen.headers["Notion-Version"] == "2022-06-28"
    assert "X-Untrusted" not in seen.headers
    assert (
        seen.headers["Authorization"] == "Basic c2NvdHQ6dGlnZXI="
    )  # the consume's basic auth, never the caller's token


async def test_forward_passes_upstream_errors_through(register: str, upstream: FakeUpstream) -> None:
    upstream.respond = lambda request, body: web.Response(status=503, text="busy", content_type="text/plain")
    status, headers, body = await call("POST", f"{register}/notion/pages")
    assert (status, body) == (503, b"busy") and headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path", ["/notion/v1/%2e%2e/secret", "/notion/v1/../../x", "/notion/v1//x", "/notion/", "/notion/a/%00"]
)
async def test_forward_refuses_paths_that_could_escape(register: str, upstream: FakeUpstream, path: str) -> None:
    status, headers, _ = await call("GET", URL(register + path, encoded=True))
    assert status in (400, 404)
    assert headers["Content-Type"].startswith("application/problem+json")
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("target", "headers"),
    [("/notion/v1/users?id=%FF", {}), ("/notion/v1/users", {"Notion-Version": "\udcff"})],
    ids=["query", "header"],
)
async def test_forward_refuses_bytes_that_are_not_utf8(
    register: str, upstream: FakeUpstream, target: str, headers: dict[str, str]
) -> None:
    port = int(register.rsplit(":", 1)[1])
    lines = [b"GET " + target.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name.encode() + b": " + value.encode("utf-8", "surrogateescape") for name, value in headers.items()]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"application/problem+json" in answer
    assert upstream.requests == []


async def test_forward_keeps_encoded_slashes_and_cannot_change_the_host(register: str, upstream: FakeUpstream) -> None:
    await call("GET", URL(register + "/notion/a%2Fb/http:%2F%2Fevil.example/@x", encoded=True))
    [seen] = upstream.requests
    assert seen.path == "/rest/Notion+API/1.0.0/a%2Fb/http:%2F%2Fevil.example/@x"


async def test_forward_unreachable_upstream_is_a_problem() -> None:
    capability = compile_file(
        official("register.capability.yml"), upstreams={"notion": f"http://127.0.0.1:{free_port()}"}
    )
    server = await start(plan([capability])[0])
    try:
        status, headers, _ = await call("GET", base_of(server) + "/notion/users/me")
        assert status == 502 and headers["Content-Type"].startswith("application/problem+json")
    finally:
        await server.close()
        await capability.close()


async def test_forward_to_an_unknown_namespace_fails_at_plan(tmp_path: Path) -> None:
    text = (
        official("http-forward-value-capability.yaml")
        .read_text()
        .replace("targetNamespace: external", "targetNamespace: nowhere")
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match="nowhere"):
        plan([compile_file(path)])


# -- control ---------------------------------------------------------------------------------


async def _runtime(*files: Path, **options) -> tuple[Runtime, dict[str, str], list]:
    capabilities = [compile_file(f, **options) for f in files]
    ports = {}
    for capability in capabilities:
        for exposure in capability.exposures:
            ports[exposure.namespace or exposure.kind] = free_port()
    runtime = Runtime()
    await runtime.start(plan(capabilities, "127.0.0.1", ports))
    urls = {key: f"http://127.0.0.1:{port}" for key, port in ports.items()}
    return runtime, urls, capabilities


async def test_control_port_health_status_and_metrics(upstream: FakeUpstream) -> None:
    runtime, urls, capabilities = await _runtime(
        official("control-capability.yaml"), official("register.capability.yml"), upstreams={"notion": upstream.url}
    )
    try:
        control = urls["control"]
        await call("GET", urls["documentation"] + "/notion/users/me")
        status, _, body = await call("GET", control + "/health/live")
        assert (status, body) == (200, b'{"status": "UP"}')
        status, _, body = await call("GET", control + "/health/ready")
        ready = json.loads(body)
        assert status == 200 and ready["status"] == "UP"
        assert {(a["type"], a.get("namespace"), a["state"]) for a in ready["adapters"]} == {
            ("control", None, "started"),
            ("rest", "documentation", "started"),
        }
        status, _, body = await call("GET", control + "/status")
        info = json.loads(body)
        assert status == 200
        assert info["capability"] == {"label": "Control Port Test Capability", "specVersion": "1.0.0-alpha2"}
        assert {c["label"] for c in info["capabilities"]} == {"Control Port Test Capability", "register"}
        assert info["uptime"].startswith("PT") and info["engine"]["version"]
        assert {a["port"] for a in info["adapters"]} == {int(u.rsplit(":", 1)[1]) for u in urls.values()}
        status, headers, body = await call("GET", control + "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        text = body.decode()
        assert "naftiko_capability_active 2" in text
        port = urls["documentation"].rsplit(":", 1)[1]
        assert f'naftiko_requests_total{{port="{port}",method="GET",route="/notion/{{path}}",status="200"}} 1' in text
        status, _, body = await call("GET", control + "/traces")  # traces.local defaults to enabled
        assert status == 200 and json.loads(body)["bufferSize"] == 50
        assert (await call("GET", control + "/scripting"))[0] == 404  # no scripting block
        assert (await call("POST", control + "/health/live"))[0] == 405
    finally:
        await runtime.stop()
        for capability in capabilities:
            await capability.close()


async def test_control_observability_disabled_has_no_metrics_or_traces() -> None:
    runtime, urls, _ = await _runtime(official("control-observability-disabled.yaml"))
    try:
        control = urls["control"]
        assert (await call("GET", control + "/health/live"))[0] == 200
        assert (await call("GET", control + "/status"))[0] == 200
        assert (await call("GET", control + "/metrics"))[0] == 404
        assert (await call("GET", control + "/traces"))[0] == 404
    finally:
        await runtime.stop()


async def test_control_scripting_settings_and_no_status_without_info() -> None:
    runtime, urls, _ = await _runtime(official("control-scripting-capability.yaml"))
    try:
        control = urls["control"]
        status, _, body = await call("GET", control + "/scripting")
        settings = json.loads(body)
        assert status == 200
        assert (
            settings["defaultLanguage"] == "javascript"
            and settings["timeout"] == 3000
            and settings["statementLimit"] == 50000
        )
        assert settings["allowedLanguages"] == ["javascript", "python"] and settings["available"] is True
        assert (await call("GET", control + "/status"))[0] == 404  # management.info defaults to false
        assert (await call("GET", control + "/metrics"))[0] == 200
    finally:
        await runtime.stop()


def test_plan_keeps_one_kind_per_port() -> None:
    capabilities = [compile_file(official("control-capability.yaml")), compile_file(official("skill-capability.yaml"))]
    kinds = sorted(p.kind for p in plan(capabilities))
    assert kinds == ["control", "rest", "skill"]
    with pytest.raises(PlanError, match="claimed by"):
        plan(capabilities, ports={"control": 9097})


# -- skill -----------------------------------------------------------------------------------


async def _skill_server(path: Path) -> tuple[Serving, object]:
    capability = compile_file(path, dry_run=True)
    [skill_plan] = [p for p in plan([capability]) if p.kind == "skill"]
    return await start(skill_plan), capability


async def test_skill_catalog_and_detail() -> None:
    server, _ = await _skill_server(official("skill-capability.yaml"))
    try:
        base = base_of(server)
        status, _, body = await call("GET", base + "/skills")
        catalog = json.loads(body)
        assert status == 200 and catalog["count"] == 2
        assert [s["name"] for s in catalog["skills"]] == ["order-management", "onboarding-guide"]
        assert catalog["skills"][0]["tools"] == ["list-orders", "order-guide"]
        status, _, body = await call("GET", base + "/skills/order-management")
        detail = json.loads(body)
        assert status == 200
        assert detail["allowed-tools"] == "list-orders" and detail["argument-hint"] == "Use for order operations"
        assert detail["user-invocable"] is True and detail["disable-model-invocation"] is False
        derived, instruction = detail["tools"]
        assert derived["type"] == "derived"
        assert derived["invocationRef"] == {"targetNamespace": "orders-rest", "action": "list-orders", "mode": "rest"}
        assert instruction == {
            "name": "order-guide",
            "description": "Guide for working with orders",
            "type": "instruction",
            "instruction": "order-guide.md",
        }
        assert (await call("GET", base + "/skills/nope"))[0] == 404
        assert (await call("GET", base + "/skills/onboarding-guide/contents"))[0] == 404  # no location
    finally:
        await server.close()


async def test_step8_skill_groups_point_at_mcp_tools() -> None:
    server, _ = await _skill_server(official("step-8-shipyard-skill-groups.yml"))
    try:
        base = base_of(server)
        catalog = json.loads((await call("GET", base + "/skills"))[2])
        assert catalog["count"] == 2 and [s["name"] for s in catalog["skills"]] == ["fleet-ops", "voyage-ops"]
        detail = json.loads((await call("GET", base + "/skills/voyage-ops"))[2])
        [tool] = detail["tools"]
        assert tool["type"] == "derived" and tool["invocationRef"] == {
            "targetNamespace": "shipyard-tools",
            "action": "create-voyage",
            "mode": "mcp",
        }
    finally:
        await server.close()


async def test_skill_contents_file_and_download(tmp_path: Path) -> None:
    folder = tmp_path / "order-management"
    (folder / "docs").mkdir(parents=True)
    (folder / "order-guide.md").write_text("# Orders\n")
    (folder / "docs" / "more.txt").write_text("more")
    (tmp_path / "secret.txt").write_text("outside")
    text = (
        official("skill-capability.yaml")
        .read_text()
        .replace("file:///tmp/naftiko-test-skills/order-management", folder.as_uri())
    )
    path = tmp_path / "skills.yaml"
    path.write_text(text)
    server, _ = await _skill_server(path)
    try:
        base = base_of(server) + "/skills/order-management"
        listing = json.loads((await call("GET", base + "/contents"))[2])
        assert listing["files"] == ["docs/more.txt", "order-guide.md"]
        status, headers, body = await call("GET", base + "/contents/order-guide.md")
        assert (status, body) == (200, b"# Orders\n") and headers["Content-Type"].startswith("text/markdown")
        assert (await call("GET", base + "/contents/docs/more.txt"))[2] == b"more"
        assert (await call("GET", URL(base + "/contents/%2e%2e/%2e%2e/secret.txt", encoded=True)))[0] == 404
        assert (await call("GET", URL(base + "/contents/..%2Fsecret.txt", encoded=True)))[0] == 404
        status, headers, body = await call("GET", base + "/download")
        assert status == 200 and headers["Content-Type"] == "application/zip"
        assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == ["docs/more.txt", "order-guide.md"]
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('sourceNamespace: "orders-rest"', 'sourceNamespace: "orders-skills"', "not a REST or MCP exposure"),
        (
            '          location: "file:///tmp/naftiko-test-skills/order-management"\n',
            "",
            "needs the skill to have a 'location'",
        ),
    ],
)
def test_skill_tools_are_checked_at_load(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = official("skill-capability.yaml").read_text()
    assert old in text
    path = tmp_path / "bad-skill.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(PlanError, match=message):
        plan([compile_file(path, dry_run=True)])


# -- naftiko run -----------------------------------------------------------------------------


def _naftiko_run(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "naftiko.cli", "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_run_serves_rest_skill_and_control_side_by_side() -> None:
    rest, skill, control = free_port(), free_port(), free_port()
    process = _naftiko_run(
        str(official("skill-capability.yaml")),
        str(official("control-capability.yaml")),
        "--port", f"orders-rest={rest}", "--port", f"orders-skills={skill}", "--port", f"control={control}",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{control}/health/ready", timeout=1) as response:
                    ready = json.loads(response.read())
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert sorted(a["port"] for a in ready["adapters"]) == sorted((rest, skill, control))
        with urllib.request.urlopen(f"http://127.0.0.1:{skill}/skills", timeout=5) as response:
            assert json.loads(response.read())["count"] == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_run_refuses_a_skill_pointing_at_no_exposure(tmp_path: Path) -> None:
    path = tmp_path / "bad-skill.yaml"
    path.write_text(
        official("skill-capability.yaml")
        .read_text()
        .replace('sourceNamespace: "orders-rest"', 'sourceNamespace: "nowhere"')
    )
    process = _naftiko_run(str(path), "--port", f"orders-rest={free_port()}", "--port", f"orders-skills={free_port()}")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "sourceNamespace 'nowhere'" in err


async def test_control_port_follows_a_reload(upstream: FakeUpstream) -> None:
    runtime, urls, capabilities = await _runtime(official("control-capability.yaml"))
    try:
        control_port = int(urls["control"].rsplit(":", 1)[1])
        extra = compile_file(official("register.capability.yml"), upstreams={"notion": upstream.url})
        capabilities.append(extra)
        rest_port = free_port()
        await runtime.apply(plan(capabilities, "127.0.0.1", {"control": control_port, "documentation": rest_port}))
        ready = json.loads((await call("GET", urls["control"] + "/health/ready"))[2])
        assert {a["port"] for a in ready["adapters"]} == {control_port, rest_port}
    finally:
        await runtime.stop()
        for capability in capabilities:
            await capability.close()


async def test_metric_labels_do_not_grow_with_the_paths_asked_for() -> None:
    server, _ = await _skill_server(official("skill-capability.yaml"))
    try:
        base = base_of(server)
        for path in (
            "/skills",
            "/skills/nope",
            "/skills/order-management/contents/a.md",
            "/skills/x/contents/b/c.md",
            "/random/1",
            "/random/2",
            "/skills/x/y/z",
        ):
            await call("GET", base + path)
        _, _, text = await call("GET", base + "/metrics")
        routes = set(re.findall(r'route="([^"]*)"', text.decode()))
        assert routes == {"/skills", "/skills/{name}", "/skills/{name}/contents/{file}", "(unmatched)"}
    finally:
        await server.close()

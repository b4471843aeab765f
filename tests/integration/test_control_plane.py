"""The control port's management plane (issue #17): /config, /config/validate, /config/reload,
/logs (levels and the SSE stream), /traces, /metrics, and its authentication.

Real servers on 127.0.0.1 (a Runtime wired as `naftiko run` wires it, and `naftiko run` itself
for the reload), a recording fake upstream, real SSE clients (aiohttp streaming reads), real
files rewritten on disk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from naftiko.engine.compile import CompileOptions
from naftiko.observability import logs as log_control
from naftiko.observability.trace_config import shown_url
from naftiko.run_command import _mcp_route_factory, load_capabilities
from naftiko.server import Runtime, plan
from naftiko.watch import Reloader
from support import FakeUpstream, free_port, status

TOKEN = "gateway-token-SECRET-789"  # the control port's bearer token (tests/conftest.py TEST_SECRETS)
UPSTREAM_KEY = "s3cr3t/value+0123456789=&x"  # URL-encoding and base64 both differ from the plain value
ENVIRON = {"CONTROL_TOKEN": TOKEN, "UPSTREAM_KEY": UPSTREAM_KEY}
AUTH = {"Authorization": f"Bearer {TOKEN}"}

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Control plane probe
binds:
  - namespace: env
    keys:
      CONTROL_TOKEN: CONTROL_TOKEN
      UPSTREAM_KEY: UPSTREAM_KEY
capability:
  consumes:
    - type: http
      namespace: items-api
      baseUri: https://items.example.com/v1
      authentication: {{type: apikey, key: X-Api-Key, value: '{{{{UPSTREAM_KEY}}}}', placement: header}}
      resources:
        - name: items
          path: /items/{{{{id}}}}
          operations:
            - name: get-item
              method: GET
  exposes:
    - type: rest
      namespace: items-rest
      port: 8080
      resources:
        - path: {route}
          operations:
            - method: GET
              name: get-item
              call: items-api.get-item
    - type: mcp
      namespace: items-mcp
      port: 9090
      tools:
        - name: get-item
          description: Get one item
          call: items-api.get-item
    - type: control
      port: 9191
      authentication:
        type: bearer
        token: '{{{{CONTROL_TOKEN}}}}'
      management:
        health: true
        info: true
        reload: true
        validate: true
        logs:
          stream: true
          max-subscribers: 2
"""


def capability(route: str = "/items/{{id}}") -> str:
    return CAPABILITY.format(route=route)


class Plane:
    """A runtime as `naftiko run FOLDER` builds it: capabilities of a folder on free ports, the
    reload wired to the control port."""

    def __init__(self, folder: Path, upstream: FakeUpstream):
        self.folder = folder
        self.options = CompileOptions(environ=ENVIRON, upstreams={"items-api": upstream.url})
        self.ports = {"items-rest": free_port(), "items-mcp": free_port(), "control": free_port()}
        self.runtime = Runtime(_mcp_route_factory())

    def planner(self, capabilities: Any) -> Any:
        return plan(capabilities, "127.0.0.1", self.ports)

    async def start(self) -> Plane:
        loaded = load_capabilities([str(self.folder)], self.options)
        await self.runtime.start(self.planner(list(loaded.values())))
        self.reloader = Reloader([str(self.folder)], self.options, self.runtime, self.planner, loaded)
        self.runtime.plane.reload = self.reloader.reload_all
        return self

    async def stop(self) -> None:
        await self.runtime.stop()
        for capability in self.reloader.capabilities.values():
            await capability.close()

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    @property
    def control(self) -> str:
        return self.url("control")


async def call(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


@pytest.fixture
async def plane(tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[Plane]:
    upstream.respond = lambda request, body: web.json_response({"id": request.path.rsplit("/", 1)[1]})
    (tmp_path / "items.yaml").write_text(capability())
    served = await Plane(tmp_path, upstream).start()
    yield served
    await served.stop()


@pytest.fixture(autouse=True)
def restore_log_levels() -> Iterator[None]:
    """Levels set through the control port are process-wide: each test starts from inherited ones."""
    yield
    for name in log_control.known_loggers():
        if name != log_control.ROOT:
            logging.getLogger(name).setLevel(logging.NOTSET)


# -- authentication ----------------------------------------------------------------------------

MANAGEMENT = [
    ("GET", "/status"),
    ("GET", "/config"),
    ("POST", "/config/validate"),
    ("POST", "/config/reload"),
    ("GET", "/logs"),
    ("GET", "/logs/naftiko"),
    ("PUT", "/logs/naftiko"),
    ("GET", "/logs/stream"),
    ("GET", "/metrics"),
    ("GET", "/traces"),
    ("GET", "/traces/0123"),
    ("GET", "/no-such-route"),
]


async def test_every_management_route_refuses_without_credentials_but_probes_stay_open(plane: Plane) -> None:
    for method, path in MANAGEMENT:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Basic {base64.b64encode(TOKEN.encode()).decode()}"},
        ):
            status, answer_headers, body = await call(
                method, plane.control + path, headers=headers, data=b'{"level": "ERROR"}'
            )
            assert status == 401, (method, path, headers)
            assert answer_headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in body.decode() and TOKEN not in json.dumps(answer_headers)
    assert logging.getLogger("naftiko").level != logging.ERROR  # the refused PUT changed nothing
    for path in ("/health/live", "/health/ready"):
        status, _, body = await call("GET", plane.control + path)
        assert status == 200 and json.loads(body)["status"] == "UP"
    status, _, _ = await call("GET", plane.control + "/status", headers=AUTH)
    assert status == 200


async def test_status_says_whether_tracing_is_on_and_how(plane: Plane) -> None:
    status, _, body = await call("GET", plane.control + "/status", headers=AUTH)
    assert status == 200
    # a control exposure observes by default (schema: observability.enabled defaults to true):
    # the ring buffer fills, nothing is exported without an endpoint
    assert json.loads(body)["otel"] == {
        "status": "active",
        "sampler": "parentbased_traceidratio",
        "sampling": 1.0,
        "propagators": ["tracecontext"],
        "exporter": None,
        "localBufferSize": 100,
    }


def test_an_exporter_url_is_shown_without_userinfo_or_query() -> None:
    assert shown_url("https://user:pa55@collector:4318/v1/traces?key=k3y") == "https://collector:4318/v1/traces"
    assert shown_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


async def test_a_web_page_elsewhere_cannot_change_anything_even_with_credentials(plane: Plane) -> None:
    status, _, _ = await call(
        "POST", plane.control + "/config/reload", headers={**AUTH, "Origin": "https://evil.example"}
    )
    assert status == 403
    status, _, _ = await call(
        "PUT",
        plane.control + "/logs/naftiko",
        headers={**AUTH, "Origin": "https://evil.example"},
        json={"level": "ERROR"},
    )
    assert status == 403 and logging.getLogger("naftiko").level != logging.ERROR


# -- /config -----------------------------------------------------------------------------------


def secret_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        json.dumps(secret)[1:-1],
    ]


async def test_config_is_the_effective_configuration_with_no_secret_in_any_encoding(plane: Plane) -> None:
    status, headers, body = await call("GET", plane.control + "/config", headers=AUTH)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    text = body.decode()
    for secret in (TOKEN, UPSTREAM_KEY):
        for form in secret_forms(secret):
            assert form not in text, form
    config = json.loads(body)
    [served] = config["capabilities"]
    assert served["label"] == "Control plane probe" and served["file"].endswith("items.yaml")
    assert served["binds"] == {"CONTROL_TOKEN": "****", "UPSTREAM_KEY": "****"}
    [consumed] = served["consumes"]
    assert consumed["namespace"] == "items-api" and consumed["baseUri"] == "https://items.example.com/v1"
    assert consumed["upstream"].startswith("http://127.0.0.1:")  # the --upstream override
    assert consumed["authentication"] == {"type": "apikey"}
    assert consumed["operations"] == [{"name": "get-item", "method": "GET", "path": "/items/{id}"}]
    exposes = {e["type"]: e for e in served["exposes"]}
    assert exposes["rest"]["operations"] == [{"name": "get-item", "method": "GET", "calls": "items-api.get-item"}]
    assert exposes["mcp"]["tools"] == [{"name": "get-item", "calls": "items-api.get-item"}]
    assert (
        exposes["control"]["authentication"] == {"type": "bearer"}
        and exposes["control"]["management"]["reload"] is True
    )
    ports = {p["type"]: p for p in config["ports"]}
    assert {p["port"] for p in config["ports"]} == set(plane.ports.values())
    assert ports["rest"]["namespaces"] == ["items-rest"] and ports["mcp"]["state"] == "started"


def test_config_scrubs_secrets_that_slip_into_any_string() -> None:
    from naftiko.exposes.control_config import redact
    from naftiko.exposes.control_config import secret_forms as forms

    value = {
        "a": f"https://user:pw@host/x?k={quote(UPSTREAM_KEY, safe='')}",
        "b": [base64.b64encode(UPSTREAM_KEY.encode()).decode()],
    }
    text = json.dumps(redact(value, forms([UPSTREAM_KEY])))
    assert "user:pw" not in text and UPSTREAM_KEY not in text and quote(UPSTREAM_KEY, safe="") not in text
    assert base64.b64encode(UPSTREAM_KEY.encode()).decode() not in text


async def test_config_is_not_served_without_info(tmp_path: Path, upstream: FakeUpstream) -> None:
    (tmp_path / "items.yaml").write_text(capability().replace("        info: true\n", ""))
    served = await Plane(tmp_path, upstream).start()
    try:
        assert (await call("GET", served.control + "/config", headers=AUTH))[0] == 404
        assert (await call("GET", served.control + "/status", headers=AUTH))[0] == 404
    finally:
        await served.stop()


# -- /config/validate --------------------------------------------------------------------------

BROKEN = capability().replace(
    "              call: items-api.get-item\n    - type: mcp", "              call: items-api.nowhere\n    - type: mcp"
)


def validate_cli(path: Path) -> list[dict[str, Any]]:
    process = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "validate", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    [report] = json.loads(process.stdout)
    return report["errors"]


async def test_validate_accepts_a_good_document_and_changes_nothing(plane: Plane) -> None:
    before = (await call("GET", plane.control + "/config", headers=AUTH))[2]
    document = capability("/other/{{id}}")
    status, headers, body = await call(
        "POST", plane.control + "/config/validate", headers={**AUTH, "Content-Type": "application/yaml"}, data=document
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"valid": True, "errors": [], "warnings": json.loads(body)["warnings"]}
    assert (await call("GET", plane.control + "/config", headers=AUTH))[2] == before
    assert (await call("GET", plane.url("items-rest", "/other/1")))[0] == 404  # not served: validated only
    assert (plane.folder / "items.yaml").read_text() == capability()


async def test_validate_reads_imports_from_beside_the_served_file(plane: Plane) -> None:
    """An import is relative to where the document would live: the served capability's folder."""
    shared = plane.folder.parent / "shared-consumes.yaml"
    consumes = CAPABILITY.split("  consumes:\n", 1)[1].split("  exposes:\n", 1)[0].format()
    shared.write_text("consumes:\n" + textwrap.indent(textwrap.dedent(consumes), "  "), encoding="utf-8")
    head, tail = capability("/other/{{id}}").split("  consumes:\n", 1)
    document = (
        head
        + "  consumes:\n    - {location: ../shared-consumes.yaml, import: items-api}\n"
        + ("  exposes:\n" + tail.split("  exposes:\n", 1)[1])
    )
    headers = {**AUTH, "Content-Type": "application/yaml"}
    status, _, body = await call("POST", plane.control + "/config/validate", headers=headers, data=document)
    assert status == 200, body
    missing = document.replace("../shared-consumes.yaml", "../absent.yaml")
    status, _, body = await call("POST", plane.control + "/config/validate", headers=headers, data=missing)
    assert status == 422 and "cannot read imported consumes ../absent.yaml" in body.decode()


async def test_validate_reports_errors_at_their_line_and_column_as_the_cli_does(plane: Plane, tmp_path: Path) -> None:
    status, headers, body = await call(
        "POST", plane.control + "/config/validate", headers={**AUTH, "Content-Type": "application/yaml"}, data=BROKEN
    )
    assert status == 422 and headers["Content-Type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["valid"] is False and problem["status"] == 422
    on_disk = tmp_path / "cli" / "broken.yaml"
    on_disk.parent.mkdir()
    on_disk.write_text(BROKEN)
    expected = validate_cli(on_disk)
    assert expected and problem["errors"] == expected
    assert all({"line", "column", "message"} <= set(e) for e in problem["errors"])
    assert any("nowhere" in e["message"] for e in problem["errors"])


async def test_validate_refuses_what_is_not_yaml_too_large_or_another_media_type(plane: Plane) -> None:
    yaml_headers = {**AUTH, "Content-Type": "application/yaml"}
    status, headers, body = await call(
        "POST", plane.control + "/config/validate", headers=yaml_headers, data=b"naftiko: [unclosed\n  - {"
    )
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    assert json.loads(body)["errors"][0]["line"] >= 1
    status, headers, _ = await call(
        "POST", plane.control + "/config/validate", headers=yaml_headers, data=b"\xff\xfe binary"
    )
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    status, headers, _ = await call("POST", plane.control + "/config/validate", headers=yaml_headers, data=b"")
    assert status == 400
    status, headers, _ = await call(
        "POST", plane.control + "/config/validate", headers={**AUTH, "Content-Type": "image/png"}, data=b"x: 1"
    )
    assert status == 415
    status, headers, body = await call(
        "POST", plane.control + "/config/validate", headers=yaml_headers, data=b"a: b\n" * (1024 * 1024)
    )
    assert status == 413 and headers["Content-Type"].startswith("application/problem+json")
    assert (await call("GET", plane.control + "/config/validate", headers=AUTH))[0] == 405


# -- /config/reload ----------------------------------------------------------------------------


async def test_reload_serves_the_files_on_disk_and_refuses_broken_ones_while_the_old_keep_serving(plane: Plane) -> None:
    rest = plane.url("items-rest")
    assert (await call("GET", rest + "/items/1"))[0] == 200
    (plane.folder / "items.yaml").write_text(capability("/things/{{id}}"))
    status, _, body = await call("POST", plane.control + "/config/reload", headers=AUTH)
    assert status == 200, body
    assert json.loads(body)["status"] == "reloaded"
    assert (await call("GET", rest + "/things/1"))[0] == 200  # served as soon as the answer came
    assert (await call("GET", rest + "/items/1"))[0] == 404

    (plane.folder / "items.yaml").write_text(
        BROKEN.replace(
            "/items/{{id}}\n          operations:\n            - method",
            "/broken/{{id}}\n          operations:\n            - method",
        )
    )
    status, headers, body = await call("POST", plane.control + "/config/reload", headers=AUTH)
    assert status == 422 and headers["Content-Type"].startswith("application/problem+json")
    errors = json.loads(body)["errors"]
    assert errors and all(e["file"].endswith("items.yaml") and e["line"] > 1 for e in errors)
    assert (await call("GET", rest + "/things/1"))[0] == 200  # the previous configuration keeps serving
    assert (await call("GET", rest + "/broken/1"))[0] == 404

    (plane.folder / "second.yaml").write_text(capability("/things/{{id}}").replace("Control plane probe", "Second"))
    (plane.folder / "items.yaml").write_text(capability("/things/{{id}}"))
    status, _, body = await call("POST", plane.control + "/config/reload", headers=AUTH)
    assert (
        status == 409 and "/things/{id}" in json.loads(body)["errors"][0]["message"]
    )  # the same route twice on one port
    assert (await call("GET", rest + "/things/1"))[0] == 200


async def test_requests_in_flight_finish_normally_across_a_reload(tmp_path: Path) -> None:
    gate, arrived = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await gate.wait()
        return web.json_response({"slow": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    slow_upstream = TestServer(app, host="127.0.0.1")
    await slow_upstream.start_server()
    (tmp_path / "items.yaml").write_text(capability())
    served = await Plane(tmp_path, FakeUpstream(url=str(slow_upstream.make_url("")).rstrip("/"))).start()
    try:
        in_flight = asyncio.get_running_loop().create_task(call("GET", served.url("items-rest", "/items/slow")))
        await asyncio.wait_for(arrived.wait(), 5)
        (tmp_path / "items.yaml").write_text(capability("/things/{{id}}"))
        status, _, _ = await call("POST", served.control + "/config/reload", headers=AUTH)
        assert status == 200
        gate.set()
        status, _, body = await asyncio.wait_for(in_flight, 10)
        assert (status, json.loads(body)) == (200, {"slow": True})  # answered by the version it started on
    finally:
        await served.stop()
        await slow_upstream.close()


async def test_reload_needs_a_process_that_can_read_its_files_again(tmp_path: Path, upstream: FakeUpstream) -> None:
    (tmp_path / "items.yaml").write_text(capability())
    served = await Plane(tmp_path, upstream).start()
    served.runtime.plane.reload = None
    try:
        assert (await call("POST", served.control + "/config/reload", headers=AUTH))[0] == 503
    finally:
        await served.stop()


def test_naftiko_run_reloads_on_post_without_watching(tmp_path: Path) -> None:
    control, rest = free_port(), free_port()
    path = tmp_path / "items.yaml"
    path.write_text(capability())
    environment = {**os.environ, **ENVIRON}
    process = subprocess.Popen(
        [sys.executable, "-m", "naftiko.cli", "run", "--dry-run", str(path), "--port", f"control={control}", "--port", f"items-rest={rest}", "--port", f"items-mcp={free_port()}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{control}/health/live", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        path.write_text(capability("/things/{{id}}"))
        time.sleep(1.2)  # a file on its own is not watched: nothing changes until asked
        assert status(f"http://127.0.0.1:{rest}/things/1") == 404
        request = urllib.request.Request(f"http://127.0.0.1:{control}/config/reload", method="POST", headers=AUTH)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        assert status(f"http://127.0.0.1:{rest}/things/1") == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and TOKEN not in err


# -- /logs -------------------------------------------------------------------------------------


async def test_log_levels_are_listed_read_and_set(plane: Plane) -> None:
    status, _, body = await call("GET", plane.control + "/logs", headers=AUTH)
    listed = {entry["name"]: entry for entry in json.loads(body)["loggers"]}
    assert status == 200 and {"naftiko", "naftiko.access"} <= set(listed)
    assert listed["naftiko.access"]["level"] is None  # inherited
    status, _, body = await call("PUT", plane.control + "/logs/naftiko.access", headers=AUTH, json={"level": "error"})
    assert status == 200 and json.loads(body) == {"name": "naftiko.access", "level": "ERROR", "effectiveLevel": "ERROR"}
    assert logging.getLogger("naftiko.access").level == logging.ERROR
    status, _, body = await call("GET", plane.control + "/logs/naftiko.access", headers=AUTH)
    assert json.loads(body)["level"] == "ERROR"
    status, _, body = await call("PUT", plane.control + "/logs/naftiko.access", headers=AUTH, json={"level": None})
    assert status == 200 and json.loads(body)["level"] is None
    assert (await call("GET", plane.control + "/logs/nobody.here", headers=AUTH))[0] == 404
    assert (await call("PUT", plane.control + "/logs/nobody.here", headers=AUTH, json={"level": "ERROR"}))[0] == 404
    assert (await call("PUT", plane.control + "/logs/naftiko", headers=AUTH, json={"level": "LOUD"}))[0] == 400
    assert (await call("PUT", plane.control + "/logs/naftiko", headers=AUTH, data=b"not json"))[0] == 400
    assert (await call("DELETE", plane.control + "/logs/naftiko", headers=AUTH))[0] == 405


class EventStream:
    """A real SSE client: an aiohttp response read line by line."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("the stream ended")
                if line.startswith("data: "):
                    return json.loads(line[6:])

        return await asyncio.wait_for(read(), timeout)

    async def find(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next_event(max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event


async def open_stream(session: aiohttp.ClientSession, plane: Plane) -> EventStream:
    response = await session.get(plane.control + "/logs/stream", headers=AUTH)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return EventStream(response)


async def test_the_log_stream_carries_each_request_line_and_runtime_records(plane: Plane) -> None:
    async with aiohttp.ClientSession() as session:
        stream = await open_stream(session, plane)
        await call("GET", plane.url("items-rest", "/items/7"), headers={"X-Request-Id": "probe-request-1"})
        line = await stream.find(lambda e: e.get("requestId") == "probe-request-1")
        assert line["logger"] == "naftiko.access" and line["level"] == "INFO"
        assert (line["method"], line["route"], line["status"], line["upstreamStatus"]) == (
            "GET",
            "/items/{id}",
            200,
            200,
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
        assert re.fullmatch(r"[0-9a-f]{32}", line["traceId"]) and re.fullmatch(
            r"[0-9a-f]{16}", line["spanId"]
        )  # traced: a control port is there
        logging.getLogger("naftiko").warning("a runtime record for the stream")
        record = await stream.find(lambda e: e.get("message") == "a runtime record for the stream")
        assert (record["logger"], record["level"]) == ("naftiko", "WARNING")

        await call("PUT", plane.control + "/logs/naftiko.access", headers=AUTH, json={"level": "WARNING"})
        await call("GET", plane.url("items-rest", "/items/8"), headers={"X-Request-Id": "probe-request-2"})
        await asyncio.sleep(0.1)  # the access log asks for the level once per 50 ms batch
        await call("GET", plane.url("items-rest", "/items/9"), headers={"X-Request-Id": "probe-request-3"})
        logging.getLogger("naftiko").warning("marker after the quiet requests")
        seen = []
        event = await stream.next_event()
        while event.get("message") != "marker after the quiet requests":
            seen.append(event.get("requestId"))
            event = await stream.next_event()
        assert "probe-request-3" not in seen  # the access line obeys its logger's level
        stream.response.close()


async def test_the_access_line_names_the_server_span_that_traces_hold(plane: Plane) -> None:
    async with aiohttp.ClientSession() as session:
        stream = await open_stream(session, plane)
        await call("GET", plane.url("items-rest", "/items/7"), headers={"X-Request-Id": "traced-1"})
        line = await stream.find(lambda e: e.get("requestId") == "traced-1")
        stream.response.close()
    assert re.fullmatch(r"[0-9a-f]{32}", line["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", line["spanId"])
    status, _, body = await call("GET", plane.control + f"/traces/{line['traceId']}", headers=AUTH)
    assert status == 200
    [server_span] = [span for span in json.loads(body)["spans"] if span["kind"] == "SERVER"]
    assert server_span["spanId"] == line["spanId"]


async def test_streams_past_max_subscribers_get_429_and_a_closed_stream_frees_its_slot(plane: Plane) -> None:
    async with aiohttp.ClientSession() as first_session, aiohttp.ClientSession() as second_session:
        first = await open_stream(first_session, plane)
        await open_stream(second_session, plane)
        status, headers, body = await call("GET", plane.control + "/logs/stream", headers=AUTH)
        assert status == 429 and headers["Content-Type"].startswith("application/problem+json")
        assert json.loads(body)["status"] == 429
        first.response.close()
        deadline = time.monotonic() + 5
        while True:  # the server sees the closed connection and frees the slot
            async with aiohttp.ClientSession() as third_session:
                response = await third_session.get(plane.control + "/logs/stream", headers=AUTH)
                if response.status == 200:
                    response.close()
                    break
            assert time.monotonic() < deadline, "the closed stream's slot was never freed"
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 5
    while log_control.HUB.subscribers:  # every stream closed: nobody listens, the handler is gone
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert log_control.HUB._handler not in logging.getLogger("naftiko").handlers


async def test_a_stream_ends_when_the_server_stops(tmp_path: Path, upstream: FakeUpstream) -> None:
    (tmp_path / "items.yaml").write_text(capability())
    served = await Plane(tmp_path, upstream).start()
    async with aiohttp.ClientSession() as session:
        stream = await open_stream(session, served)
        started = time.monotonic()
        await served.stop()
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            while True:
                await stream.next_event(timeout=5)
        assert time.monotonic() - started < 5
    assert not log_control.HUB.subscribers


# -- /metrics ----------------------------------------------------------------------------------


async def mcp_call(url: str, tool: str, arguments: dict[str, Any]) -> int:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    async with aiohttp.ClientSession() as session:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        }
        async with session.post(url, json=init, headers=headers) as response:
            session_id = response.headers["Mcp-Session-Id"]
        payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        async with session.post(url, json=payload, headers={**headers, "Mcp-Session-Id": session_id}) as response:
            await response.read()
            return response.status


async def test_metrics_are_valid_prometheus_with_a_latency_series_per_rest_operation_and_mcp_tool(plane: Plane) -> None:
    for _ in range(3):
        assert (await call("GET", plane.url("items-rest", "/items/1")))[0] == 200
    assert await mcp_call(plane.url("items-mcp", "/mcp"), "get-item", {"id": "1"}) == 200
    for name in ("made-up-1", "made-up-2", "made-up-3"):
        await mcp_call(plane.url("items-mcp", "/mcp"), name, {})
    status, headers, body = await call("GET", plane.control + "/metrics", headers=AUTH)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    histogram = families["naftiko_request_duration_seconds"]
    assert histogram.type == "histogram"
    counts = {
        (s.labels["port"], s.labels["route"], s.labels.get("operation", "")): s.value
        for s in histogram.samples
        if s.name.endswith("_count")
    }
    rest_port, mcp_port = str(plane.ports["items-rest"]), str(plane.ports["items-mcp"])
    assert counts[(rest_port, "/items/{id}", "get-item")] == 3
    assert counts[(mcp_port, "/mcp", "get-item")] == 1
    assert counts[(mcp_port, "/mcp", "(unknown)")] == 3  # names callers make up share one series
    assert not any("made-up" in key[2] for key in counts)
    assert families["naftiko_requests"].type == "counter"
    assert families["naftiko_capability_active"].samples[0].value == 1


def test_one_lookup_a_request_and_rest_series_named_after_a_reload() -> None:
    from naftiko.exposes.metrics import Metrics

    class Route:
        def __init__(self, method: str, path: str, name: str):
            self.method, self.path = method, path
            self.target = type("T", (), {"name": name})()

    metrics = Metrics()
    metrics.describe([], [Route("GET", "/a/{id}", "first")])
    metrics.observe("GET", "/a/{id}", 200, 0.01, None)
    metrics.observe("GET", "/a/{id}", 200, 0.02, None)
    assert len(metrics.series) == 1
    assert 'operation="first"' in metrics.render()
    metrics.describe([], [Route("GET", "/a/{x}", "renamed")])
    assert 'operation="renamed"' in metrics.render() and 'operation="first"' not in metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(metrics.render())}
    [count] = [s for s in families["naftiko_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert count.value == 2


# -- /traces -----------------------------------------------------------------------------------


async def test_traces_list_the_recent_requests_and_one_trace_has_its_spans(plane: Plane) -> None:
    await call("GET", plane.url("items-rest", "/items/5"))
    deadline = time.monotonic() + 5
    while True:
        status, _, body = await call("GET", plane.control + "/traces", headers=AUTH)
        listed = json.loads(body)
        if listed["traces"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status == 200 and listed["bufferSize"] == 100 and listed["bufferUsed"] >= 1
    summary = listed["traces"][0]
    assert set(summary) == {"traceId", "operation", "durationMs", "status", "spanCount", "timestamp"}
    assert summary["operation"] == "GET /items/{id}" and summary["spanCount"] >= 2
    status, _, body = await call("GET", plane.control + f"/traces/{summary['traceId']}", headers=AUTH)
    trace = json.loads(body)
    assert status == 200 and trace["traceId"] == summary["traceId"]
    kinds = {span["kind"] for span in trace["spans"]}
    assert {"SERVER", "CLIENT"} <= kinds
    assert all({"spanId", "parentSpanId", "name", "kind"} <= set(span) for span in trace["spans"])
    filtered = json.loads((await call("GET", plane.control + "/traces?operation=nothing-like-it", headers=AUTH))[2])
    assert filtered["traces"] == []
    assert (await call("GET", plane.control + "/traces/" + "0" * 32, headers=AUTH))[0] == 404


def test_logs_settings_simple_and_advanced_forms() -> None:
    from naftiko.exposes.control_logs import DEFAULT_MAX_SUBSCRIBERS, LogSettings

    simple = LogSettings(True)
    assert simple.level_control and simple.stream and simple.max_subscribers == DEFAULT_MAX_SUBSCRIBERS
    assert not LogSettings(False).enabled and not LogSettings(None).enabled
    advanced = LogSettings({})
    assert advanced.level_control and not advanced.stream  # stream defaults to false in the object form
    chosen = LogSettings({"level-control": False, "stream": True, "max-subscribers": 3})
    assert not chosen.level_control and chosen.stream and chosen.max_subscribers == 3


async def test_logs_routes_are_absent_unless_asked_for(tmp_path: Path, upstream: FakeUpstream) -> None:
    (tmp_path / "items.yaml").write_text(
        capability().replace("        logs:\n          stream: true\n          max-subscribers: 2\n", "")
    )
    served = await Plane(tmp_path, upstream).start()
    try:
        for path in ("/logs", "/logs/naftiko", "/logs/stream"):
            assert (await call("GET", served.control + path, headers=AUTH))[0] == 404
    finally:
        await served.stop()

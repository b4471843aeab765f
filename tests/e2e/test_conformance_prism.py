"""Official alpha2 conformance, end to end: one test per row of the feature table in
conformance/official/README.md, each asserting what that row states.

The shipyard tutorials' upstreams are played by Prism serving the official mocks
(conformance/official/upstream-mocks/*.yaml): Prism answers with their default response
examples, enforces their security schemes (bearer for the registry, `X-Dock-Key` for the
dockyard) and validates every request (a request that breaks the document is logged as a
violation, which the tests check for). The public Microcks mock the tutorials were written
against ignores tokens, and a few official files send none (step 2, the namespace-qualified
step fixtures, the Mustache and nested-output fixtures); those are served by a copy of the
registry mock without its `security` requirement, everything else of the document unchanged.

Each file is compiled in process with its consumed namespaces pointed at Prism and invoked
through `Capability.invoke`; several rows also go through the real adapters (REST via
`PortServer` on a free port, MCP via `McpServer` + `mcp_routes` or `PortServer`).
Rows that call no upstream re-assert their key result in process (recording fake upstream
where a request must be inspected); their full coverage lives in tests/integration.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from naftiko.engine.capability import Capability
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import Success
from naftiko.exposes.mcp import McpServer, tool_annotations
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.server import plan
from naftiko.spec.diagnostics import CapabilityError
from naftiko.spec.document import load_document
from node_tools import node_tool
from processes import wait_http
from support import SHARED, FakeUpstream, Serving, free_port, mcp_serving

OFFICIAL = SHARED / "conformance" / "official"
if not OFFICIAL.is_dir():
    pytest.skip(f"{OFFICIAL} is not available (the ../shared reference folder is missing)", allow_module_level=True)
MOCKS = OFFICIAL / "upstream-mocks"
REGISTRY_MOCK = MOCKS / "naftiko-shipyard-maritime-registry-api.yaml"
LEGACY_MOCK = MOCKS / "naftiko-shipyard-legacy-dockyard-api.yaml"

NORTHERN_STAR = {"imo": "IMO-9321483", "name": "Northern Star", "type": "cargo", "flag": "NO", "status": "active"}
PACIFIC_DAWN = {"imo": "IMO-9456781", "name": "Pacific Dawn", "type": "tanker", "flag": "SG", "status": "maintenance"}
SPECS = {"yearBuilt": 2015, "tonnage": 42000, "length": 229}
CREW = [{"fullName": "Erik Lindström", "role": "captain"}, {"fullName": "Aiko Tanaka", "role": "cook"}]
SHIP_WITH_CREW = {**NORTHERN_STAR, **SPECS, "crew": CREW}
LEGACY = [
    {"vesselCode": "LEGACY-4012", "name": "Old Faithful", "type": "cargo", "flag": "GB", "status": "active"},
    {"vesselCode": "LEGACY-2087", "name": "Iron Maiden", "type": "bulk_carrier", "flag": "PA", "status": "laid_up"},
]
VOYAGE_REQUEST = {
    "shipImo": "IMO-9321483",
    "departurePort": "Oslo",
    "arrivalPort": "Singapore",
    "departureDate": "2026-04-10T08:00:00Z",
    "arrivalDate": "2026-05-02T14:00:00Z",
    "crewIds": ["CREW-001", "CREW-003"],
    "cargoIds": ["CARGO-2024-0451"],
}


# -- Prism, once per module -----------------------------------------------------------------------


@dataclass
class Prism:
    url: str
    log: Path
    process: subprocess.Popen

    def mark(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> str:
        time.sleep(0.05)  # Prism logs before it answers; let the write land
        return self.log.read_bytes()[mark:].decode("utf-8", "replace")

    def calls_since(self, mark: int) -> list[str]:
        """`METHOD /path` of each request received (Prism logs the path without its query)."""
        log = re.sub(r"\x1b\[[0-9;]*m", "", self.requests_since(mark))
        return [
            f"{m.upper()} {p}" for m, p in re.findall(r"\[HTTP SERVER\] (\w+) (\S+) \S+\s+info\s+Request received", log)
        ]

    def assert_clean_since(self, mark: int) -> None:
        log = self.requests_since(mark)
        # Request violations only: the dockyard mock's XML examples break its own array response schema.
        assert "did not pass the validation rules" not in log and "violation: request" not in log.lower(), log[-3000:]


@dataclass
class Upstreams:
    registry: Prism  # the registry mock verbatim: bearer required
    open_registry: Prism  # the same without `security` (the Microcks mock ignores tokens)
    legacy: Prism  # the dockyard mock verbatim: X-Dock-Key required


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    """Three Prism processes, started side by side once for the module (a sync fixture: no event loop)."""
    binary = node_tool("prism")
    if not REGISTRY_MOCK.exists() or not LEGACY_MOCK.exists():
        pytest.skip(f"{MOCKS} is not available (the ../shared reference folder is missing)")
    folder = tmp_path_factory.mktemp("prism")
    open_mock = yaml.safe_load(REGISTRY_MOCK.read_text())
    open_mock.pop("security", None)
    for item in open_mock["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    (folder / "registry-open.yaml").write_text(yaml.safe_dump(open_mock, sort_keys=False, allow_unicode=True))
    specs = {"registry": REGISTRY_MOCK, "open_registry": folder / "registry-open.yaml", "legacy": LEGACY_MOCK}
    started: dict[str, Prism] = {}
    try:
        for name, spec in specs.items():
            port, log = free_port(), folder / f"{name}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [binary, "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            started[name] = Prism(f"http://127.0.0.1:{port}", log, process)
        for name, mock in started.items():
            probe = "/vessels" if name == "legacy" else "/ships"
            wait_http(mock.url + probe, mock.process)  # any status will do (401 without credentials)
        yield Upstreams(**started)
    finally:
        for mock in started.values():
            mock.process.terminate()
            try:
                mock.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                mock.process.kill()
                mock.process.wait()


# -- helpers --------------------------------------------------------------------------------------


def compiled(name: str, upstreams: dict[str, str] | None = None, **options: Any) -> Capability:
    path = OFFICIAL / name
    if not path.exists():
        pytest.skip(f"{path} is not available (the ../shared reference folder is missing)")
    return compile_capability(load_document(path), CompileOptions(upstreams=upstreams or {}, environ={}, **options))


def shipyard(name: str, prism: Upstreams, open_registry: bool = False) -> Capability:
    registry = prism.open_registry if open_registry else prism.registry
    return compiled(name, {"registry": registry.url, "legacy": prism.legacy.url})


def target(capability: Capability, name: str, kind: str = "mcp"):
    [found] = [t for e in capability.exposures if e.kind == kind for t in e.targets if t.name == name]
    return found


async def invoke(capability: Capability, found, inputs: dict[str, Any]) -> Any:
    result = await capability.invoke(found, inputs)
    assert isinstance(result, Success), result
    return result.body


@asynccontextmanager
async def served(server: Serving) -> AsyncIterator[str]:
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def port_app(capability: Capability, kind: str) -> Serving:
    [port_plan] = [p for p in plan([capability]) if p.kind == kind]
    return Serving(port_plan)


def mcp_app(capability: Capability, with_auth: bool = False) -> Serving:
    """The MCP adapter of the capability's MCP exposures (`with_auth`: guarded by the exposure's `authentication`)."""
    exposures = [e for e in capability.exposures if e.kind == "mcp"]
    auth = exposures[0].auth if with_auth else None
    return mcp_serving(mcp_routes(McpServer([(capability, e) for e in exposures]), auth))


class Rpc:
    """Raw JSON-RPC over streamable HTTP (`POST /mcp`)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str | None = None):
        self.http, self.url = http, url
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    async def post(self, method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> tuple[int, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, **({"id": id} if id is not None else {})}
        if params is not None:
            message["params"] = params
        async with self.http.post(self.url, data=json.dumps(message), headers=self.headers) as response:
            if "Mcp-Session-Id" in response.headers:
                self.headers["Mcp-Session-Id"] = response.headers["Mcp-Session-Id"]
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def initialize(self) -> dict[str, Any]:
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "conformance", "version": "0"},
        }
        status, reply = await self.post("initialize", init, id=0)
        assert status == 200, reply
        await self.post("notifications/initialized", id=None)
        return reply["result"]

    async def __call__(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        status, reply = await self.post(method, params)
        assert status == 200 and "result" in reply, (status, reply)
        return reply["result"]


async def rest(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kwargs) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None)


# -- rows that call an upstream: Prism ------------------------------------------------------------


async def test_simple_mcp_call_with_query_param_path_param_array_object_shaping(prism: Upstreams) -> None:
    """step-2-shipyard-wiring.yml: `list-ships` array mapping, `get-ship` object mapping, optional `status`."""
    capability = shipyard("step-2-shipyard-wiring.yml", prism, open_registry=True)
    mark = prism.open_registry.mark()
    try:
        list_ships, get_ship = target(capability, "list-ships"), target(capability, "get-ship")
        assert [(f.name, f.required) for f in list_ships.inputs] == [("status", False)]
        assert await invoke(capability, list_ships, {}) == [NORTHERN_STAR, PACIFIC_DAWN]
        assert await invoke(capability, list_ships, {"status": "active"}) == [
            NORTHERN_STAR,
            PACIFIC_DAWN,
        ]  # static example
        assert await invoke(capability, get_ship, {"imo": "IMO-9321483"}) == NORTHERN_STAR
        async with served(mcp_app(capability)) as base, aiohttp.ClientSession() as http:
            rpc = Rpc(http, base + "/mcp")
            await rpc.initialize()
            tools = {t["name"]: t for t in (await rpc("tools/list"))["tools"]}
            assert (
                "required" not in tools["list-ships"]["inputSchema"]
                or "status" not in tools["list-ships"]["inputSchema"]["required"]
            )
            assert tools["get-ship"]["inputSchema"]["required"] == ["imo"]
            reply = await rpc("tools/call", {"name": "list-ships", "arguments": {}})
            assert reply["isError"] is False and json.loads(reply["content"][0]["text"]) == [
                NORTHERN_STAR,
                PACIFIC_DAWN,
            ]
        assert prism.open_registry.calls_since(mark) == [
            "GET /ships",
            "GET /ships",
            "GET /ships/IMO-9321483",
            "GET /ships",
        ]
        dry = compiled("step-2-shipyard-wiring.yml", {"registry": "http://127.0.0.1:9"}, dry_run=True)
        assert (await dry.invoke(target(dry, "list-ships"), {"status": "active"})).request[
            "url"
        ] == "http://127.0.0.1:9/ships?status=active"
        assert (await dry.invoke(target(dry, "list-ships"), {})).request[
            "url"
        ] == "http://127.0.0.1:9/ships"  # optional: omitted
        prism.open_registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_with_mustache_form(prism: Upstreams) -> None:
    """mcp-tool-handler-with-mustache-capability.yaml and nested-object-output-capability.yaml."""
    mark = prism.open_registry.mark()
    mustache = compiled("mcp-tool-handler-with-mustache-capability.yaml", {"registry": prism.open_registry.url})
    nested = compiled("nested-object-output-capability.yaml", {"registry": prism.open_registry.url})
    try:
        body = await invoke(mustache, target(mustache, "get-ship"), {"imo": "IMO-9321483"})
        assert (
            body["imo_number"] == "IMO-9321483" and body["vessel_name"] == "Northern Star"
        )  # no output shaping: the raw answer
        assert prism.open_registry.calls_since(mark) == ["GET /ships/IMO-9321483"]  # the path template fully resolved
        shaped = await invoke(nested, target(nested, "get-ship"), {"imo": "IMO-9321483"})
        assert shaped["specs"] == {
            "yearBuilt": 2015,
            "tonnage": 42000,
            "length": 229,
        }  # nested object resolved from the root
        assert shaped["name"] == "Northern Star" and shaped["status"] == "active"
        prism.open_registry.assert_clean_since(mark)
    finally:
        await mustache.close()
        await nested.close()


async def test_binds_from_file_bearer_on_consumes_consume_level_header_bearer_on_mcp_expose(prism: Upstreams) -> None:
    """step-3-shipyard-auth.yml: Prism requires the bearer; MCP requires `Bearer sk-mcp-YYYYYYYYYYYY`."""
    capability = shipyard("step-3-shipyard-auth.yml", prism)
    mark = prism.registry.mark()
    try:
        dry = compiled("step-3-shipyard-auth.yml", {"registry": "http://127.0.0.1:9"}, dry_run=True)
        request = (await dry.invoke(target(dry, "get-ship"), {"imo": "IMO-9321483"})).request
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["registry-version"] == "1.0.0-alpha2" and headers["authorization"].startswith("Bearer ")
        async with served(mcp_app(capability, with_auth=True)) as base, aiohttp.ClientSession() as http:
            anonymous = Rpc(http, base + "/mcp")
            status, _ = await anonymous.post(
                "initialize",
                {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}},
            )
            assert status == 401
            wrong = Rpc(http, base + "/mcp", token="sk-mcp-wrong")
            assert (await wrong.post("tools/list"))[0] == 401
            rpc = Rpc(http, base + "/mcp", token="sk-mcp-YYYYYYYYYYYY")
            await rpc.initialize()
            reply = await rpc("tools/call", {"name": "get-ship", "arguments": {"imo": "IMO-9321483"}})
            assert reply["isError"] is False, reply
            assert json.loads(reply["content"][0]["text"]) == NORTHERN_STAR  # Prism answered 200: the bearer was sent
        prism.registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_nested_object_output_deep_jsonpath(prism: Upstreams) -> None:
    """step-4-shipyard-output-shaping.yml: `specs.length` from `$.dimensions.length_overall`."""
    capability = shipyard("step-4-shipyard-output-shaping.yml", prism)
    mark = prism.registry.mark()
    try:
        body = await invoke(capability, target(capability, "get-ship"), {"imo": "IMO-9321483"})
        assert body == {**NORTHERN_STAR, "specs": SPECS} and body["specs"]["length"] == 229
        prism.registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_imported_consumes_two_binds_apikey_header_auth_xml_upstream(prism: Upstreams) -> None:
    """step-5-shipyard-multi-source.yml: `list-legacy-vessels` maps XML `$.vessel[*]`, X-Dock-Key required by Prism."""
    capability = shipyard("step-5-shipyard-multi-source.yml", prism)
    registry_mark, legacy_mark = prism.registry.mark(), prism.legacy.mark()
    try:
        assert await invoke(capability, target(capability, "list-legacy-vessels"), {}) == LEGACY
        assert (await invoke(capability, target(capability, "get-ship"), {"imo": "IMO-9321483"}))["specs"] == SPECS
        assert prism.legacy.calls_since(legacy_mark) == ["GET /vessels"]  # Prism answered 200: X-Dock-Key was sent
        prism.legacy.assert_clean_since(legacy_mark)
        prism.registry.assert_clean_since(registry_mark)
    finally:
        await capability.close()


async def test_write_operation_with_raw_json_body_template_and_array_params(prism: Upstreams) -> None:
    """step-6-shipyard-write-operations.yml: Prism validates the body (crewIds an array); no `with`; hints."""
    capability = shipyard("step-6-shipyard-write-operations.yml", prism)
    mark = prism.registry.mark()
    try:
        create = target(capability, "create-voyage")
        assert "with" not in create.spec  # the tool's argument names feed the consumed body directly
        [listed] = [
            t
            for t in McpServer([(capability, e) for e in capability.exposures if e.kind == "mcp"]).tool_list
            if t["name"] == "create-voyage"
        ]
        assert listed["annotations"] == {
            "readOnlyHint": False,
            "destructiveHint": False,
            "idempotentHint": False,
            "openWorldHint": True,
        }
        body = await invoke(capability, create, VOYAGE_REQUEST)
        assert body["voyageId"] == "VOY-2026-042" and body["status"] == "planned"
        assert body["crewIds"] == ["CREW-001", "CREW-003"] and set(body["route"]) == {"from", "to"}
        assert prism.registry.calls_since(mark) == ["POST /voyages"]
        prism.registry.assert_clean_since(
            mark
        )  # a body Prism found invalid (e.g. crewIds not an array) would be a violation
        dry = compiled(
            "step-6-shipyard-write-operations.yml",
            {"registry": "http://127.0.0.1:9", "legacy": "http://127.0.0.1:9"},
            dry_run=True,
        )
        sent = (await dry.invoke(target(dry, "create-voyage"), VOYAGE_REQUEST)).request["body"]
        sent = json.loads(sent) if isinstance(sent, str) else sent
        assert sent["crewIds"] == ["CREW-001", "CREW-003"]  # JSON-encoded array, not its text
    finally:
        await capability.close()


async def test_orchestration_call_call_lookup_mappings_skill_rest(prism: Upstreams) -> None:
    """step-7-shipyard-orchestrated-lookup.yml: MCP and REST `get-ship-with-crew`; REST adapter crew + POST /voyages 201."""
    capability = shipyard("step-7-shipyard-orchestrated-lookup.yml", prism)
    mark = prism.registry.mark()
    try:
        assert (
            await invoke(capability, target(capability, "get-ship-with-crew"), {"imo": "IMO-9321483"}) == SHIP_WITH_CREW
        )
        async with served(port_app(capability, "rest")) as base:
            status, body = await rest("GET", base + "/ships/IMO-9321483/crew")
            assert (status, body) == (200, SHIP_WITH_CREW)
            status, body = await rest("POST", base + "/voyages", json=VOYAGE_REQUEST)
            assert status == 201 and body["voyageId"] == "VOY-2026-042"  # the upstream 201 passed through
        prism.registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_skill_groups(prism: Upstreams) -> None:
    """step-8-shipyard-skill-groups.yml and skill-capability.yaml: `GET /skills` count, detail `type: derived`."""
    step8 = compiled("step-8-shipyard-skill-groups.yml", {"registry": prism.registry.url, "legacy": prism.legacy.url})
    skills = compiled("skill-capability.yaml", dry_run=True)
    try:
        async with served(port_app(step8, "skill")) as base:
            status, catalog = await rest("GET", base + "/skills")
            assert status == 200 and catalog["count"] == 2
            [tool] = (await rest("GET", base + "/skills/voyage-ops"))[1]["tools"]
            assert tool["type"] == "derived" and tool["invocationRef"]["mode"] == "mcp"
        async with served(port_app(skills, "skill")) as base:
            assert (await rest("GET", base + "/skills"))[1]["count"] == 2
            derived = (await rest("GET", base + "/skills/order-management"))[1]["tools"][0]
            assert derived["type"] == "derived" and derived["invocationRef"]["mode"] == "rest"
        mark = prism.registry.mark()
        assert (await invoke(step8, target(step8, "get-ship"), {"imo": "IMO-9321483"}))["name"] == "Northern Star"
        prism.registry.assert_clean_since(mark)
    finally:
        await step8.close()
        await skills.close()


async def test_aggregates_ref_semantics_to_hints_tutorial(prism: Upstreams) -> None:
    """step-9-shipyard-aggregates.yml: `get-ship-with-crew` via `ref`; annotations derived from semantics."""
    capability = shipyard("step-9-shipyard-aggregates.yml", prism)
    mark = prism.registry.mark()
    try:
        found = target(capability, "get-ship-with-crew")
        assert tool_annotations(found.hints) == {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True}
        async with served(mcp_app(capability)) as base, aiohttp.ClientSession() as http:
            rpc = Rpc(http, base + "/mcp")
            await rpc.initialize()
            tools = {t["name"]: t for t in (await rpc("tools/list"))["tools"]}
            assert tools["get-ship-with-crew"]["annotations"] == {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
            }
            reply = await rpc("tools/call", {"name": "get-ship-with-crew", "arguments": {"imo": "IMO-9321483"}})
            assert reply["isError"] is False and json.loads(reply["content"][0]["text"]) == SHIP_WITH_CREW
        prism.registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_rest_adapter_alongside_mcp_and_skill(prism: Upstreams) -> None:
    """step-10-shipyard-rest-adapter.yml: `GET /ships`, `GET /ships/{{imo}}`, `POST /voyages` → 201 with route/dates."""
    capability = shipyard("step-10-shipyard-rest-adapter.yml", prism)
    mark = prism.registry.mark()
    try:
        assert {p.kind for p in plan([capability])} >= {"rest", "mcp", "skill"}
        async with served(port_app(capability, "rest")) as base:
            assert await rest("GET", base + "/ships") == (200, [NORTHERN_STAR, PACIFIC_DAWN])
            assert await rest("GET", base + "/ships/IMO-9321483") == (200, {**NORTHERN_STAR, "specs": SPECS})
            status, body = await rest("POST", base + "/voyages", json=VOYAGE_REQUEST)
            assert status == 201
            assert set(body["route"]) == {"from", "to"} and set(body["dates"]) == {"departure", "arrival"}
            assert body["voyageId"] == "VOY-2026-042" and body["crewIds"] == ["CREW-001", "CREW-003"]
        assert prism.registry.calls_since(mark) == ["GET /ships", "GET /ships/IMO-9321483", "POST /voyages"]
        prism.registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_capstone_fleet_manifest(prism: Upstreams) -> None:
    """step-11-shipyard-fleet-manifest.yml: `get-voyage-manifest` (bare `token: "REGISTRY_TOKEN"` is a literal: Prism accepts any bearer)."""
    capability = shipyard("step-11-shipyard-fleet-manifest.yml", prism)
    mark = prism.registry.mark()
    try:
        body = await invoke(capability, target(capability, "get-voyage-manifest"), {"voyageId": "VOY-2026-042"})
        assert body == {
            "voyageId": "VOY-2026-042",
            "status": "planned",
            "route": {"from": "Oslo", "to": "Singapore"},
            "ship": {"name": "Northern Star", "type": "cargo", "flag": "NO"},
            "crew": CREW,
            "cargo": [
                {"type": "container", "description": "Electronics components", "weight": 12.5, "hazardous": False}
            ],
        }
        assert prism.registry.calls_since(mark) == [
            "GET /voyages/VOY-2026-042",
            "GET /ships",
            "GET /crew",
            "GET /cargo",
        ]
        prism.registry.assert_clean_since(mark)
    finally:
        await capability.close()


async def test_aggregate_step_with_namespace_qualified_with(prism: Upstreams) -> None:
    """aggregate-step-with-namespace.yaml and mcp-step-with-namespace-capability.yaml: `shipyard.voyage-id` from the input."""
    mark = prism.open_registry.mark()
    aggregate = compiled("aggregate-step-with-namespace.yaml", {"registry": prism.open_registry.url})
    mcp = compiled("mcp-step-with-namespace-capability.yaml", {"registry": prism.open_registry.url})
    try:
        assert await invoke(aggregate, target(aggregate, "get-voyage-manifest"), {"voyage-id": "VOY-2026-042"}) == {
            "voyage-id": "VOY-2026-042"
        }
        assert await invoke(mcp, target(mcp, "get-voyage-manifest"), {"voyageId": "VOY-2026-042"}) == {
            "voyageId": "VOY-2026-042"
        }
        assert prism.open_registry.calls_since(mark) == ["GET /voyages/VOY-2026-042"] * 2
        prism.open_registry.assert_clean_since(mark)
    finally:
        await aggregate.close()
        await mcp.close()


async def test_mcp_tool_with_post_raw_body_consume_level_header_array_items_output(prism: Upstreams) -> None:
    """mcp-capability.yaml: tools/list shape; unreachable upstream → `isError: true` (and a Prism 404 too)."""
    for upstream in (
        "http://127.0.0.1:9",
        prism.open_registry.url,
    ):  # closed port; Prism, which has no /databases route
        capability = compiled("mcp-capability.yaml", {"mock-api": upstream + "/v1"})
        try:
            async with served(mcp_app(capability)) as base, aiohttp.ClientSession() as http:
                rpc = Rpc(http, base + "/mcp")
                await rpc.initialize()
                [tool] = (await rpc("tools/list"))["tools"]
                assert tool["name"] == "query-database" and tool["inputSchema"]["type"] == "object"
                assert not tool["inputSchema"].get("required")  # the only consumed parameter is wired by `with`
                reply = await rpc("tools/call", {"name": "query-database", "arguments": {}})
                assert reply["isError"] is True and reply["content"][0]["type"] == "text"
        finally:
            await capability.close()


# -- rows that call no upstream (or a recording fake one): key result re-asserted -----------------


async def test_mock_mcp_tool() -> None:
    """step-1-shipyard-mock.yml: `tools/call get-ship {imo_number}` through the MCP adapter."""
    capability = compiled("step-1-shipyard-mock.yml")
    async with served(mcp_app(capability)) as base, aiohttp.ClientSession() as http:
        rpc = Rpc(http, base + "/mcp")
        await rpc.initialize()
        reply = await rpc("tools/call", {"name": "get-ship", "arguments": {"imo_number": "IMO-1234567"}})
    assert reply["isError"] is False
    assert json.loads(reply["content"][0]["text"]) == {
        "imo": "IMO-1234567",
        "name": "Northern Star",
        "type": "cargo",
        "flag": "NO",
        "status": "active",
    }


async def test_mock_via_aggregate_shared_by_mcp_and_rest() -> None:
    """aggregate-shared-mock.yaml: MCP `hello` and REST `GET /hello?name=Nina`."""
    capability = compiled("aggregate-shared-mock.yaml")
    expected = {"message": "Hello, Nina!", "source": "aggregate-mock"}
    assert await invoke(capability, target(capability, "hello"), {"name": "Nina"}) == expected
    async with served(port_app(capability, "rest")) as base:
        assert await rest("GET", base + "/hello", params={"name": "Nina"}) == (200, expected)


def test_aggregate_basic() -> None:
    """aggregate-basic.yaml and forecast-aggregate.yml: names/descriptions inherited from the function."""
    capability = compiled("aggregate-basic.yaml")
    tools = {t.name: t for e in capability.exposures if e.kind == "mcp" for t in e.targets}
    assert set(tools) == {"get-forecast", "get-forecast-inherited"}
    assert tools["get-forecast-inherited"].description == "Fetch current weather forecast for a location."
    assert [(f.name, f.required) for f in tools["get-forecast-inherited"].inputs] == [("location", True)]
    forecast = compiled("forecast-aggregate.yml")
    assert [(f.name, f.required) for f in target(forecast, "get-forecast").inputs] == [("location", True)]


def test_hints_derivation_override() -> None:
    """aggregate-hints-override.yaml: read-items derived, delete-item overridden."""
    capability = compiled("aggregate-hints-override.yaml")
    assert tool_annotations(target(capability, "read-items").hints) == {
        "readOnlyHint": True,
        "destructiveHint": False,
        "idempotentHint": True,
    }
    assert tool_annotations(target(capability, "delete-item").hints) == {
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": True,
        "openWorldHint": False,
    }


def test_unknown_ref_must_fail_at_load() -> None:
    """aggregate-invalid-ref.yaml: startup error."""
    with pytest.raises(CapabilityError, match="unknown aggregate function ref 'unknown.nonexistent'"):
        compiled("aggregate-invalid-ref.yaml")


def test_mcp_hints_label_to_annotations() -> None:
    """mcp-hints-capability.yaml: `title`, only explicitly set hints, no `annotations` when none."""
    capability = compiled("mcp-hints-capability.yaml")
    tools = {
        t["name"]: t for t in McpServer([(capability, e) for e in capability.exposures if e.kind == "mcp"]).tool_list
    }
    assert tools["read-data"]["title"] == "Read Data"
    assert tools["read-data"]["annotations"] == {"readOnlyHint": True, "openWorldHint": True}
    assert "annotations" not in tools["no-hints-tool"]


async def test_mcp_resources_and_prompts(upstream: FakeUpstream) -> None:
    """mcp-resources-prompts-capability.yaml: capabilities, resources vs templates, prompts/get substitution."""
    capability = compiled("mcp-resources-prompts-capability.yaml", {"mock-api": upstream.url + "/v1"})
    try:
        async with served(mcp_app(capability)) as base, aiohttp.ClientSession() as http:
            rpc = Rpc(http, base + "/mcp")
            init = await rpc.initialize()
            assert {"tools", "resources", "prompts"} <= set(init["capabilities"])
            assert [r["uri"] for r in (await rpc("resources/list"))["resources"]] == [
                "data://databases/pre-release/schema"
            ]
            assert [t["uriTemplate"] for t in (await rpc("resources/templates/list"))["resourceTemplates"]] == [
                "data://users/{userId}/profile"
            ]
            prompt = await rpc("prompts/get", {"name": "summary-prompt", "arguments": {"data": "rows"}})
            assert (
                prompt["messages"][0]["content"]["text"] == "Summarize the following data in {{format}} format:\n\nrows"
            )  # missing arg kept
    finally:
        await capability.close()


def test_mcp_stdio_transport() -> None:
    """mcp-stdio-capability.yaml: stdio transport, no port (driven over stdio in tests/integration/test_mcp_stdio.py)."""
    capability = compiled("mcp-stdio-capability.yaml")
    [exposure] = capability.exposures
    assert exposure.kind == "mcp" and exposure.spec["transport"] == "stdio" and "port" not in exposure.spec
    assert plan([capability]) == []  # nothing listens on a port


async def test_rest_body_params_via_jsonpath_into_raw_body_template(upstream: FakeUpstream) -> None:
    """http-body-capability.yaml: upstream body `{"id":"123","name":"Alice"}`."""
    capability = compiled("http-body-capability.yaml", {"testns": upstream.url})
    try:
        assert isinstance(
            await capability.invoke(
                capability.find("test-http-body.create-user"), {"userId": "123", "userName": "Alice"}
            ),
            Success,
        )
        assert (upstream.requests[-1].method, upstream.requests[-1].path) == ("POST", "/create")
        assert upstream.requests[-1].json() == {"id": "123", "name": "Alice"}
    finally:
        await capability.close()


async def test_rest_body_param_to_consumed_query_template_and_static_header(upstream: FakeUpstream) -> None:
    """http-header-query-capability.yaml: upstream `…/items?q=999`, `X-API-Key: ABC123`."""
    capability = compiled("http-header-query-capability.yaml", {"testns": upstream.url})
    try:
        assert isinstance(await capability.invoke(capability.find("test-http.search"), {"userId": "999"}), Success)
        request = upstream.requests[-1]
        assert (request.path, request.query) == ("/items", [("q", "999")]) and request.headers["X-API-Key"] == "ABC123"
    finally:
        await capability.close()


async def test_forward_proxy_with_consume_level_headers(upstream: FakeUpstream) -> None:
    """http-forward-value-capability.yaml: `/forward/{{path}}` → baseUri/<path> with X-API-Version and X-API-Key."""
    capability = compiled("http-forward-value-capability.yaml", {"external": upstream.url + "/v1"})
    try:
        async with served(port_app(capability, "rest")) as base:
            status, _ = await rest("GET", base + "/forward/users/42")
            assert status == 200
        request = upstream.requests[-1]
        assert request.path == "/v1/users/42"
        assert "X-API-Version" in request.headers and "X-API-Key" in request.headers
    finally:
        await capability.close()


def test_baseuri_trailing_slash_rejected() -> None:
    """baseuri-trailing-slash-capability.yaml: load error."""
    with pytest.raises(CapabilityError, match="baseUri must not end with '/'"):
        compiled("baseuri-trailing-slash-capability.yaml")


@pytest.mark.parametrize(
    ("file", "namespace", "fixture", "content_type"),
    [
        ("csv-capability.yaml", "mock-csv", "sample-users.csv", "text/csv"),
        ("yaml-capability.yaml", "mock-yaml", "sample-users.yaml", "application/yaml"),
        ("html-capability.yaml", "mock-html", "sample-products.html", "text/html"),
        ("markdown-capability.yaml", "mock-markdown", "sample-readme.md", "text/markdown"),
    ],
)
async def test_output_formats_to_json(
    upstream: FakeUpstream, file: str, namespace: str, fixture: str, content_type: str
) -> None:
    """csv/yaml/html/markdown-capability.yaml + fixtures: rows as JSON objects (all formats in tests/integration)."""
    body = (OFFICIAL / "fixtures" / fixture).read_bytes()
    upstream.respond = lambda request, _: web.Response(body=body, content_type=content_type)
    capability = compiled(file, {namespace: upstream.url})
    try:
        [found] = [t for e in capability.exposures for t in e.targets][:1]
        rows = await invoke(capability, found, {})
        assert isinstance(rows, list) and rows and all(isinstance(r, dict) and None not in r.values() for r in rows), (
            rows
        )
        if file == "csv-capability.yaml":
            assert rows[0] == {"id": "1", "name": "Alice Smith", "email": "alice@example.com"}
    finally:
        await capability.close()


async def test_control_port() -> None:
    """control-capability.yaml, control-observability-disabled.yaml: health endpoints; no /metrics or /traces when disabled."""
    capability = compiled("control-capability.yaml")
    async with served(port_app(capability, "control")) as base:
        assert (await rest("GET", base + "/health/live"))[0] == 200
        assert (await rest("GET", base + "/health/ready"))[0] == 200
        assert (await rest("GET", base + "/status"))[0] == 200
    disabled = compiled("control-observability-disabled.yaml")
    async with served(port_app(disabled, "control")) as base:
        assert (await rest("GET", base + "/metrics"))[0] == 404
        assert (await rest("GET", base + "/traces"))[0] == 404


def test_observability_config() -> None:
    """observability-capability.yaml, observability-disabled.yaml: sampling, propagation, exporter parsed."""
    [exposure] = compiled("observability-capability.yaml").exposures
    observability = exposure.spec["observability"]
    assert observability["traces"] == {"sampling": 0.5, "propagation": "b3"}
    assert observability["exporters"]["otlp"]["endpoint"] == "http://collector.local:4317"
    [disabled] = compiled("observability-disabled.yaml").exposures
    assert disabled.kind == "control"


def test_script_steps() -> None:
    """script-step.yml names scripts the example does not ship (under file:///app/capabilities/scripts):
    refused at load, each missing script at its step's line and column (tests/integration/
    test_script_steps.py runs the example with the scripts written)."""
    with pytest.raises(CapabilityError) as refused:
        compiled("script-step.yml")
    message = str(refused.value)
    for step, script in (
        ("filter-active", "filter-active.js"),
        ("filter-active", "lib/array-utils.js"),
        ("analyze", "analyze-readings.py"),
    ):
        assert re.search(
            rf"script-step\.yml:\d+:\d+: error: script step '{step}': script '{re.escape(script)}' not found", message
        ), message


def test_spectral_semantics_rule() -> None:
    """spectral-semantics-consistent.yaml, spectral-semantics-inconsistent.yaml: warnings only for the inconsistent one."""
    assert load_document(OFFICIAL / "spectral-semantics-consistent.yaml").warnings == []
    inconsistent = load_document(OFFICIAL / "spectral-semantics-inconsistent.yaml")
    assert inconsistent.valid and len(inconsistent.warnings) >= 2, inconsistent.warnings


def test_openapi_import(tmp_path: Path) -> None:
    """openapi-import/petstore-3.0.yaml: namespace and baseUri derived; every file compiles."""
    from naftiko.openapi_import import import_openapi

    files = import_openapi(OFFICIAL / "openapi-import" / "petstore-3.0.yaml")
    assert len(files) == 1
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    documents = [load_document(p) for p in tmp_path.glob("*.y*ml")]
    assert documents and all(d.valid for d in documents)
    consumes = documents[0].data["capability"]["consumes"][0]
    assert consumes["namespace"] == "petstore" and consumes["baseUri"] == "https://petstore.swagger.io/v1"

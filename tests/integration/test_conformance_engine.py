"""Official alpha2 examples run through the engine: mocks, aggregates (`ref`), steps.

Each file is compiled with its consumed namespaces pointed at the recording fake upstream,
which answers with the response examples of the official mock upstream
(conformance/official/upstream-mocks/naftiko-shipyard-maritime-registry-api.yaml).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from naftiko.engine.capability import Capability
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import DryRun, Success, UpstreamError
from naftiko.exposes.mcp import McpServer, tool_annotations
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import FakeUpstream, Serving, mcp_serving, shared_path

NORTHERN_STAR = {
    "imo_number": "IMO-9321483",
    "vessel_name": "Northern Star",
    "vessel_type": "cargo",
    "flag_code": "NO",
    "operational_status": "active",
    "year_built": 2015,
    "gross_tonnage": 42000,
    "dimensions": {"length_overall": 229, "beam": 32, "draft": 12.5},
    "assignedCrew": ["CREW-001", "CREW-003"],
}
CREW = [
    {"crewId": "CREW-001", "fullName": "Erik Lindström", "role": "captain", "certifications": ["STCW-II/2", "GMDSS"]},
    {"crewId": "CREW-002", "fullName": "Maria Santos", "role": "first_officer", "certifications": ["STCW-II/2"]},
    {"crewId": "CREW-003", "fullName": "Aiko Tanaka", "role": "cook", "certifications": ["STCW-VI/3"]},
    {"crewId": "CREW-004", "fullName": "Hans Mueller", "role": "engineer", "certifications": ["STCW-III/2"]},
]
VOYAGE = {
    "voyageId": "VOY-2026-042",
    "shipImo": "IMO-9321483",
    "departurePort": "Oslo",
    "arrivalPort": "Singapore",
    "departureDate": "2026-04-10T08:00:00Z",
    "arrivalDate": "2026-05-02T14:00:00Z",
    "crewIds": ["CREW-001", "CREW-003"],
    "cargoIds": ["CARGO-2024-0451"],
    "status": "planned",
}
SHIPS = [
    {
        "imo_number": "IMO-9321483",
        "vessel_name": "Northern Star",
        "vessel_type": "cargo",
        "flag_code": "NO",
        "operational_status": "active",
    },
    {
        "imo_number": "IMO-9456781",
        "vessel_name": "Pacific Dawn",
        "vessel_type": "tanker",
        "flag_code": "SG",
        "operational_status": "maintenance",
    },
]
CARGO = [
    {
        "cargoId": "CARGO-2024-0451",
        "type": "container",
        "description": "Electronics components",
        "weight": 12.5,
        "hazardous": False,
    },
    {
        "cargoId": "CARGO-2024-0452",
        "type": "bulk",
        "description": "Iron ore samples",
        "weight": 85.0,
        "hazardous": False,
    },
    {
        "cargoId": "CARGO-2024-0453",
        "type": "container",
        "description": "Industrial solvents",
        "weight": 5.2,
        "hazardous": True,
    },
]
CANNED: dict[str, Any] = {
    "/ships": SHIPS,
    "/cargo": CARGO,
    "/ships/IMO-9321483": NORTHERN_STAR,
    "/crew": CREW,
    "/voyages/VOY-2026-042": VOYAGE,
    "/forecast": {"forecast": {"temperature": 21.5, "condition": "sunny"}},
    "/items": {"items": ["a", "b"]},
}


def answer_from_examples(upstream: FakeUpstream) -> None:
    def respond(request: web.Request, body: bytes) -> web.StreamResponse:
        found = CANNED.get(request.path)
        if found is None:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response(found)

    upstream.respond = respond


def official(name: str, upstream: FakeUpstream | None, *namespaces: str, dry_run: bool = False) -> Capability:
    path = shared_path("conformance", "official", name)
    url = upstream.url if upstream is not None else "http://127.0.0.1:9"
    options = CompileOptions(upstreams={ns: url for ns in namespaces}, environ={}, dry_run=dry_run)
    if upstream is not None:
        answer_from_examples(upstream)
    return compile_capability(load_document(path), options)


def tool(capability: Capability, name: str, kind: str = "mcp"):
    [found] = [t for e in capability.exposures if e.kind == kind for t in e.targets if t.name == name]
    return found


async def invoke(capability: Capability, target, inputs: dict[str, Any]) -> Any:
    result = await capability.invoke(target, inputs)
    assert isinstance(result, Success), result
    return result.body


# -- mocks ----------------------------------------------------------------------------------------


async def test_step1_mock_tool_renders_its_input() -> None:
    capability = official("step-1-shipyard-mock.yml", None)
    target = tool(capability, "get-ship")
    assert [f.name for f in target.inputs] == ["imo_number"] and target.inputs[0].required
    body = await invoke(capability, target, {"imo_number": "IMO-9321483"})
    assert body == {"imo": "IMO-9321483", "name": "Northern Star", "type": "cargo", "flag": "NO", "status": "active"}
    missing = await capability.invoke(target, {})
    assert not isinstance(missing, Success)  # required input checked like any other target


async def test_aggregate_shared_mock_serves_mcp_and_rest_from_one_function() -> None:
    capability = official("aggregate-shared-mock.yaml", None)
    expected = {"message": "Hello, Nina!", "source": "aggregate-mock"}
    mcp = tool(capability, "hello")
    rest = tool(capability, "hello", "rest")
    assert mcp.description == "Return greeting payload."
    assert await invoke(capability, mcp, {"name": "Nina"}) == expected
    assert await invoke(capability, rest, {"name": "Nina"}) == expected
    assert [(f.name, f.location) for f in rest.inputs] == [("name", "query")]


async def test_aggregate_shared_mock_over_rest_adapter() -> None:
    capability = official("aggregate-shared-mock.yaml", None)
    [rest_plan] = [p for p in plan([capability]) if p.kind == "rest"]
    server = Serving(rest_plan)
    await server.start_server()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(server.make_url("/hello"), params={"name": "Nina"}) as response,
        ):
            assert response.status == 200
            assert await response.json() == {"message": "Hello, Nina!", "source": "aggregate-mock"}
    finally:
        await server.close()


@asynccontextmanager
async def mcp_client(capability: Capability) -> AsyncIterator[Any]:
    server = mcp_serving(
        mcp_routes(McpServer([(capability, e) for e in capability.exposures if e.kind == "mcp"]), None)
    )
    await server.start_server()
    url = server.make_url("/mcp")
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    async with aiohttp.ClientSession() as http:

        async def rpc(method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> Any:
            message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, **({"id": id} if id is not None else {})}
            if params is not None:
                message["params"] = params
            async with http.post(url, data=json.dumps(message), headers=headers) as response:
                if "Mcp-Session-Id" in response.headers:
                    headers["Mcp-Session-Id"] = response.headers["Mcp-Session-Id"]
                text = await response.text()
                return json.loads(text) if text else None

        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}
        await rpc("initialize", init, id=0)
        await rpc("notifications/initialized", id=None)
        try:
            yield rpc
        finally:
            await server.close()


async def test_aggregate_shared_mock_over_mcp_adapter() -> None:
    capability = official("aggregate-shared-mock.yaml", None)
    async with mcp_client(capability) as rpc:
        listing = (await rpc("tools/list"))["result"]["tools"]
        [hello] = listing
        assert hello["inputSchema"]["properties"]["name"]["type"] == "string"
        reply = (await rpc("tools/call", {"name": "hello", "arguments": {"name": "Nina"}}))["result"]
        assert reply["isError"] is False
        assert json.loads(reply["content"][0]["text"]) == {"message": "Hello, Nina!", "source": "aggregate-mock"}
        assert reply["structuredContent"] == {"message": "Hello, Nina!", "source": "aggregate-mock"}


# -- aggregates -----------------------------------------------------------------------------------


async def test_aggregate_basic_inherits_from_the_function(upstream: FakeUpstream) -> None:
    capability = official("aggregate-basic.yaml", upstream, "weather-api")
    try:
        mcp = {t.name: t for e in capability.exposures if e.kind == "mcp" for t in e.targets}
        assert set(mcp) == {"get-forecast", "get-forecast-inherited"}
        assert mcp["get-forecast"].description == "Get the weather forecast."
        assert mcp["get-forecast-inherited"].description == "Fetch current weather forecast for a location."
        assert [(f.name, f.required) for f in mcp["get-forecast-inherited"].inputs] == [("location", True)]
        rest = [t for e in capability.exposures if e.kind == "rest" for t in e.targets]
        assert [(t.spec["method"], t.description) for t in rest] == [
            ("GET", "Fetch current weather forecast for a location."),
            ("POST", "Fetch current weather forecast for a location."),
        ]
        assert all([(f.name, f.location) for f in t.inputs] == [("location", "path")] for t in rest)
        assert len({t.name for t in rest}) == 2  # two operations on one function keep distinct names
        body = await invoke(capability, mcp["get-forecast"], {"location": "Paris"})
        assert body == {
            "temperature": 21.5,
            "condition": "sunny",
        }  # function output: string mapping $.forecast selects the object
        assert upstream.requests[-1].method == "GET" and upstream.requests[-1].path == "/forecast"
        assert await invoke(capability, rest[0], {"location": "Paris"}) == body
        assert tool_annotations(mcp["get-forecast"].hints) == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
        }
    finally:
        await capability.close()


async def test_forecast_aggregate_object_mapping_is_relative(upstream: FakeUpstream) -> None:
    capability = official("forecast-aggregate.yml", upstream, "weather-api")
    try:
        expected = {"temperature": 21.5, "condition": "sunny"}
        assert await invoke(capability, tool(capability, "get-forecast"), {"location": "Paris"}) == expected
        [rest] = [t for e in capability.exposures if e.kind == "rest" for t in e.targets]
        assert await invoke(capability, rest, {"location": "Paris"}) == expected
    finally:
        await capability.close()


async def test_aggregate_hints_derived_and_overridden(upstream: FakeUpstream) -> None:
    capability = official("aggregate-hints-override.yaml", upstream, "mock-api")
    try:
        async with mcp_client(capability) as rpc:
            tools = {t["name"]: t for t in (await rpc("tools/list"))["result"]["tools"]}
        assert tools["read-items"]["annotations"] == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
        }
        assert tools["read-items-open"]["annotations"] == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
            "openWorldHint": True,
        }
        assert tools["delete-item"]["annotations"] == {
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": True,
            "openWorldHint": False,
        }
        assert "annotations" not in tools["plain-tool"]
        assert tools["delete-item"]["inputSchema"]["required"] == ["item-id"]
        assert await invoke(capability, tool(capability, "read-items"), {}) == ["a", "b"]
        await invoke(capability, tool(capability, "delete-item"), {"item-id": "42"})
        assert (upstream.requests[-1].method, upstream.requests[-1].path) == ("DELETE", "/items")
    finally:
        await capability.close()


# -- steps ----------------------------------------------------------------------------------------


async def test_aggregate_step_with_namespace_qualified_with(upstream: FakeUpstream) -> None:
    capability = official("aggregate-step-with-namespace.yaml", upstream, "registry")
    try:
        body = await invoke(capability, tool(capability, "get-voyage-manifest"), {"voyage-id": "VOY-2026-042"})
        assert body == {"voyage-id": "VOY-2026-042"}
        assert upstream.requests[-1].path == "/voyages/VOY-2026-042"
    finally:
        await capability.close()


async def test_mcp_step_with_namespace_qualified_with(upstream: FakeUpstream) -> None:
    capability = official("mcp-step-with-namespace-capability.yaml", upstream, "registry")
    try:
        target = tool(capability, "get-voyage-manifest")
        assert await invoke(capability, target, {"voyageId": "VOY-2026-042"}) == {"voyageId": "VOY-2026-042"}
        assert upstream.requests[-1].path == "/voyages/VOY-2026-042"
        failed = await capability.invoke(target, {"voyageId": "VOY-0000-000"})
        assert isinstance(failed, UpstreamError) and failed.status == 404  # a failed step fails the call
    finally:
        await capability.close()


SHIP_WITH_CREW = {
    "imo": "IMO-9321483",
    "name": "Northern Star",
    "type": "cargo",
    "flag": "NO",
    "status": "active",
    "yearBuilt": 2015,
    "tonnage": 42000,
    "length": 229,
    "crew": [{"fullName": "Erik Lindström", "role": "captain"}, {"fullName": "Aiko Tanaka", "role": "cook"}],
}


@pytest.mark.parametrize("kind", ["mcp", "rest"])
async def test_step7_orchestrated_lookup(upstream: FakeUpstream, kind: str) -> None:
    capability = official("step-7-shipyard-orchestrated-lookup.yml", upstream, "registry", "legacy")
    try:
        target = tool(capability, "get-ship-with-crew", kind)
        assert await invoke(capability, target, {"imo": "IMO-9321483"}) == SHIP_WITH_CREW
        ship, crew = upstream.requests[-2:]
        assert (ship.path, crew.path) == ("/ships/IMO-9321483", "/crew")
        assert ship.headers["Authorization"] == "Bearer dummy-token"
        assert ship.headers["Registry-Version"] == "1.0.0-alpha2"
    finally:
        await capability.close()


async def test_step7_dry_run_lists_each_step_request() -> None:
    capability = official("step-7-shipyard-orchestrated-lookup.yml", None, "registry", "legacy", dry_run=True)
    result = await capability.invoke(tool(capability, "get-ship-with-crew"), {"imo": "IMO-9321483"})
    assert isinstance(result, DryRun)
    assert [(s["step"], s["method"], s["url"]) for s in result.request["steps"]] == [
        ("get-ship", "GET", "http://127.0.0.1:9/ships/IMO-9321483"),
        ("list-crew", "GET", "http://127.0.0.1:9/crew"),
    ]
    assert "dummy-token" not in json.dumps(result.request)


async def test_step9_tool_refs_a_steps_function_with_derived_hints(upstream: FakeUpstream) -> None:
    capability = official("step-9-shipyard-aggregates.yml", upstream, "registry", "legacy")
    try:
        target = tool(capability, "get-ship-with-crew")
        assert [(f.name, f.required) for f in target.inputs] == [("imo", True)]  # the function's inputs
        assert tool_annotations(target.hints) == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
        }
        assert await invoke(capability, target, {"imo": "IMO-9321483"}) == SHIP_WITH_CREW
    finally:
        await capability.close()


async def test_step11_fleet_manifest_capstone(upstream: FakeUpstream) -> None:
    capability = official("step-11-shipyard-fleet-manifest.yml", upstream, "registry", "legacy")
    try:
        body = await invoke(capability, tool(capability, "get-voyage-manifest"), {"voyageId": "VOY-2026-042"})
        assert body == {
            "voyageId": "VOY-2026-042",
            "status": "planned",
            "route": {"from": "Oslo", "to": "Singapore"},
            "ship": {
                "name": "Northern Star",
                "type": "cargo",
                "flag": "NO",
            },  # looked up by the consumed output `imo-number`
            "crew": [{"fullName": "Erik Lindström", "role": "captain"}, {"fullName": "Aiko Tanaka", "role": "cook"}],
            "cargo": [
                {"type": "container", "description": "Electronics components", "weight": 12.5, "hazardous": False}
            ],
        }
        assert [r.path for r in upstream.requests[-4:]] == ["/voyages/VOY-2026-042", "/ships", "/crew", "/cargo"]
        assert (
            upstream.requests[-1].headers["Authorization"] == "Bearer REGISTRY_TOKEN"
        )  # the shared file's bare token is a literal
    finally:
        await capability.close()


INLINE = """
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - namespace: registry
      type: http
      baseUri: "http://localhost:19999"
      resources:
        - name: voyage
          path: "/voyages/{{voyageId}}"
          operations:
            - name: get-voyage
              method: GET
              inputParameters:
                - name: crew
                  in: query
        - name: ship
          path: "/ships/{{imo}}"
          operations:
            - name: get-ship
              method: GET
        - name: crew
          path: "/crew"
          operations:
            - name: list-crew
              method: GET
  exposes:
    - type: mcp
      port: 13002
      namespace: tools
      tools:
        - name: manifest
          description: "no declared inputs: inferred from the steps"
          steps:
            - name: get-voyage
              type: call
              call: registry.get-voyage
              with:
                voyageId: tools.id
            - name: get-ship
              type: call
              call: registry.get-ship
              with:
                imo: "{{get-voyage.shipImo}}"
            - name: list-crew
              type: call
              call: registry.list-crew
            - name: captain
              type: lookup
              index: list-crew
              match: crewId
              lookupValue: "{{get-voyage.crewIds}}"
              outputParameters: [fullName]
            - name: first
              type: lookup
              index: list-crew
              match: role
              lookupValue: "captain"
              outputParameters: [crewId]
            - name: voyage-again
              type: call
              call: registry.get-voyage
              with:
                voyageId: "{{get-voyage.voyageId}}"
                crew: "{{first.crewId}}"
          mappings:
            - targetName: route.from
              value: "$.get-voyage.departurePort"
            - targetName: route.to
              value: "$.get-voyage.arrivalPort"
            - targetName: ship
              value: "$.get-ship.vessel_name"
            - targetName: firstCrew
              value: "$.get-voyage.crewIds[0]"
            - targetName: missing
              value: "$.get-ship.nothing.here"
        - name: hello
          description: "mock with undeclared inputs"
          outputParameters:
            - name: greeting
              type: string
              value: "Hi {{who}}"
            - name: count
              type: number
              value: "{{count}}"
            - name: ratio
              type: number
              value: "{{count}}.5"
"""


async def test_steps_feed_later_steps_and_nested_mappings(upstream: FakeUpstream, tmp_path) -> None:
    path = tmp_path / "inline.yaml"
    path.write_text(INLINE)
    answer_from_examples(upstream)
    capability = compile_capability(
        load_document(path), CompileOptions(upstreams={"registry": upstream.url}, environ={})
    )
    try:
        manifest = tool(capability, "manifest")
        assert [(f.name, f.required) for f in manifest.inputs] == [("id", True), ("crew", False)]
        body = await invoke(capability, manifest, {"id": "VOY-2026-042"})
        assert body == {"route": {"from": "Oslo", "to": "Singapore"}, "ship": "Northern Star", "firstCrew": "CREW-001"}
        assert [r.path for r in upstream.requests] == [
            "/voyages/VOY-2026-042",
            "/ships/IMO-9321483",
            "/crew",
            "/voyages/VOY-2026-042",
        ]
        assert upstream.requests[-1].query == [
            ("crew", "CREW-001")
        ]  # a lookup result feeds a later step (our extension)
        hello = tool(capability, "hello")
        assert sorted(f.name for f in hello.inputs) == ["count", "who"]
        assert await invoke(capability, hello, {"who": "Al", "count": 3}) == {
            "greeting": "Hi Al",
            "count": 3,
            "ratio": 3.5,
        }
        assert await invoke(capability, hello, {}) == {
            "greeting": "Hi ",
            "ratio": 0.5,
        }  # a value that is one missing input is left out
    finally:
        await capability.close()

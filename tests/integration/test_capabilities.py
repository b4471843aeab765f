"""The Customer.io capability suite in capabilities/: strict-valid, servable together, and the
curated track-customers.yaml keeps the seed's contract exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.inspect_command import describe
from naftiko.run_command import load_capabilities
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import REPO, SEED

CAPABILITIES = REPO / "capabilities"


@pytest.mark.parametrize("path", sorted(CAPABILITIES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_capability_passes_strict(path: Path) -> None:
    document = load_document(path, strict=True)
    assert document.valid, [str(e) for e in document.errors]
    assert document.warnings == []


def contract(path: Path) -> dict:
    document = load_document(path)
    capability = compile_capability(document, CompileOptions(dry_run=True))
    described = describe(capability)
    consumes = document.resolved["capability"]["consumes"][0]
    return {
        "routes": sorted((r["method"], r["path"], r["port"], r["call"]) for r in described["rest"]),
        "tools": sorted((t["name"], t["port"], t["call"]) for t in described["tools"]),
        "hints": {t["name"]: t["hints"] for t in document.resolved["capability"]["exposes"][1]["tools"]},
        "required": sorted(
            (t["name"], i["name"], i["type"]) for t in described["tools"] for i in t["inputs"] if i["required"]
        ),
        "inputs": sorted((t["name"], i["name"], i["type"]) for t in described["tools"] for i in t["inputs"]),
        "auth": consumes["authentication"],
        "baseUri": consumes["baseUri"],
    }


def test_curated_track_customers_keeps_the_seed_contract() -> None:
    assert contract(CAPABILITIES / "track-customers.yaml") == contract(SEED)


def test_the_whole_folder_serves_on_one_rest_and_one_mcp_port() -> None:
    capabilities = load_capabilities([str(CAPABILITIES)], CompileOptions(dry_run=True))
    assert len(capabilities) == len(list(CAPABILITIES.glob("*.yaml")))
    plans = {p.port: p for p in plan(list(capabilities.values()))}
    assert {port: p.kind for port, p in plans.items()} == {8080: "rest", 9090: "mcp"}
    from naftiko.exposes.mcp import McpServer
    from naftiko.exposes.rest import collect_routes

    routes = collect_routes(plans[8080].entries)  # raises on a duplicate route
    tools = McpServer(plans[9090].entries).tool_list  # raises on a duplicate tool name
    assert len(routes) > 150 and len(tools) > 130


def test_openapi_of_a_protected_exposure_declares_how_to_authenticate() -> None:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "openapi", str(CAPABILITIES / "customer-io-gateway.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    document = json.loads(done.stdout)
    assert document["components"]["securitySchemes"] == {
        "customer-io-gateway-basic": {"type": "http", "scheme": "basic"}
    }
    identify = document["paths"]["/api/v1/customers/{identifier}"]["put"]
    assert identify["security"] == [{"customer-io-gateway-basic": []}] and "401" in identify["responses"]

"""Official alpha2 examples through the engine: the requests and mapped outputs their rows state."""

from __future__ import annotations

import pytest
from aiohttp import web

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import Success
from naftiko.spec.document import load_document
from support import FakeUpstream, shared_path


def official(name: str, upstream: FakeUpstream, namespace: str):
    document = load_document(shared_path("conformance", "official", name))
    assert document.valid, document.errors
    return compile_capability(document, CompileOptions(upstreams={namespace: upstream.url}, environ={}))


async def test_rest_body_params_fill_a_raw_json_body(upstream: FakeUpstream) -> None:
    cap = official("http-body-capability.yaml", upstream, "testns")
    result = await cap.invoke(cap.find("test-http-body.create-user"), {"userId": "123", "userName": "Alice"})
    await cap.close()
    assert isinstance(result, Success)
    [request] = upstream.requests
    assert (request.method, request.path) == ("POST", "/create")
    assert request.json() == {"id": "123", "name": "Alice"}


async def test_raw_json_body_escapes_caller_text(upstream: FakeUpstream) -> None:
    cap = official("http-body-capability.yaml", upstream, "testns")
    hostile = 'x","admin":true,"y":"'
    await cap.invoke(cap.find("test-http-body.create-user"), {"userId": hostile, "userName": "{{userId}}"})
    await cap.close()
    assert upstream.requests[0].json() == {"id": hostile, "name": "{{userId}}"}


async def test_body_param_fills_a_query_template_and_consume_level_header(upstream: FakeUpstream) -> None:
    cap = official("http-header-query-capability.yaml", upstream, "testns")
    result = await cap.invoke(cap.find("test-http.search"), {"userId": "999"})
    await cap.close()
    assert isinstance(result, Success)
    [request] = upstream.requests
    assert (request.path, request.query) == ("/items", [("q", "999")])
    assert request.headers["X-API-Key"] == "ABC123"


@pytest.mark.parametrize(
    ("file", "namespace", "fixture", "content_type", "first"),
    [
        (
            "csv-capability.yaml",
            "mock-csv",
            "sample-users.csv",
            "text/csv",
            {"id": "1", "name": "Alice Smith", "email": "alice@example.com"},
        ),
        ("yaml-capability.yaml", "mock-yaml", "sample-users.yaml", "application/yaml", None),
        ("html-capability.yaml", "mock-html", "sample-products.html", "text/html", None),
        ("markdown-capability.yaml", "mock-markdown", "sample-readme.md", "text/markdown", None),
    ],
)
async def test_format_examples_map_their_fixtures(
    upstream: FakeUpstream, file: str, namespace: str, fixture: str, content_type: str, first
) -> None:
    body = shared_path("conformance", "official", "fixtures", fixture).read_bytes()
    upstream.respond = lambda request, _: web.Response(body=body, content_type=content_type)
    document = load_document(shared_path("conformance", "official", file))
    namespace = document.resolved["capability"]["consumes"][0]["namespace"]
    cap = compile_capability(document, CompileOptions(upstreams={namespace: upstream.url}, environ={}))
    [target] = cap.exposures[0].targets
    result = await cap.invoke(target, {})
    await cap.close()
    assert isinstance(result, Success), result
    assert isinstance(result.body, list) and result.body, result.body
    assert all(isinstance(row, dict) and None not in row.values() for row in result.body), result.body
    if first is not None:
        assert result.body[0] == first
    assert upstream.requests[0].headers.get("User-Agent", "").startswith("Naftiko") or file != "csv-capability.yaml"

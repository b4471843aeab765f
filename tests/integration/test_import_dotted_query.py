"""An imported capability served for real: a dotted query parameter (`user.fields`, as in X's API)
is the REST/MCP input `user_fields`, documented in /openapi.json, and reaches the upstream URL
under its own name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.openapi_import import import_openapi
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import FakeUpstream, Serving

X_API = """
openapi: 3.0.0
info: {title: X API v2, version: "2.100"}
servers: [{url: "https://api.x.com"}]
paths:
  /2/tweets:
    get:
      operationId: findTweetsById
      parameters:
        - {name: ids, in: query, required: true, schema: {type: string}}
        - name: user.fields
          in: query
          description: A comma separated list of User fields to display.
          schema: {type: string}
        - {name: tweet.fields, in: query, schema: {type: string}}
      responses: {"200": {description: ok, content: {application/json: {schema: {type: object}}}}}
"""


@pytest.fixture
def capability_file(tmp_path: Path) -> Path:
    spec = tmp_path / "x.yaml"
    spec.write_text(X_API, encoding="utf-8")
    [(name, text)] = import_openapi(spec).items()
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    document = load_document(path, strict=True)
    assert document.valid and not document.warnings, [str(d) for d in [*document.errors, *document.warnings]]
    return path


async def _serve(path: Path, upstream: FakeUpstream):
    capability = compile_capability(load_document(path), CompileOptions(upstreams={"x-api-v2": upstream.url}))
    [rest_plan] = [p for p in plan([capability]) if p.kind == "rest"]
    server = Serving(rest_plan)
    await server.start_server()
    return server, capability


async def test_openapi_json_documents_the_input_and_its_upstream_name(
    capability_file: Path, upstream: FakeUpstream
) -> None:
    server, capability = await _serve(capability_file, upstream)
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/openapi.json")) as response:
            document = await response.json()
    finally:
        await server.close()
        await capability.close()
    parameters = {p["name"]: p for p in document["paths"]["/2/tweets"]["get"]["parameters"]}
    assert set(parameters) == {"ids", "user_fields", "tweet_fields"}
    assert parameters["user_fields"]["in"] == "query"
    assert parameters["user_fields"]["description"] == (
        "A comma separated list of User fields to display. Sent upstream as the query parameter `user.fields`."
    )
    assert "`tweet.fields`" in parameters["tweet_fields"]["description"]


async def test_the_upstream_url_carries_the_dotted_name(capability_file: Path, upstream: FakeUpstream) -> None:
    server, capability = await _serve(capability_file, upstream)
    try:
        url = server.make_url("/2/tweets?ids=20&user_fields=id,name")
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200, await response.text()
    finally:
        await server.close()
        await capability.close()
    [request] = upstream.requests
    assert request.query == [("ids", "20"), ("user.fields", "id,name")]


def test_call_dry_run_shows_the_dotted_name(capability_file: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "naftiko.cli",
            "call",
            "--dry-run",
            str(capability_file),
            "x-api-v2-mcp.find-tweets-by-id",
            "--arg",
            "ids=20",
            "--arg",
            "user_fields=id,name",
            "--arg",
            "tweet_fields=lang",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    url = json.loads(done.stdout)["request"]["url"]
    assert url == "https://api.x.com/2/tweets?ids=20&user.fields=id,name&tweet.fields=lang"

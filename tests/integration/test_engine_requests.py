"""Request bodies, authentication and response formats, through capability files and the engine."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import DryRun, RateLimited, Success
from naftiko.spec.document import load_document
from support import FakeUpstream

TEMPLATE = """naftiko: 1.0.0-alpha2
binds:
  - namespace: env
    keys:
      API_SECRET: API_SECRET
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: https://api.example.com
{auth}
      resources:
        - name: things
          path: /things/{{id}}
          operations:
            - name: send
              method: POST
{operation}
  exposes:
    - type: mcp
      namespace: tools-ns
      port: 9090
      transport: http
      tools:
        - name: send
          description: Send a thing
          call: api.send
"""

SECRET = "s3cr3t-value-0123456789"


def capability(tmp_path: Path, upstream_url: str | None, operation: str = "", auth: str = "", dry_run: bool = False):
    path = tmp_path / "cap.yaml"
    path.write_text(TEMPLATE.format(operation=operation, auth=auth))
    document = load_document(path)
    assert document.valid, document.errors
    upstreams = {"api": upstream_url} if upstream_url else {}
    return compile_capability(
        document, CompileOptions(upstreams=upstreams, environ={"API_SECRET": SECRET}, dry_run=dry_run)
    )


async def send(cap, inputs: dict):
    result = await cap.invoke(cap.find("send"), inputs)
    await cap.close()
    return result


BODIES = {
    "json-typed": (
        "              body:\n                type: json\n                data:\n                  count: '{{count}}'\n                  tags: '{{tags}}'\n                  label: 'n={{count}}'\n",
        {"id": "1", "count": 3, "tags": ["a", "b"]},
        "application/json",
        lambda body: json.loads(body) == {"count": 3, "tags": ["a", "b"], "label": "n=3"},
    ),
    "raw-json": (
        '              body: \'{"crewIds": {{crewIds}}, "note": "{{note}}"}\'\n',
        {"id": "1", "crewIds": ["c1", "c2"], "note": 'say "hi"'},
        "application/json",
        lambda body: json.loads(body) == {"crewIds": ["c1", "c2"], "note": 'say "hi"'},
    ),
    "text": (
        "              body:\n                type: text\n                data: 'hello {{name}}'\n",
        {"id": "1", "name": "Ada"},
        "text/plain",
        lambda body: body == b"hello Ada",
    ),
    "form": (
        "              body:\n                type: formUrlEncoded\n                data:\n                  name: '{{name}}'\n                  fixed: yes-value\n",
        {"id": "1", "name": "A&B=C"},
        "application/x-www-form-urlencoded",
        lambda body: parse_qsl(body.decode()) == [("name", "A&B=C"), ("fixed", "yes-value")],
    ),
    "multipart": (
        "              body:\n                type: multipartForm\n                data:\n                  - name: file\n                    value: '{{content}}'\n                    filename: a.txt\n                    contentType: text/plain\n",
        {"id": "1", "content": "line one"},
        "multipart/form-data",
        lambda body: b'name="file"; filename="a.txt"' in body and b"line one" in body,
    ),
    "body-params": (
        "              inputParameters:\n                - name: email\n                  in: body\n                - name: plan\n                  in: body\n",
        {"id": "1", "email": "a@b.c", "plan": "pro"},
        "application/json",
        lambda body: json.loads(body) == {"email": "a@b.c", "plan": "pro"},
    ),
}


@pytest.mark.parametrize("kind", sorted(BODIES))
async def test_body_types_arrive_encoded(tmp_path: Path, upstream: FakeUpstream, kind: str) -> None:
    operation, inputs, content_type, check = BODIES[kind]
    result = await send(capability(tmp_path, upstream.url, operation), inputs)
    assert isinstance(result, Success), result
    [request] = upstream.requests
    assert request.headers["Content-Type"].startswith(content_type)
    assert check(request.body), request.body


AUTHS = {
    "bearer": (
        "      authentication: {type: bearer, token: '{{API_SECRET}}'}",
        lambda r: r.headers["Authorization"] == f"Bearer {SECRET}",
    ),
    "apikey-header": (
        "      authentication: {type: apikey, key: X-Api-Key, value: '{{API_SECRET}}', placement: header}",
        lambda r: r.headers["X-Api-Key"] == SECRET,
    ),
    "apikey-query": (
        "      authentication: {type: apikey, key: api_key, value: '{{API_SECRET}}', placement: query}",
        lambda r: ("api_key", SECRET) in r.query,
    ),
    "apikey-cookie": (
        "      authentication: {type: apikey, key: session, value: '{{API_SECRET}}', placement: cookie}",
        lambda r: f"session={SECRET}" in r.headers["Cookie"],
    ),
    "basic": (
        "      authentication: {type: basic, username: user, password: '{{API_SECRET}}'}",
        lambda r: r.headers["Authorization"].startswith("Basic "),
    ),
}


@pytest.mark.parametrize("kind", sorted(AUTHS))
async def test_auth_types_through_the_engine_and_masked_in_dry_run(
    tmp_path: Path, upstream: FakeUpstream, kind: str
) -> None:
    auth, check = AUTHS[kind]
    result = await send(capability(tmp_path, upstream.url, auth=auth), {"id": "1"})
    assert isinstance(result, Success)
    assert check(upstream.requests[0])
    dry = await send(capability(tmp_path, None, auth=auth, dry_run=True), {"id": "1"})
    assert isinstance(dry, DryRun)
    assert SECRET not in json.dumps(dry.request) and "****" in json.dumps(dry.request)


async def test_xml_answers_map_with_the_root_dropped(tmp_path: Path, upstream: FakeUpstream) -> None:
    xml = b"<root><user id='1'><name>Ada</name></user><user id='2'><name>Bob</name></user></root>"
    upstream.respond = lambda request, body: web.Response(body=xml, content_type="application/xml")
    operation = "              outputRawFormat: xml\n"
    path = tmp_path / "cap.yaml"
    text = TEMPLATE.format(operation=operation, auth="").replace(
        "          call: api.send\n",
        "          call: api.send\n          outputParameters:\n            - type: array\n              mapping: $.user\n"
        "              items:\n                type: object\n                properties:\n                  name: {type: string, mapping: $.name}\n",
    )
    path.write_text(text)
    cap = compile_capability(
        load_document(path), CompileOptions(upstreams={"api": upstream.url}, environ={"API_SECRET": SECRET})
    )
    result = await send(cap, {"id": "1"})
    assert isinstance(result, Success) and result.body == [{"name": "Ada"}, {"name": "Bob"}]


async def test_calls_over_the_rate_limit_are_refused_not_sent(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "cap.yaml"
    path.write_text(TEMPLATE.format(operation="", auth=""))
    cap = compile_capability(
        load_document(path),
        CompileOptions(upstreams={"api": upstream.url}, environ={"API_SECRET": SECRET}, rate_limits={"api": 5}),
    )
    results = await asyncio.gather(*(cap.invoke(cap.find("send"), {"id": str(i)}) for i in range(10)))
    await cap.close()
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(upstream.requests) == 10 - len(refused)  # a refused call never reaches the upstream
    assert len(refused) >= 4  # a bucket of 5 (one second's worth), refilling at 5 per second
    assert all(0 < r.retry_after <= 0.2 and "rate limit of 5" in r.message for r in refused), refused


def test_secret_in_every_auth_field_never_printed(tmp_path: Path) -> None:
    """Every auth type, a secret in each field: dry-run output and error output never show it."""
    import os

    for kind, (auth, _) in AUTHS.items():
        path = tmp_path / f"{kind}.yaml"
        path.write_text(TEMPLATE.format(operation="", auth=auth))
        env = {**os.environ, "API_SECRET": SECRET}
        for extra in (["--dry-run"], ["--upstream", "api=http://127.0.0.1:9"]):
            done = subprocess.run(
                [sys.executable, "-m", "naftiko.cli", "call", *extra, str(path), "send", "--arg", "id=1"],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert SECRET not in done.stdout + done.stderr, (kind, extra)
            assert done.stdout.strip(), (kind, extra, done.stderr)


async def test_dry_run_shows_the_query_as_sent_and_masks_a_query_key(tmp_path: Path) -> None:
    """The query key's value is masked in the form the request-target carries it."""
    secret = "k3y/:@ value+1"
    path = tmp_path / "cap.yaml"
    auth = "      authentication: {type: apikey, key: api_key, value: '{{API_SECRET}}', placement: query}"
    path.write_text(TEMPLATE.format(operation="", auth=auth))
    options = CompileOptions(environ={"API_SECRET": secret}, dry_run=True)
    dry = await send(compile_capability(load_document(path), options), {"id": "a b"})
    assert isinstance(dry, DryRun)
    assert dry.request["url"] == "https://api.example.com/things/a%20b?api_key=****"

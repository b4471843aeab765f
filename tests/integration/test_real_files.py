"""Issue #16, "every real file works": the constructs real capability files use, served for real.

Placeholders whose input has another spelling, inputs the route lacks, same-shape templates,
operations of one name, duplicate routes, null bodies, oauth1 and apikey `headers`, and
`validate` agreeing with `run`. Servers are real (127.0.0.1, free ports); the upstream is the
recording fake of conftest.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp
import pytest
from openapi_spec_validator import validate as validate_openapi

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.inputs import InputField, match_placeholders, place_on_route
from naftiko.exposes.mcp import McpServer
from naftiko.server import plan
from naftiko.spec.document import load_document
from naftiko.validation import check_files
from support import FakeUpstream, Serving, free_port, shared_path

REAL_SHAPES = """naftiko: 1.0.0-alpha2
info:
  label: Real shapes
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://upstream.invalid
    resources:
    - name: routes
      path: /routes/{route_id}
      operations:
      - name: get-route
        method: GET
        inputParameters:
        - {name: route_id, in: path, type: string, required: true}
    - name: policies
      path: /policies/{policyId}
      operations:
      - name: get-policy
        method: GET
    - name: checkouts
      path: /checkouts/{token}.json
      operations:
      - name: get-checkout
        method: GET
    - name: images
      path: /images/{image_id}
      operations:
      - name: get-image
        method: GET
      - name: put-image
        method: PUT
        inputParameters:
        - {name: body, in: body, type: object}
    - name: accounts
      path: /accounts/{account_id}/members
      operations:
      - name: list
        method: GET
        description: Account members
    - name: teams
      path: /teams/{team_id}/members
      operations:
      - name: list
        method: GET
        description: Team members
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /v1/routes/{route-id}
      operations:
      - method: GET
        call: up.get-route
        with: {route_id: rest.route_id}
    - path: /v1/policies/{policyid}
      operations:
      - method: GET
        call: up.get-policy
        with: {policyId: rest.policyId}
    - path: /v1/checkouts/token-json
      operations:
      - method: GET
        call: up.get-checkout
        with: {token: rest.token}
    - path: /v1/images/{id}
      operations:
      - method: PUT
        call: up.put-image
        with: {image_id: rest.id, body: rest.body}
    - path: /v1/images/{image-id}
      operations:
      - method: GET
        call: up.get-image
        with: {image_id: rest.image_id}
    - path: /v1/accounts/{account-id}/members
      operations:
      - method: GET
        call: up.list
        with: {account_id: rest.account_id}
    - path: /v1/teams/{team-id}/members
      operations:
      - method: GET
        call: up.list
        with: {team_id: rest.team_id}
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - name: get-route
      description: A route
      call: up.get-route
      with: {route_id: tools.route_id}
    - name: get-checkout
      description: A checkout
      call: up.get-checkout
      with: {token: tools.token}
    - name: account-members
      description: Account members
      call: up.list
    - name: team-members
      description: Team members
      call: up.list
"""


def write(tmp_path: Path, text: str, name: str = "capability.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def shapes(tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[tuple[str, object]]:
    capability = compile_capability(
        load_document(write(tmp_path, REAL_SHAPES)), CompileOptions(upstreams={"up": upstream.url})
    )
    [rest_plan] = [p for p in plan([capability]) if p.kind == "rest"]
    server = Serving(rest_plan)
    await server.start_server()
    yield server.make_url(""), capability
    await server.close()
    await capability.close()


async def call(method: str, url: str, **kwargs) -> tuple[int, dict, object]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        raw = await response.read()
        return response.status, dict(response.headers), json.loads(raw) if raw else None


# -- placeholders and inputs: one rule ------------------------------------------------------------


def test_a_placeholder_matches_its_input_whatever_the_spelling() -> None:
    matched, problems = match_placeholders(["route-id", "policyid", "org"], ["route_id", "policyId", "org", "other"])
    assert matched == {"route-id": "route_id", "policyid": "policyId", "org": "org"} and problems == []


def test_the_exact_spelling_wins_and_ambiguity_names_both() -> None:
    matched, problems = match_placeholders(["user_id"], ["userId", "user_id"])
    assert matched == {"user_id": "user_id"} and problems == []
    matched, problems = match_placeholders(["user-id"], ["userId", "user_id"])
    assert matched == {} and "'userId'" in str(problems[0]) and "'user_id'" in str(problems[0])
    # the input the consumed path needs is the one meant
    matched, problems = match_placeholders(
        ["http-protocol"], ["httpProtocol", "http_protocol"], frozenset({"http_protocol"})
    )
    assert matched == {"http-protocol": "http_protocol"} and problems == []


def test_an_input_the_route_lacks_is_a_required_query_parameter() -> None:
    fields, problems = place_on_route(
        [InputField("token", "string", None, True, "path"), InputField("q", "string")], []
    )
    assert problems == []
    assert [(f.name, f.location, f.required) for f in fields] == [("token", "query", True), ("q", "query", False)]


async def test_rest_reads_each_placeholder_under_its_own_spelling(shapes, upstream: FakeUpstream) -> None:
    base, _ = shapes
    assert (await call("GET", f"{base}/v1/routes/r%2F1"))[0] == 200
    assert (await call("GET", f"{base}/v1/policies/P-7"))[0] == 200
    assert [r.path for r in upstream.requests] == ["/routes/r%2F1", "/policies/P-7"]


async def test_an_input_the_route_lacks_is_read_from_the_query(shapes, upstream: FakeUpstream) -> None:
    base, _ = shapes
    status, headers, body = await call("GET", f"{base}/v1/checkouts/token-json")
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    assert "token" in body["detail"] and upstream.requests == []
    assert (await call("GET", f"{base}/v1/checkouts/token-json", params={"token": "abc"}))[0] == 200
    assert [r.path for r in upstream.requests] == ["/checkouts/abc.json"]


async def test_same_shape_templates_are_one_route_with_both_methods(shapes, upstream: FakeUpstream) -> None:
    base, _ = shapes
    assert (await call("PUT", f"{base}/v1/images/9", json={"alt": "x"}))[0] == 200
    assert (await call("GET", f"{base}/v1/images/9"))[0] == 200
    status, headers, _ = await call("DELETE", f"{base}/v1/images/9")
    assert status == 405 and set(headers["Allow"].split(",")) == {"GET", "PUT"}
    assert [(r.method, r.path) for r in upstream.requests] == [("PUT", "/images/9"), ("GET", "/images/9")]
    assert upstream.requests[0].json() == {"alt": "x"}


async def test_operations_of_one_name_are_told_apart(shapes, upstream: FakeUpstream) -> None:
    base, capability = shapes
    assert (await call("GET", f"{base}/v1/accounts/a1/members"))[0] == 200
    assert (await call("GET", f"{base}/v1/teams/t1/members"))[0] == 200
    assert [r.path for r in upstream.requests] == ["/accounts/a1/members", "/teams/t1/members"]
    # MCP tools: by the description they repeat
    [mcp] = [e for e in capability.exposures if e.kind == "mcp"]
    paths = {t.name: "".join(t.operation.path.parts) for t in mcp.targets}
    assert paths["account-members"].startswith("/accounts/") and paths["team-members"].startswith("/teams/")


async def test_openapi_documents_what_rest_reads(shapes) -> None:
    base, _ = shapes
    status, _, document = await call("GET", f"{base}/openapi.json")
    assert status == 200
    validate_openapi(document)  # OpenAPI 3.1, every path parameter declared
    paths = document["paths"]
    [route_id] = paths["/v1/routes/{route-id}"]["get"]["parameters"]
    assert (route_id["name"], route_id["in"], route_id["required"]) == ("route-id", "path", True)
    assert "\\x00-\\x1f" in route_id["schema"]["pattern"]
    [token] = paths["/v1/checkouts/token-json"]["get"]["parameters"]
    assert (token["name"], token["in"], token["required"]) == ("token", "query", True)
    assert set(paths["/v1/images/{id}"]) == {"get", "put"} and "/v1/images/{image-id}" not in paths
    assert paths["/v1/images/{id}"]["get"]["parameters"][0]["name"] == "id"
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_mcp_publishes_the_same_inputs(shapes) -> None:
    _, capability = shapes
    server = McpServer([(c, e) for c, e in [(capability, e) for e in capability.exposures] if e.kind == "mcp"])
    tools = {t["name"]: t["inputSchema"] for t in server.tool_list}
    assert tools["get-route"]["required"] == ["route_id"]
    assert tools["get-checkout"]["required"] == ["token"]


async def test_a_body_of_the_wrong_type_or_null_is_refused(shapes, upstream: FakeUpstream) -> None:
    base, _ = shapes
    for raw in (b"null", b"[1]", b'"text"', b" \n"):
        status, headers, body = await call(
            "PUT", f"{base}/v1/images/9", data=raw, headers={"Content-Type": "application/json"}
        )
        assert status == 400 and headers["Content-Type"].startswith("application/problem+json"), raw
    assert upstream.requests == []


async def test_control_characters_in_a_path_value_are_refused_as_documented(shapes, upstream: FakeUpstream) -> None:
    base, _ = shapes
    status, _, body = await call("GET", f"{base}/v1/routes/a%0Ab")
    assert status == 400 and "control characters" in body["detail"]
    assert upstream.requests == []


# -- duplicate routes: validate 1, openapi and run 2, both places named -----------------------------

DUPLICATES = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://upstream.invalid
    resources:
    - name: images
      path: /images/{id}
      operations:
      - name: get-image
        method: GET
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /images/{id}
      operations:
      - method: GET
        call: up.get-image
    - path: /images/{image-id}
      operations:
      - method: GET
        call: up.get-image
"""


def naftiko(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "naftiko.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_a_route_declared_twice_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, DUPLICATES)
    places = f"at {path}:20:9 and at {path}:24:9"
    validated = naftiko("validate", str(path))
    assert (
        validated.returncode == 1
        and f"{path}:24:9: error: route GET /images/{{id}}" in validated.stdout
        and places in validated.stdout
    )
    for command in (("openapi", str(path)), ("run", "--dry-run", str(path), "--port", f"api={free_port()}")):
        done = naftiko(*command)
        assert done.returncode == 2 and places in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_route_declared_in_two_files_on_one_port(tmp_path: Path) -> None:
    one = write(
        tmp_path,
        DUPLICATES.replace(
            "    - path: /images/{image-id}\n      operations:\n      - method: GET\n        call: up.get-image\n", ""
        ),
        "one.yaml",
    )
    two = write(tmp_path, one.read_text().replace("namespace: api", "namespace: api2"), "two.yaml")
    validated = naftiko("validate", str(one), str(two))
    assert validated.returncode == 1 and f"{two}:20:9: error:" in validated.stdout
    assert f"at {one}:20:9 and at {two}:20:9" in validated.stdout
    assert naftiko("validate", str(one)).returncode == 0 and naftiko("validate", str(two)).returncode == 0
    done = naftiko("run", "--dry-run", str(tmp_path))
    assert done.returncode == 2 and f"at {one}:20:9 and at {two}:20:9" in done.stderr and "Traceback" not in done.stderr


# -- validate and run agree -----------------------------------------------------------------------

AMBIGUOUS = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://upstream.invalid
    resources:
    - name: users
      path: /users
      operations:
      - name: find
        method: GET
        inputParameters:
        - {name: user_id, in: query}
        - {name: userId, in: query}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /users/{user-id}
      operations:
      - method: GET
        call: up.find
        with: {user_id: rest.user_id, userId: rest.userId}
"""


def test_an_ambiguous_placeholder_is_a_located_validate_error(tmp_path: Path) -> None:
    path = write(tmp_path, AMBIGUOUS)
    validated = naftiko("validate", str(path))
    assert validated.returncode == 1
    assert (
        f"{path}:21:13: error: /users/{{user-id}}: path placeholder {{user-id}} matches both inputs 'user_id' and 'userId'"
        in validated.stdout
    )
    assert naftiko("run", "--dry-run", str(path), "--port", f"api={free_port()}").returncode == 2


def test_what_run_refuses_validate_reports_with_a_line(tmp_path: Path) -> None:
    skill = (
        AMBIGUOUS.replace("/users/{user-id}", "/users/{user_id}")
        + """  - type: skill
    namespace: skills
    port: 8090
    skills:
    - name: users
      tools:
      - name: find-user
        call: up.find
"""
    )
    path = write(tmp_path, skill)
    validated = naftiko("validate", str(path))
    assert validated.returncode == 1
    assert (
        f"{path}:26:5: error: skill 'users' tool 'find-user': needs exactly one of 'from' and 'instruction'"
        in validated.stdout
    )
    run = naftiko("run", "--dry-run", str(path), "--port", f"api={free_port()}", "--port", f"skills={free_port()}")
    assert run.returncode == 2 and "needs exactly one of 'from' and 'instruction'" in run.stderr


def test_official_examples_one_by_one_validate_as_run_serves_them() -> None:
    folder = shared_path("conformance", "official")
    files = sorted(folder.glob("*.y*ml"))
    reports = check_files(files, together=False)
    refused = {Path(r.file).name for r in reports if not r.valid}
    assert refused == {
        "baseuri-trailing-slash-capability.yaml",
        "aggregate-invalid-ref.yaml",  # must fail
        "avro-capability.yaml",
        "proto-capability.yaml",
        "script-step.yml",  # names scripts in file:///app/capabilities/scripts it does not ship
    }


# -- authentication real files use ---------------------------------------------------------------

MASTERCARD_LIKE = """naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys:
    MC_CONSUMER_KEY: MC_CONSUMER_KEY
    MC_SIGNING_KEY: MC_SIGNING_KEY
capability:
  consumes:
  - type: http
    namespace: cards
    baseUri: http://upstream.invalid
    authentication:
      type: oauth1
      consumerKey: '{{MC_CONSUMER_KEY}}'
      signingKey: '{{MC_SIGNING_KEY}}'
    resources:
    - name: cards
      path: /cards/{card_id}
      operations:
      - name: update-card
        method: PUT
        inputParameters:
        - {name: body, in: body, type: object}
        - {name: verbose, in: query, type: string}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /cards/{card-id}
      operations:
      - method: PUT
        call: cards.update-card
        with: {card_id: rest.card_id, body: rest.body, verbose: rest.verbose}
"""


def _oauth_params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth ")
    return {k: unquote(v.strip('"')) for k, v in (part.split("=", 1) for part in header[6:].split(", "))}


def _base_string(method: str, url: str, query: list[tuple[str, str]], oauth: dict[str, str]) -> bytes:
    """RFC 5849 §3.4.1, written out here as the independent oracle."""

    def enc(text: str) -> str:
        return quote(text, safe="-._~")

    pairs = sorted(
        [(enc(k), enc(v)) for k, v in query]
        + [(enc(k), enc(v)) for k, v in oauth.items() if k not in ("oauth_signature", "realm")]
    )
    return f"{method}&{enc(url)}&{enc('&'.join(f'{k}={v}' for k, v in pairs))}".encode()


async def _serve_one(path: Path, upstream: FakeUpstream, environ: dict[str, str], namespace: str):
    capability = compile_capability(
        load_document(path), CompileOptions(upstreams={namespace: upstream.url}, environ=environ)
    )
    [rest_plan] = [p for p in plan([capability]) if p.kind == "rest"]
    server = Serving(rest_plan)
    await server.start_server()
    return server, capability


async def test_oauth1_rsa_sha256_signs_every_request(tmp_path: Path, upstream: FakeUpstream) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    server, capability = await _serve_one(
        write(tmp_path, MASTERCARD_LIKE), upstream, {"MC_CONSUMER_KEY": "consumer-1", "MC_SIGNING_KEY": pem}, "cards"
    )
    try:
        status, _, _ = await call("PUT", server.make_url("/cards/c%201?verbose=yes%20please"), json={"limit": 5})
    finally:
        await server.close()
        await capability.close()
    assert status == 200
    [seen] = upstream.requests
    oauth = _oauth_params(seen.headers["Authorization"])
    assert oauth["oauth_consumer_key"] == "consumer-1" and oauth["oauth_signature_method"] == "RSA-SHA256"
    assert oauth["oauth_body_hash"] == base64.b64encode(hashlib.sha256(seen.body).digest()).decode()
    base = _base_string("PUT", upstream.url + seen.path, seen.query, oauth)
    key.public_key().verify(base64.b64decode(oauth["oauth_signature"]), base, padding.PKCS1v15(), hashes.SHA256())


async def test_oauth1_hmac_sha1_with_a_secret(tmp_path: Path, upstream: FakeUpstream) -> None:
    server, capability = await _serve_one(
        write(tmp_path, MASTERCARD_LIKE), upstream, {"MC_CONSUMER_KEY": "ck", "MC_SIGNING_KEY": "s3cret"}, "cards"
    )
    try:
        await call("PUT", server.make_url("/cards/c1"), json={})
        await call("PUT", server.make_url("/cards/c1"), json={})
    finally:
        await server.close()
        await capability.close()
    first, second = (_oauth_params(r.headers["Authorization"]) for r in upstream.requests)
    assert first["oauth_nonce"] != second["oauth_nonce"]
    base = _base_string("PUT", upstream.url + upstream.requests[0].path, upstream.requests[0].query, first)
    expected = base64.b64encode(hmac.new(b"s3cret&", base, hashlib.sha1).digest()).decode()
    assert first["oauth_signature_method"] == "HMAC-SHA1" and first["oauth_signature"] == expected


async def test_oauth1_dry_run_shows_no_secret(tmp_path: Path) -> None:
    path = write(tmp_path, MASTERCARD_LIKE)
    capability = compile_capability(
        load_document(path),
        CompileOptions(dry_run=True, environ={"MC_CONSUMER_KEY": "ck-1", "MC_SIGNING_KEY": "s3cret"}),
    )
    [target] = [t for e in capability.exposures for t in e.targets]
    result = await capability.invoke(target, {"card_id": "c1", "body": {}})
    text = json.dumps(result.request)
    assert "OAuth " in text and "s3cret" not in text and "ck-1" not in text


async def test_apikey_with_a_headers_map_sends_every_header(tmp_path: Path, upstream: FakeUpstream) -> None:
    datadog_like = MASTERCARD_LIKE.replace(
        "      type: oauth1\n      consumerKey: '{{MC_CONSUMER_KEY}}'\n      signingKey: '{{MC_SIGNING_KEY}}'\n",
        "      type: apikey\n      headers:\n        DD-API-KEY: '{{MC_CONSUMER_KEY}}'\n        DD-APPLICATION-KEY: '{{MC_SIGNING_KEY}}'\n",
    )
    server, capability = await _serve_one(
        write(tmp_path, datadog_like), upstream, {"MC_CONSUMER_KEY": "api", "MC_SIGNING_KEY": "app"}, "cards"
    )
    try:
        assert (await call("PUT", server.make_url("/cards/c1"), json={}))[0] == 200
    finally:
        await server.close()
        await capability.close()
    [seen] = upstream.requests
    assert seen.headers["DD-API-KEY"] == "api" and seen.headers["DD-APPLICATION-KEY"] == "app"


def test_corpus_oauth1_and_apikey_headers_files_validate() -> None:
    corpus = shared_path("corpus", "alpha2")
    files = [
        p for p in sorted((corpus / "api-evangelist__mastercard").glob("*.yaml")) if "type: oauth1" in p.read_text()
    ]
    files += sorted((corpus / "api-evangelist__datadog").glob("*.yaml"))
    assert len(files) > 13
    bad = [(r.file, r.errors[0].message) for r in check_files(files, together=False) if not r.valid]
    assert bad == []


OPERATION_PATHS = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: gists
    baseUri: http://upstream.invalid
    resources:
    - name: gists
      path: /gists
      operations:
      - name: list
        method: GET
      - name: get
        method: GET
        path: /gists/{gist_id}
      - name: star
        method: PUT
        path: star
      - name: broken
        method: GET
        inputParameters:
        - {name: project_id, in: path, type: string}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /v1/gists
      operations:
      - {method: GET, call: gists.list}
    - path: /v1/gists/{gist-id}
      operations:
      - {method: GET, call: gists.get, with: {gist_id: rest.gist_id}}
    - path: /v1/gists/starred
      operations:
      - {method: PUT, call: gists.star}
"""


async def test_an_operation_with_its_own_path_calls_it(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = write(tmp_path, OPERATION_PATHS)
    report = check_files([path])[0]
    assert report.valid
    [warning] = [w for w in report.warnings if "placeholder" in w.message]
    assert warning.line == 22 and "'project_id' has no {project_id} placeholder in the path '/gists'" in warning.message
    server, capability = await _serve_one(path, upstream, {}, "gists")
    try:
        for method, url in (("GET", "/v1/gists"), ("GET", "/v1/gists/g1"), ("PUT", "/v1/gists/starred")):
            assert (await call(method, server.make_url(url)))[0] == 200
    finally:
        await server.close()
        await capability.close()
    assert [(r.method, r.path) for r in upstream.requests] == [
        ("GET", "/gists"),
        ("GET", "/gists/g1"),
        ("PUT", "/gists/star"),
    ]


FORM_DATA = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: pictures
    baseUri: http://upstream.invalid
    resources:
    - name: pictures
      path: /accounts/{accountId}/pictures
      operations:
      - name: upload
        method: POST
        inputParameters:
        - {name: picture0, in: formData, type: file, required: true}
        - {name: caption, in: formData, type: string}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /v1/accounts/{accountid}/pictures
      operations:
      - method: POST
        call: pictures.upload
        with: {picture0: rest.picture0, caption: rest.caption}
"""


async def test_form_data_parameters_go_upstream_as_a_multipart_form(tmp_path: Path, upstream: FakeUpstream) -> None:
    server, capability = await _serve_one(write(tmp_path, FORM_DATA), upstream, {}, "pictures")
    try:
        status, _, body = await call("POST", server.make_url("/v1/accounts/a1/pictures"), json={"caption": "x"})
        assert status == 400 and "picture0" in body["detail"]
        status, _, document = await call("GET", server.make_url("/openapi.json"))
        schema = document["paths"]["/v1/accounts/{accountid}/pictures"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        assert schema["required"] == ["picture0"] and set(schema["properties"]) == {"picture0", "caption"}
        assert (
            await call(
                "POST", server.make_url("/v1/accounts/a1/pictures"), json={"picture0": "PNG…", "caption": "a cat"}
            )
        )[0] == 200
    finally:
        await server.close()
        await capability.close()
    [seen] = upstream.requests
    assert seen.path == "/accounts/a1/pictures" and seen.headers["Content-Type"].startswith(
        "multipart/form-data; boundary="
    )
    assert b'name="picture0"; filename="picture0"' in seen.body and "PNG…".encode() in seen.body
    assert b'name="caption"\r\n\r\na cat\r\n' in seen.body


REPEATED = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: tags
    baseUri: http://upstream.invalid
    resources:
    - name: tag
      path: /tags/{tagId}/{tagId}
      operations:
      - name: update
        method: PUT
        inputParameters:
        - {name: tagId, in: path, type: string, required: true}
        - {name: labels, in: query, type: array}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /v1/tags/{tagid}/{tagid}
      operations:
      - method: PUT
        call: tags.update
        with: {tagId: rest.tagId, labels: rest.labels}
"""


async def test_a_placeholder_written_twice_is_documented_once_per_segment(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    server, capability = await _serve_one(write(tmp_path, REPEATED), upstream, {}, "tags")
    try:
        _, _, document = await call("GET", server.make_url("/openapi.json"))
        assert (await call("PUT", server.make_url("/v1/tags/t1/t1")))[0] == 200
    finally:
        await server.close()
        await capability.close()
    validate_openapi(document)
    [(path, item)] = document["paths"].items()
    assert path == "/v1/tags/{tagid}/{tagid-2}"
    parameters = {p["name"]: p for p in item["put"]["parameters"]}
    assert set(parameters) == {"tagid", "tagid-2", "labels"} and parameters["labels"]["schema"] == {
        "type": "array",
        "items": {},
    }
    assert [r.path for r in upstream.requests] == ["/tags/t1/t1"]

"""The runtime as an OAuth 2.1 resource server, end to end: `naftiko run` in its own process
serving REST and MCP exposures with `authentication: {type: oauth2}`, a real authorization
server on 127.0.0.1 (tests/oauth_issuer.py: RFC 8414 metadata, JWKS, introspection), real
RS256 and ES256 tokens signed in the test, the official MCP SDK as a client, and a recording
upstream that must never see the caller's token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import ClientSession
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPError
from multidict import CIMultiDict, CIMultiDictProxy
from openapi_spec_validator import validate as validate_openapi

from naftiko.auth.authorization_server import SigningKey
from naftiko.auth.oauth_settings import OAuthSettings
from naftiko.auth.resource_server import ResourceServer
from naftiko.auth.token_cache import TokenCache
from naftiko.http import Request, Response
from oauth_issuer import ALGORITHM, Issuer
from run_process import Upstream
from support import free_port

UPSTREAM_TOKEN = "upstream-credential-0123"  # the capability's own credential for the upstream
MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info:
  label: Items behind OAuth
  description: One upstream operation served as REST and MCP to callers holding an access token.
binds:
- namespace: env
  keys:
    UPSTREAM_TOKEN: UPSTREAM_TOKEN
capability:
  consumes:
  - type: http
    namespace: items
    baseUri: {upstream}
    authentication:
      type: bearer
      token: '{{{{UPSTREAM_TOKEN}}}}'
    resources:
    - name: item
      path: /items/{{id}}
      operations:
      - name: get-item
        method: GET
  exposes:
  - type: rest
    namespace: items-rest
    port: {rest}
    authentication:
      type: oauth2
      authorizationServerUri: {issuer}
      resource: http://127.0.0.1:{rest}/v1
      scopes: [items:read]
    resources:
    - path: /v1/items/{{id}}
      name: items
      operations:
      - method: GET
        name: get-item
        call: items.get-item
  - type: rest
    namespace: items-introspected
    port: {introspected}
    authentication:
      type: oauth2
      authorizationServerUri: {issuer}
      resource: http://127.0.0.1:{introspected}/v2
      scopes: [items:read]
      tokenValidation: introspection
    resources:
    - path: /v2/items/{{id}}
      name: items-v2
      operations:
      - method: GET
        name: get-item-v2
        call: items.get-item
  - type: mcp
    namespace: items-mcp
    port: {mcp}
    transport: http
    authentication:
      type: oauth2
      authorizationServerUri: {issuer}
      resource: http://127.0.0.1:{mcp}/mcp
      scopes: [items:read]
    tools:
    - name: get-item
      description: Read one item.
      call: items.get-item
  - type: control
    port: {control}
    authentication:
      type: oauth2
      authorizationServerUri: {issuer}
      resource: http://127.0.0.1:{control}/
      scopes: [ops]
    management:
      info: true
"""


class Runtime:
    """`naftiko run` of CAPABILITY, its log in a file (never an unread pipe)."""

    def __init__(self, tmp: Path, issuer_url: str, upstream: Upstream):
        self.rest, self.introspected, self.mcp, self.control = free_port(), free_port(), free_port(), free_port()
        self.file = tmp / "items.yaml"
        self.file.write_text(
            CAPABILITY.format(
                upstream=upstream.base,
                rest=self.rest,
                introspected=self.introspected,
                mcp=self.mcp,
                control=self.control,
                issuer=issuer_url,
            ),
            encoding="utf-8",
        )
        self.log = tempfile.NamedTemporaryFile(prefix="naftiko-oauth-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "UPSTREAM_TOKEN": UPSTREAM_TOKEN}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "naftiko.cli", "run", str(self.file)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while status(self.url(self.mcp, "/health")) != 200:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def url(self, port: int, path: str) -> str:
        return f"http://127.0.0.1:{port}{path}"

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# -- plain HTTP ----------------------------------------------------------------------------------


def request(
    method: str, url: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    target = url.split("//", 1)[1]
    hostport, _, path = target.partition("/")
    host, _, port = hostport.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
        connection.request(method, "/" + path, body=data, headers=sent)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def status(url: str) -> int | None:
    try:
        return request("GET", url)[0]
    except OSError:
        return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mcp_post(runtime: Runtime, message: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    sent = {"Accept": "application/json, text/event-stream", **headers}
    return request("POST", runtime.url(runtime.mcp, "/mcp"), sent, message)


def tools_call(runtime: Runtime, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A stateless (2026-07-28) tools/call of get-item."""
    message = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "get-item", "arguments": {"id": "42"}, "_meta": ENVELOPE},
    }
    routing = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "get-item"}
    return mcp_post(runtime, message, {**routing, **headers})


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    server = Issuer().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def runtime(issuer: Issuer, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    served = Runtime(tmp_path_factory.mktemp("oauth"), issuer.url, upstream)
    yield served
    served.stop()


def rest_token(issuer: Issuer, runtime: Runtime, kid: str = "rsa-1", **claims: Any) -> str:
    return issuer.sign(kid, aud=claims.pop("aud", f"http://127.0.0.1:{runtime.rest}/v1"), **claims)


def mcp_token(issuer: Issuer, runtime: Runtime, kid: str = "rsa-1", **claims: Any) -> str:
    return issuer.sign(kid, aud=claims.pop("aud", f"http://127.0.0.1:{runtime.mcp}/mcp"), **claims)


def challenge(headers: dict[str, str]) -> str:
    return headers.get("www-authenticate", "")


# -- the metadata document and the challenge -----------------------------------------------------


def test_protected_resource_metadata_is_served_without_a_token(runtime: Runtime, issuer: Issuer) -> None:
    code, headers, body = request("GET", runtime.url(runtime.mcp, "/.well-known/oauth-protected-resource/mcp"))
    assert code == 200, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {
        "resource": f"http://127.0.0.1:{runtime.mcp}/mcp",
        "authorization_servers": [issuer.url],
        "scopes_supported": ["items:read"],
        "bearer_methods_supported": ["header"],
    }
    code, _, body = request("GET", runtime.url(runtime.rest, "/.well-known/oauth-protected-resource/v1"))
    assert code == 200
    assert json.loads(body)["resource"] == f"http://127.0.0.1:{runtime.rest}/v1"


def test_no_token_is_401_pointing_at_the_metadata(runtime: Runtime) -> None:
    code, headers, _ = mcp_post(runtime, INITIALIZE, {})
    assert code == 401
    metadata = f"http://127.0.0.1:{runtime.mcp}/.well-known/oauth-protected-resource/mcp"
    assert challenge(headers) == f'Bearer resource_metadata="{metadata}"'
    code, headers, body = request("GET", runtime.url(runtime.rest, "/v1/items/42"))
    assert code == 401
    assert headers["content-type"].startswith("application/problem+json")
    metadata = f"http://127.0.0.1:{runtime.rest}/.well-known/oauth-protected-resource/v1"
    assert challenge(headers) == f'Bearer resource_metadata="{metadata}"'
    code, headers, _ = request("GET", runtime.url(runtime.rest, "/v1/items/42"), {"Authorization": "Basic YTpi"})
    assert code == 401 and "error=" not in challenge(headers)


# -- valid tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_valid_token_reaches_the_upstream_with_the_capabilitys_own_credential(
    runtime: Runtime, issuer: Issuer, upstream: Upstream, kid: str
) -> None:
    token = rest_token(issuer, runtime, kid)
    before = len(upstream.requests)
    for _ in range(3):  # verified once, then from the cache
        code, _, body = request("GET", runtime.url(runtime.rest, "/v1/items/42"), bearer(token))
        assert code == 200, body
    code, _, body = tools_call(runtime, bearer(mcp_token(issuer, runtime, kid)))
    assert code == 200, body
    assert json.loads(body)["result"].get("isError") is not True, body
    sent = upstream.requests[before:]
    assert [(m, p) for m, p, _ in sent] == [("GET", "/api/v1/items/42")] * 4
    for _, _, headers in sent:
        assert headers.get("Authorization") == f"Bearer {UPSTREAM_TOKEN}"
        assert not any(token in value for value in headers.values())


def test_a_token_with_scp_list_and_trailing_slash_issuer_is_accepted(runtime: Runtime, issuer: Issuer) -> None:
    token = rest_token(issuer, runtime, scope=None, scp=["items:read", "other"], iss=issuer.url + "/")
    code, _, body = request("GET", runtime.url(runtime.rest, "/v1/items/1"), bearer(token))
    assert code == 200, body


# -- refused tokens ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def hmac_with_public_key(issuer: Issuer, claims: dict[str, Any]) -> str:
    """The classic confusion attack: HS256 keyed with the RSA public key the JWKS publishes."""
    signing_input = _unsigned(claims, {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    signature = hmac.new(issuer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


BAD_TOKENS = {
    "expired": lambda i, aud: i.sign(aud=aud, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    "not yet valid": lambda i, aud: i.sign(aud=aud, nbf=int(time.time()) + 3600),
    "wrong issuer": lambda i, aud: i.sign(aud=aud, iss="http://127.0.0.1:1/evil"),
    "wrong audience": lambda i, aud: i.sign(aud="https://other.example.com/mcp"),
    "no exp": lambda i, aud: i.sign(aud=aud, exp=None),
    "exp is text": lambda i, aud: i.sign(aud=aud, exp="tomorrow"),
    "aud is a number": lambda i, aud: i.sign(aud=12),
    "scope is a number": lambda i, aud: i.sign(aud=aud, scope=7),
    "alg none": lambda i, aud: _unsigned(i.claims(aud=aud), {"alg": "none", "typ": "JWT"}) + ".",
    "alg none with a signature": lambda i, aud: _unsigned(i.claims(aud=aud), {"alg": "none"}) + ".c2ln",
    "HS256 with the public key": lambda i, aud: hmac_with_public_key(i, i.claims(aud=aud)),
    "signed by an unknown key": lambda i, aud: i.sign("rsa-2", header={"kid": "stranger"}, aud=aud),
    "tampered payload": lambda i, aud: (
        lambda t: (
            t.split(".")[0] + "." + _b64(json.dumps(i.claims(aud=aud, sub="mallory")).encode()) + "." + t.split(".")[2]
        )
    )(i.sign(aud=aud)),
    "ES256 header on an RSA key": lambda i, aud: (
        lambda t: _b64(json.dumps({"alg": "ES256", "kid": "rsa-1"}).encode()) + "." + t.split(".", 1)[1]
    )(i.sign(aud=aud)),
    "header not JSON": lambda i, aud: _b64(b"{not json") + "." + _b64(b"{}") + ".c2ln",
    "payload not an object": lambda i, aud: (lambda t: t.split(".")[0] + "." + _b64(b"[1,2]") + "." + t.split(".")[2])(
        i.sign(aud=aud)
    ),
    "garbage": lambda i, aud: "not-a-token",
    "empty": lambda i, aud: "",
    "huge": lambda i, aud: "a" * 40_000 + "." + "b" * 10 + ".c",
    "crit header": lambda i, aud: i.sign(header={"crit": ["exp"]}, aud=aud),
    "JWE-shaped": lambda i, aud: "a.b.c.d.e",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_a_bad_token_is_401_invalid_token_on_rest_and_mcp(runtime: Runtime, issuer: Issuer, case: str) -> None:
    rest_audience, mcp_audience = f"http://127.0.0.1:{runtime.rest}/v1", f"http://127.0.0.1:{runtime.mcp}/mcp"
    code, headers, body = request(
        "GET", runtime.url(runtime.rest, "/v1/items/1"), bearer(BAD_TOKENS[case](issuer, rest_audience))
    )
    assert code == 401, body
    assert headers["content-type"].startswith("application/problem+json")
    assert challenge(headers).startswith('Bearer error="invalid_token", error_description="')
    assert f'resource_metadata="http://127.0.0.1:{runtime.rest}/.well-known/oauth-protected-resource/v1"' in challenge(
        headers
    )
    code, headers, body = mcp_post(runtime, INITIALIZE, bearer(BAD_TOKENS[case](issuer, mcp_audience)))
    assert code == 401, body
    assert 'error="invalid_token"' in challenge(headers)


def test_a_missing_scope_is_403_insufficient_scope(runtime: Runtime, issuer: Issuer) -> None:
    token = rest_token(issuer, runtime, scope="items:write profile")
    code, headers, body = request("GET", runtime.url(runtime.rest, "/v1/items/1"), bearer(token))
    assert code == 403, body
    assert challenge(headers).startswith('Bearer error="insufficient_scope", scope="items:read", resource_metadata=')
    code, headers, _ = tools_call(runtime, bearer(mcp_token(issuer, runtime, scope=None)))
    assert code == 403
    assert 'error="insufficient_scope"' in challenge(headers)


def test_inside_a_session_every_request_needs_a_valid_token(runtime: Runtime, issuer: Issuer) -> None:
    good = bearer(mcp_token(issuer, runtime))
    code, headers, body = mcp_post(runtime, INITIALIZE, good)
    assert code == 200, body
    session = {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get-item", "arguments": {"id": "9"}}}
    expired = mcp_token(issuer, runtime, exp=int(time.time()) - 600, iat=int(time.time()) - 1200)
    code, headers, _ = mcp_post(runtime, call, {**session, **bearer(expired)})
    assert code == 401
    assert 'error="invalid_token", error_description="the token has expired"' in challenge(headers)
    code, _, _ = mcp_post(runtime, call, session)
    assert code == 401
    code, _, body = mcp_post(runtime, call, {**session, **good})
    assert code == 200, body
    assert "result" in json.loads(body)


# -- key rotation and the bounds on fetching keys -----------------------------------------------


def test_a_new_key_is_fetched_on_its_first_token_and_unknown_kids_fetch_at_a_bounded_rate(
    runtime: Runtime, issuer: Issuer
) -> None:
    rotated = rest_token(issuer, runtime, "rsa-2")
    url = runtime.url(runtime.rest, "/v1/items/1")
    started, fetches = time.monotonic(), issuer.jwks_fetches
    for _ in range(20):  # a caller inventing key ids cannot make us fetch per request
        assert request("GET", url, bearer(rotated))[0] == 401
    elapsed = time.monotonic() - started
    cooldown = 10.0  # OAuthLimits.refresh_cooldown
    assert issuer.jwks_fetches - fetches <= 2 + int(elapsed / cooldown)
    issuer.published.append("rsa-2")  # the authorization server rotates its keys
    deadline = time.monotonic() + 60
    while request("GET", url, bearer(rotated))[0] != 200:  # accepted once the cooldown has passed
        assert time.monotonic() < deadline, "the rotated key was never fetched"
        time.sleep(0.5)
    code, _, body = request("GET", url, bearer(rest_token(issuer, runtime, "rsa-1")))
    assert code == 200, body


# -- introspection (RFC 7662) --------------------------------------------------------------------


def test_opaque_tokens_are_checked_by_introspection(runtime: Runtime, issuer: Issuer) -> None:
    url = runtime.url(runtime.introspected, "/v2/items/5")
    audience = f"http://127.0.0.1:{runtime.introspected}/v2"
    issuer.active["opaque-good-token"] = {"active": True, "scope": "items:read", "aud": audience, "iss": issuer.url}
    issuer.active["opaque-narrow-token"] = {"active": True, "scope": "other", "aud": audience}
    issuer.active["opaque-other-aud"] = {"active": True, "scope": "items:read", "aud": "https://elsewhere"}
    code, _, body = request("GET", url, bearer("opaque-good-token"))
    assert code == 200, body
    assert request("GET", url, bearer("opaque-good-token"))[0] == 200
    assert issuer.introspected.count("opaque-good-token") == 1  # then trusted from the cache
    code, headers, _ = request("GET", url, bearer("opaque-unknown-token"))
    assert code == 401 and 'error="invalid_token"' in challenge(headers)
    assert request("GET", url, bearer("opaque-narrow-token"))[0] == 403
    code, headers, _ = request("GET", url, bearer("caf\xe9-token"))  # not RFC 6750 syntax: never sent on
    assert code == 401 and 'error="invalid_token"' in challenge(headers)
    assert not any("caf" in token for token in issuer.introspected)
    assert request("GET", url, bearer("opaque-other-aud"))[0] == 401


# -- the control port and the verified-token cache ----------------------------------------------


def test_the_control_port_takes_the_same_check_and_leaves_its_probes_open(runtime: Runtime, issuer: Issuer) -> None:
    audience = f"http://127.0.0.1:{runtime.control}/"
    assert request("GET", runtime.url(runtime.control, "/health/live"))[0] == 200
    code, headers, _ = request("GET", runtime.url(runtime.control, "/status"))
    assert code == 401
    metadata = f"http://127.0.0.1:{runtime.control}/.well-known/oauth-protected-resource"
    assert challenge(headers) == f'Bearer resource_metadata="{metadata}"'
    assert json.loads(request("GET", metadata)[2])["resource"] == audience
    code, _, body = request(
        "GET", runtime.url(runtime.control, "/status"), bearer(issuer.sign(aud=audience, scope="ops"))
    )
    assert code == 200, body
    code, _, _ = request("GET", runtime.url(runtime.control, "/status"), bearer(issuer.sign(aud=audience)))
    assert code == 403


def test_the_verified_token_cache_is_bounded_and_forgets_expired_tokens() -> None:
    cache = TokenCache(3)
    for index in range(5):
        cache.keep(f"token-{index}", time.time() + 600)
    assert [cache.holds(f"token-{index}") for index in range(5)] == [False, False, True, True, True]
    cache.keep("expired", time.time() - 1)
    assert not cache.holds("expired")
    assert all(len(key) == 32 for key in cache._until)  # digests, not the tokens themselves


# -- any claims and headers, signed with a real key: 200, 401 or 403, never a 500 ---------------


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
CLAIMS = st.dictionaries(
    st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "scope", "scp", "sub", "jti", "azp"]), JSON_VALUES, max_size=8
)
HEADERS = st.dictionaries(st.sampled_from(["kid", "typ", "cty", "x5u", "jku", "b64"]), JSON_VALUES, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(claims=CLAIMS, header=HEADERS, kid=st.sampled_from(["rsa-1", "ec-1"]), valid_base=st.booleans())
def test_any_claims_and_headers_are_answered_never_raised(
    issuer: Issuer, claims: dict[str, Any], header: dict[str, Any], kid: str, valid_base: bool
) -> None:
    audience = "https://items.example.com/mcp"
    checker = ResourceServer(OAuthSettings(issuer.url, audience, audience, ("items:read",)))
    checker.server.metadata = {"issuer": issuer.url}
    checker.server.keys = tuple(SigningKey(k, issuer.keys[k].public_key()) for k in issuer.published)
    checker.server._fetched = time.monotonic()  # the keys are fresh: nothing is fetched
    base = issuer.claims(aud=audience) if valid_base else {}
    try:
        token = jwt.encode(
            {**base, **claims}, issuer.keys[kid], ALGORITHM[kid.split("-")[0]], headers={"kid": kid, **header}
        )
    except (TypeError, ValueError, OverflowError, jwt.PyJWTError):
        return  # PyJWT cannot write this token (a header it refuses, claims it cannot encode)
    request = Request("GET", "/", CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {token}"})), b"")

    async def verdict() -> Response | None:
        answer = checker.check(request)
        return answer if answer is None or isinstance(answer, Response) else await answer

    answer = asyncio.run(verdict())
    assert answer is None or answer.status in (401, 403), answer.status


# -- the official MCP SDK client -----------------------------------------------------------------


async def test_the_official_mcp_client_calls_a_tool_with_a_bearer_token(runtime: Runtime, issuer: Issuer) -> None:
    token = mcp_token(issuer, runtime, "ec-1")
    async with (
        create_mcp_http_client(headers=bearer(token)) as http_client,
        streamable_http_client(runtime.url(runtime.mcp, "/mcp"), http_client=http_client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert [tool.name for tool in tools.tools] == ["get-item"]
        result = await session.call_tool("get-item", {"id": "77"})
        assert not result.is_error, result


class MemoryTokens:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def test_the_official_mcp_client_finds_the_authorization_server_from_the_401(
    runtime: Runtime, issuer: Issuer
) -> None:
    """MCP authorization as the SDK does it: 401 → the resource metadata → the issuer's RFC 8414
    metadata → a client_credentials token for this resource (RFC 8707) → the call again."""
    issuer.clients["agent-7"] = "client-secret-0123"
    url = runtime.url(runtime.mcp, "/mcp")
    provider = ClientCredentialsOAuthProvider(
        url, MemoryTokens(), "agent-7", "client-secret-0123", scope="items:read", issuer=issuer.url
    )
    async with (
        create_mcp_http_client(auth=provider) as http_client,
        streamable_http_client(url, http_client=http_client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("get-item", {"id": "8"})
        assert not result.is_error, result
    assert issuer.token_requests[-1]["resource"] == url


async def test_the_official_mcp_client_without_a_token_is_refused(runtime: Runtime) -> None:
    with pytest.raises(BaseExceptionGroup) as refused:  # the SDK's error for the 401, in its task groups
        async with (
            streamable_http_client(runtime.url(runtime.mcp, "/mcp")) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
    assert refused.group_contains(MCPError)


# -- the token in the documents and logs ---------------------------------------------------------


def test_openapi_documents_the_oauth2_scheme(runtime: Runtime, issuer: Issuer) -> None:
    code, _, body = request("GET", runtime.url(runtime.rest, "/openapi.json"))
    assert code == 200
    document = json.loads(body)
    validate_openapi(document)
    operation = document["paths"]["/v1/items/{id}"]["get"]
    assert operation["security"] == [{"items-rest-oauth2": ["items:read"]}]
    assert {"401", "403"} <= set(operation["responses"])
    schemes = document["components"]["securitySchemes"]
    assert list(schemes.values()) == [
        {
            "type": "oauth2",
            "flows": {"clientCredentials": {"tokenUrl": issuer.url, "scopes": {"items:read": "the items:read scope"}}},
        }
    ]


def test_tokens_never_reach_the_log(runtime: Runtime, issuer: Issuer) -> None:
    tokens = [
        rest_token(issuer, runtime),
        rest_token(issuer, runtime, scope="nothing"),
        rest_token(issuer, runtime, exp=1),
    ]
    for token in tokens:
        request("GET", runtime.url(runtime.rest, "/v1/items/3"), {**bearer(token), "X-Request-Id": "oauth-log-probe"})
    deadline = time.monotonic() + 10
    while runtime.output().count("oauth-log-probe") < len(tokens):  # the access log is written every 50 ms
        assert time.monotonic() < deadline, runtime.output()[-2000:]
        time.sleep(0.05)
    logged = runtime.output()
    for token in tokens:
        assert token not in logged
        assert token.split(".")[2] not in logged  # not even the signature


# -- an authorization server that is down at start ----------------------------------------------


def test_an_unreachable_authorization_server_gives_503_until_it_comes_back(upstream: Upstream, tmp_path: Path) -> None:
    issuer = Issuer()  # its port is chosen, nothing listens there yet
    served = Runtime(tmp_path, issuer.url, upstream)
    try:
        token = issuer.sign(aud=f"http://127.0.0.1:{served.rest}/v1")
        url = served.url(served.rest, "/v1/items/1")
        code, headers, body = request("GET", url, bearer(token))
        assert code == 503, body
        assert headers["content-type"].startswith("application/problem+json")
        assert "retry-after" in headers
        assert json.loads(body)["type"].endswith("authorization-server-unavailable")
        deadline = time.monotonic() + 10
        while "cannot be reached" not in served.output():
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.05)
        assert f"oauth2: authorization server {issuer.url}" in served.output()
        assert request("GET", served.url(served.rest, "/.well-known/oauth-protected-resource/v1"))[0] == 200
        issuer.start()  # the authorization server comes back
        deadline = time.monotonic() + 90
        while (code := request("GET", url, bearer(token))[0]) != 200:
            assert code == 503
            assert time.monotonic() < deadline, served.output()[-2000:]
            time.sleep(0.5)
        assert "ready" in served.output()
    finally:
        served.stop()
        issuer.close()


def test_a_failing_key_set_gives_503_until_it_answers(upstream: Upstream, tmp_path: Path) -> None:
    issuer = Issuer().start()
    issuer.jwks_status = 503  # the metadata answers, the JWKS does not
    served = Runtime(tmp_path, issuer.url, upstream)
    try:
        url = served.url(served.mcp, "/mcp")
        token = bearer(issuer.sign(aud=url))
        code, headers, body = mcp_post(served, INITIALIZE, token)
        assert code == 503, body
        assert headers["content-type"].startswith("application/problem+json")
        deadline = time.monotonic() + 10
        while f"{issuer.url}/jwks answered HTTP 503" not in served.output():
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.05)
        issuer.jwks_status = 200
        deadline = time.monotonic() + 90
        while (code := mcp_post(served, INITIALIZE, token)[0]) != 200:
            assert code == 503
            assert time.monotonic() < deadline, served.output()[-2000:]
            time.sleep(0.5)
    finally:
        served.stop()
        issuer.close()


# -- validate accepts what run serves ------------------------------------------------------------


def test_validate_accepts_oauth2_exposures(runtime: Runtime) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "validate", "--strict", str(runtime.file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

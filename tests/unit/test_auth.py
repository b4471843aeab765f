"""Authentication of outgoing requests, against real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from naftiko.consumes import auth as auth_module
from naftiko.consumes.auth import (
    AuthConfigError,
    Authenticator,
    AuthError,
    build_authenticator,
)
from naftiko.consumes.client import ClientSettings, NamespaceClient
from naftiko.consumes.request import OutgoingRequest

ENV = {
    "USER": "alice",
    "PASS": "pa:ss wörd",
    "TOKEN": "tok-7f3a9c",
    "KEY": "k3y+/= &secret",
    "CLIENT_SECRET": "cs-9d2e+1/x",
}


def resolve(template: str) -> str:
    return re.sub(r"\{\{env\.(\w+)\}\}", lambda m: ENV[m.group(1)], template)


def build(spec: dict[str, Any]) -> Authenticator:
    authenticator = build_authenticator(spec, resolve)
    assert authenticator is not None
    return authenticator


@pytest.fixture
async def client() -> AsyncIterator[NamespaceClient]:
    """Its `send_once` is what authenticators get: one attempt through the namespace's pool."""
    client = NamespaceClient("test", None, ClientSettings(total_timeout=5.0))
    yield client
    await client.close()


async def start(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


async def send(client: NamespaceClient, request: OutgoingRequest) -> tuple[int, Any, Mapping[str, str]]:
    """Send the request the way the engine does; returns (status, JSON body or None, headers)."""
    response = await client.send_once(request)
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    return response.status, json.loads(response.body) if is_json else None, response.headers


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "headers": dict(request.headers),
            "query": list(request.query.items()),
            "cookies": dict(request.cookies),
            "raw_path": request.raw_path,
        }
    )


@pytest.fixture
async def echo_server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = await start(app)
    yield server
    await server.close()


# --- static credentials ------------------------------------------------------------------


def test_no_authentication() -> None:
    assert build_authenticator(None, resolve) is None


async def test_basic(client: NamespaceClient, echo_server: TestServer) -> None:
    auth = build({"type": "basic", "username": "{{env.USER}}", "password": "{{env.PASS}}"})
    request = OutgoingRequest("GET", str(echo_server.make_url("/x")))
    await auth.apply(request, client.send_once)
    _, body, _ = await send(client, request)
    scheme, _, credential = body["headers"]["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credential).decode() == "alice:pa:ss wörd"
    assert set(auth.secrets) == {"pa:ss wörd", credential}


async def test_basic_replaces_existing_authorization(client: NamespaceClient) -> None:
    auth = build({"type": "basic", "username": "u", "password": "p"})
    request = OutgoingRequest("GET", "http://127.0.0.1/", headers={"authorization": "Bearer x"})
    await auth.apply(request, client.send_once)
    assert request.headers == {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}


async def test_bearer(client: NamespaceClient, echo_server: TestServer) -> None:
    auth = build({"type": "bearer", "token": "{{env.TOKEN}}"})
    request = OutgoingRequest("GET", str(echo_server.make_url("/x")))
    await auth.apply(request, client.send_once)
    _, body, _ = await send(client, request)
    assert body["headers"]["Authorization"] == "Bearer tok-7f3a9c"
    assert auth.secrets == ("tok-7f3a9c",)


@pytest.mark.parametrize("placement", [None, "header"])
async def test_apikey_header(client: NamespaceClient, echo_server: TestServer, placement: str | None) -> None:
    spec = {"type": "apikey", "key": "X-API-Key", "value": "{{env.KEY}}"}
    if placement:
        spec["placement"] = placement
    auth = build(spec)
    request = OutgoingRequest("GET", str(echo_server.make_url("/x")))
    await auth.apply(request, client.send_once)
    _, body, _ = await send(client, request)
    assert body["headers"]["X-API-Key"] == ENV["KEY"]
    assert body["query"] == [] and body["cookies"] == {}
    assert auth.secrets == (ENV["KEY"],)


@pytest.mark.parametrize("value", ["{{env.KEY}}", "k/:@ ü?#%25;,"])
async def test_apikey_query(client: NamespaceClient, echo_server: TestServer, value: str) -> None:
    auth = build({"type": "apikey", "key": "api_key", "value": value, "placement": "query"})
    request = OutgoingRequest("GET", str(echo_server.make_url("/x")), query=[("q", "1")])
    await auth.apply(request, client.send_once)
    await auth.apply(request, client.send_once)  # a retry must not duplicate the key
    _, body, _ = await send(client, request)
    plain = resolve(value)
    assert body["query"] == [["q", "1"], ["api_key", plain]]
    assert "X-API-Key" not in body["headers"]
    # The value as it appears in the request-target is masked as well.
    encoded = body["raw_path"].rpartition("api_key=")[2]
    assert encoded != plain
    assert set(auth.secrets) == {plain, encoded}


async def test_apikey_cookie(client: NamespaceClient, echo_server: TestServer) -> None:
    auth = build({"type": "apikey", "key": "LtpaToken2", "value": "abc123==", "placement": "cookie"})
    request = OutgoingRequest("GET", str(echo_server.make_url("/x")))
    await auth.apply(request, client.send_once)
    _, body, _ = await send(client, request)
    assert body["cookies"] == {"LtpaToken2": "abc123=="}
    assert "LtpaToken2" not in body["headers"]


async def test_apikey_name_in_dialect(client: NamespaceClient) -> None:
    auth = build({"type": "apiKey", "name": "X-Vendor-Key", "in": "header", "value": "v"})
    request = OutgoingRequest("GET", "http://127.0.0.1/")
    await auth.apply(request, client.send_once)
    assert request.headers == {"X-Vendor-Key": "v"}


# --- configuration errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "bearer", "token": "abc\r\nX-Evil: 1"},
        {"type": "bearer", "token": "abc\nX-Evil: 1"},
        {"type": "apikey", "key": "X-Key", "value": "abc\rX-Evil: 1"},
        {"type": "apikey", "key": "Session", "value": "abc\n", "placement": "cookie"},
        {"type": "digest", "username": "abc\r\nX-Evil: 1", "password": "p"},
    ],
)
def test_crlf_rejected(spec: dict[str, str]) -> None:
    with pytest.raises(AuthConfigError) as info:
        build_authenticator(spec, resolve)
    assert "CR" in str(info.value)
    assert "X-Evil" not in str(info.value)


def test_crlf_from_resolved_value_rejected() -> None:
    with pytest.raises(AuthConfigError, match=r"authentication\.token"):
        build_authenticator({"type": "bearer", "token": "{{env.T}}"}, lambda s: "a\r\nb: c")


def test_invalid_header_name_rejected() -> None:
    with pytest.raises(AuthConfigError, match=r"authentication\.key"):
        build_authenticator({"type": "apikey", "key": "X Key: y", "value": "v"}, resolve)


def test_unknown_type_rejected() -> None:
    with pytest.raises(AuthConfigError) as info:
        build_authenticator({"type": "aws-sig-v4", "accessKey": "k"}, resolve)
    message = str(info.value)
    assert "'aws-sig-v4'" in message and "not supported" in message
    assert "basic" in message and "oauth1" in message and "oauth2" in message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "authentication.type"),
        ({"type": "basic", "username": "u"}, "authentication.password"),
        ({"type": "bearer"}, "authentication.token"),
        ({"type": "apikey", "value": "v"}, "authentication.key"),
        ({"type": "apikey", "key": "k", "value": "v", "placement": "body"}, "placement"),
        ({"type": "basic", "username": "a:b", "password": "p"}, "authentication.username"),
        ({"type": "oauth2", "tokenEndpoint": "http://t", "clientId": "c"}, "clientSecret"),
        ({"type": "oauth2", "clientId": "c", "clientSecret": "s"}, "tokenEndpoint"),
    ],
)
def test_bad_block_names_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(AuthConfigError, match=re.escape(field)):
        build_authenticator(spec, resolve)


def test_config_error_never_shows_the_secret() -> None:
    with pytest.raises(AuthConfigError) as info:
        build_authenticator({"type": "basic", "username": "a:b", "password": "hunter2"}, resolve)
    assert "hunter2" not in str(info.value)


async def test_static_authenticators_ignore_challenges(client: NamespaceClient) -> None:
    auth = build({"type": "bearer", "token": "t"})
    request = OutgoingRequest("GET", "http://127.0.0.1/")
    headers = {"WWW-Authenticate": 'Digest realm="r", nonce="n", qop="auth"'}
    assert auth.answer_challenge(request, 401, headers) is False


# --- digest ------------------------------------------------------------------------------

REALM = "naftiko@test"
DIGEST_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data),
}


def parse_credentials(header: str) -> dict[str, str]:
    """An independent parser for `Digest k=v, k="v"` credentials."""
    scheme, _, rest = header.partition(" ")
    assert scheme == "Digest"
    pairs = re.findall(r'([\w*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', rest)
    return {k: re.sub(r"\\(.)", r"\1", quoted) if quoted else bare for k, quoted, bare in pairs}


class DigestUpstream:
    """A digest-protected resource that issues challenges and checks responses (RFC 7616)."""

    def __init__(self, algorithms: list[str], qop: str = "auth", password: str = "pa:ss wörd") -> None:
        self.algorithms = algorithms  # one challenge per algorithm (e.g. MD5-sess), in order
        self.qop = qop
        self.password = password
        self.nonces: dict[str, int] = {}  # nonce -> last nc seen
        self.challenges = 0
        self.accepted: list[dict[str, str]] = []

    def challenge(self, stale: bool = False) -> web.Response:
        self.challenges += 1
        nonce = secrets.token_hex(12)
        self.nonces[nonce] = 0
        response = web.Response(status=401)
        response.headers.add("WWW-Authenticate", 'Basic realm="other"')
        for algorithm in self.algorithms:
            params = f'realm="{REALM}", qop="{self.qop}", algorithm={algorithm}, '
            params += f'nonce="{nonce}", opaque="op-aque"' + (", stale=true" if stale else "")
            response.headers.add("WWW-Authenticate", "Digest " + params)
        return response

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        if header is None:
            return self.challenge()
        creds = parse_credentials(header)
        if creds["nonce"] not in self.nonces:
            return self.challenge(stale=True)
        algorithm = creds["algorithm"]
        if algorithm not in self.algorithms:
            return self.challenge()
        hash_fn = DIGEST_HASHES[algorithm.removesuffix("-sess")]

        def h(data: str | bytes) -> str:
            return hash_fn(data.encode() if isinstance(data, str) else data).hexdigest()

        a1 = h(f"{creds['username']}:{REALM}:{self.password}")
        if algorithm.endswith("-sess"):
            a1 = h(f"{a1}:{creds['nonce']}:{creds['cnonce']}")
        body = await request.read()
        a2 = f"{request.method}:{creds['uri']}"
        if creds["qop"] == "auth-int":
            a2 += ":" + h(body)
        expected = h(f"{a1}:{creds['nonce']}:{creds['nc']}:{creds['cnonce']}:{creds['qop']}:{h(a2)}")
        nc = int(creds["nc"], 16)
        ok = (
            creds["response"] == expected
            and creds["realm"] == REALM
            and creds["opaque"] == "op-aque"
            and creds["qop"] == self.qop
            and creds["uri"] == request.raw_path
            and re.fullmatch(r"[0-9a-f]{8}", creds["nc"]) is not None
            and nc > self.nonces[creds["nonce"]]
            and len(creds["cnonce"]) >= 8
        )
        if not ok:
            return web.Response(status=401, headers=self.challenge().headers)
        self.nonces[creds["nonce"]] = nc
        self.accepted.append(creds)
        return web.json_response({"ok": True})


async def digest_server(upstream: DigestUpstream) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    return await start(app)


async def call_with_digest(client: NamespaceClient, auth: Authenticator, request: OutgoingRequest) -> int:
    """The engine's loop: apply, send, answer one challenge, resend once."""
    await auth.apply(request, client.send_once)
    status, _, headers = await send(client, request)
    if auth.answer_challenge(request, status, headers):
        status, _, headers = await send(client, request)
    return status


DIGEST_SPEC = {"type": "digest", "username": "{{env.USER}}", "password": "{{env.PASS}}"}


@pytest.mark.parametrize(
    ("algorithms", "chosen", "qop"),
    [
        (["MD5"], "MD5", "auth"),
        (["SHA-256"], "SHA-256", "auth"),
        (["MD5-sess"], "MD5-sess", "auth"),
        (["SHA-512-256"], "SHA-512-256", "auth"),
        (["MD5", "SHA-256"], "SHA-256", "auth"),  # the strongest offer wins
        (["SHA-256"], "SHA-256", "auth-int"),
    ],
)
async def test_digest_challenge_and_preauthorisation(
    client: NamespaceClient, algorithms: list[str], chosen: str, qop: str
) -> None:
    upstream = DigestUpstream(algorithms, qop=qop)
    server = await digest_server(upstream)
    try:
        auth = build(DIGEST_SPEC)
        url = str(server.make_url("/items/a b"))
        request = OutgoingRequest("POST", url, query=[("q", "x y/ü&z")], body=b'{"n": 1}')
        assert await call_with_digest(client, auth, request) == 200
        assert upstream.challenges == 1
        assert upstream.accepted[0]["algorithm"] == chosen
        assert upstream.accepted[0]["username"] == "alice"

        # The next request is pre-authorised with the cached nonce: no new challenge.
        request = OutgoingRequest("POST", url, body=b"{}")
        assert await call_with_digest(client, auth, request) == 200
        assert upstream.challenges == 1
        assert [c["nc"] for c in upstream.accepted] == ["00000001", "00000002"]
        assert auth.secrets == ("pa:ss wörd",)
    finally:
        await server.close()


async def test_digest_verifier_refuses_a_wrong_hash(client: NamespaceClient) -> None:
    """Guards the fake upstream itself: a bad response hash must not pass."""
    server = await digest_server(DigestUpstream(["MD5"]))
    try:
        request = OutgoingRequest("GET", str(server.make_url("/x")))
        status, _, headers = await send(client, request)
        nonce = parse_credentials(headers.getall("WWW-Authenticate")[1])["nonce"]
        request.headers["Authorization"] = (
            f'Digest username="alice", realm="{REALM}", nonce="{nonce}", uri="/x", '
            f'algorithm=MD5, response="{"0" * 32}", opaque="op-aque", qop=auth, '
            f'nc=00000001, cnonce="abcdef0123"'
        )
        status, _, _ = await send(client, request)
        assert status == 401
    finally:
        await server.close()


async def test_digest_wrong_password_resends_once(client: NamespaceClient) -> None:
    upstream = DigestUpstream(["SHA-256"], password="other")
    server = await digest_server(upstream)
    try:
        auth = build(DIGEST_SPEC)
        request = OutgoingRequest("GET", str(server.make_url("/x")))
        await auth.apply(request, client.send_once)
        status, _, headers = await send(client, request)
        assert auth.answer_challenge(request, status, headers) is True
        status, _, headers = await send(client, request)
        assert status == 401
        # The refusal carries a fresh nonce here; a refusal of the same nonce ends the loop.
        assert auth.answer_challenge(request, status, headers) is True
        same_nonce = {"WWW-Authenticate": headers.getall("WWW-Authenticate")[1]}
        assert auth.answer_challenge(request, 401, same_nonce) is False
        assert upstream.accepted == []
    finally:
        await server.close()


async def test_digest_stale_nonce_is_answered(client: NamespaceClient) -> None:
    upstream = DigestUpstream(["MD5"])
    server = await digest_server(upstream)
    try:
        auth = build(DIGEST_SPEC)
        url = str(server.make_url("/x"))
        assert await call_with_digest(client, auth, OutgoingRequest("GET", url)) == 200
        upstream.nonces.clear()  # the server forgets its nonces: next pre-auth is stale
        assert await call_with_digest(client, auth, OutgoingRequest("GET", url)) == 200
        assert upstream.challenges == 2
        assert len(upstream.accepted) == 2
    finally:
        await server.close()


async def test_digest_ignores_other_challenges(client: NamespaceClient) -> None:
    auth = build(DIGEST_SPEC)
    request = OutgoingRequest("GET", "http://127.0.0.1/x")
    assert auth.answer_challenge(request, 401, {"WWW-Authenticate": 'Basic realm="r"'}) is False
    digest = {"WWW-Authenticate": 'Digest realm="r", nonce="n", qop="auth"'}
    assert auth.answer_challenge(request, 403, digest) is False
    unsupported = {"WWW-Authenticate": 'Digest realm="r", nonce="n", algorithm=SHA-1'}
    assert auth.answer_challenge(request, 401, unsupported) is False
    assert "Authorization" not in request.headers


def test_digest_challenge_in_one_header_with_other_schemes() -> None:
    auth = build(DIGEST_SPEC)
    request = OutgoingRequest("GET", "http://127.0.0.1/x")
    header = (
        'Negotiate abc==, Basic realm="a, b", '
        'Digest realm="r\\"q", nonce="n1", qop="auth-int, auth", algorithm=SHA-256, userhash=true'
    )
    assert auth.answer_challenge(request, 401, {"www-authenticate": header}) is True
    creds = parse_credentials(request.headers["Authorization"])
    assert creds["realm"] == 'r"q' and creds["nonce"] == "n1" and creds["qop"] == "auth"
    assert creds["algorithm"] == "SHA-256" and creds["userhash"] == "true"
    assert creds["username"] == hashlib.sha256(b'alice:r"q').hexdigest()


async def test_digest_non_ascii_username() -> None:
    auth = build({"type": "digest", "username": "jürgen", "password": "p"})
    request = OutgoingRequest("GET", "http://127.0.0.1/x")
    headers = {"WWW-Authenticate": 'Digest realm="r", nonce="n", qop="auth"'}
    assert auth.answer_challenge(request, 401, headers) is True
    creds = parse_credentials(request.headers["Authorization"])
    assert "username" not in creds
    assert unquote(creds["username*"].removeprefix("UTF-8''")) == "jürgen"


# --- OAuth2 client credentials -----------------------------------------------------------


class TokenEndpoint:
    def __init__(self, expires_in: Any = 3600, fail: int | None = None) -> None:
        self.expires_in = expires_in
        self.fail = fail
        self.fetches = 0
        self.forms: list[dict[str, str]] = []
        self.authorizations: list[str | None] = []
        self.queries: list[list[tuple[str, str]]] = []
        self.content_types: list[str] = []
        self.accepts: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        await asyncio.sleep(0.01)  # let concurrent callers pile up
        self.forms.append(dict(await request.post()))
        self.authorizations.append(request.headers.get("Authorization"))
        self.queries.append(list(request.query.items()))
        self.content_types.append(request.headers.get("Content-Type", ""))
        self.accepts.append(request.headers.get("Accept"))
        if self.fail:
            return web.json_response({"error": "invalid_client"}, status=self.fail)
        body: dict[str, Any] = {"access_token": f"at-{self.fetches}", "token_type": "bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body)


@pytest.fixture
async def oauth_server() -> AsyncIterator[tuple[TestServer, TokenEndpoint]]:
    endpoint = TokenEndpoint()
    app = web.Application()
    app.router.add_post("/oauth/token", endpoint.handle)

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response({"token_endpoint": str(request.url.with_path("/oauth/token"))})

    app.router.add_get("/.well-known/oauth-authorization-server/tenant-1", metadata)
    app.router.add_route("*", "/api/{tail:.*}", echo)
    server = await start(app)
    yield server, endpoint
    await server.close()


def oauth_spec(server: TestServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth2",
        "authorizationServerUri": str(server.make_url("/tenant-1")),
        "resource": "https://api.example.com/",
        "tokenEndpoint": str(server.make_url("/oauth/token")),
        "clientId": "my-client",
        "clientSecret": "{{env.CLIENT_SECRET}}",
        "scopes": ["read:items", "write:items"],
        **extra,
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(auth_module, "time", fake)
    return fake


async def test_oauth2_token_is_fetched_once_and_reused(
    client: NamespaceClient, oauth_server: tuple[TestServer, TokenEndpoint]
) -> None:
    server, endpoint = oauth_server
    auth = build(oauth_spec(server))
    for _ in range(2):
        request = OutgoingRequest("GET", str(server.make_url("/api/items")))
        await auth.apply(request, client.send_once)
        _, body, _ = await send(client, request)
        assert body["headers"]["Authorization"] == "Bearer at-1"
    assert endpoint.fetches == 1
    assert endpoint.forms[0] == {
        "grant_type": "client_credentials",
        "scope": "read:items write:items",
        "resource": "https://api.example.com/",
    }
    # client_secret_basic by default: id and secret form-encoded, then base64 (RFC 6749 §2.3.1).
    scheme, _, credential = endpoint.authorizations[0].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credential).decode() == "my-client:cs-9d2e%2B1%2Fx"
    assert set(auth.secrets) == {ENV["CLIENT_SECRET"], credential, "at-1"}


async def test_oauth2_concurrent_applies_share_one_fetch(
    client: NamespaceClient, oauth_server: tuple[TestServer, TokenEndpoint]
) -> None:
    server, endpoint = oauth_server
    auth = build(oauth_spec(server))
    requests = [OutgoingRequest("GET", str(server.make_url("/api/x"))) for _ in range(5)]
    await asyncio.gather(*(auth.apply(r, client.send_once) for r in requests))
    assert endpoint.fetches == 1
    assert {r.headers["Authorization"] for r in requests} == {"Bearer at-1"}


async def test_oauth2_expired_token_is_refetched(
    client: NamespaceClient,
    oauth_server: tuple[TestServer, TokenEndpoint],
    clock: FakeClock,
) -> None:
    server, endpoint = oauth_server
    endpoint.expires_in = 120
    auth = build(oauth_spec(server))
    request = OutgoingRequest("GET", str(server.make_url("/api/x")))
    await auth.apply(request, client.send_once)
    assert request.headers["Authorization"] == "Bearer at-1"

    clock.now += 85  # still more than 30 s before expiry
    await auth.apply(request, client.send_once)
    assert request.headers["Authorization"] == "Bearer at-1"
    assert endpoint.fetches == 1

    clock.now += 10  # within the last 30 s: refresh ahead of expiry
    await auth.apply(request, client.send_once)
    assert request.headers["Authorization"] == "Bearer at-2"
    assert endpoint.fetches == 2
    assert {"at-1", "at-2"} <= set(auth.secrets)


async def test_oauth2_refused_token_is_refetched(
    client: NamespaceClient, oauth_server: tuple[TestServer, TokenEndpoint]
) -> None:
    server, endpoint = oauth_server
    endpoint.expires_in = None  # kept until the upstream refuses it
    auth = build(oauth_spec(server))
    request = OutgoingRequest("GET", str(server.make_url("/api/x")))
    await auth.apply(request, client.send_once)
    await auth.apply(request, client.send_once)
    assert endpoint.fetches == 1
    assert auth.answer_challenge(request, 401, {"WWW-Authenticate": "Bearer"}) is False
    await auth.apply(request, client.send_once)
    assert request.headers["Authorization"] == "Bearer at-2"
    assert endpoint.fetches == 2


async def test_oauth2_client_secret_post(
    client: NamespaceClient, oauth_server: tuple[TestServer, TokenEndpoint]
) -> None:
    server, endpoint = oauth_server
    spec = oauth_spec(server, tokenEndpointAuthMethod="client_secret_post", audience="api://x")
    del spec["scopes"]
    auth = build(spec)
    await auth.apply(OutgoingRequest("GET", str(server.make_url("/api/x"))), client.send_once)
    assert endpoint.authorizations == [None]
    assert endpoint.forms[0] == {
        "grant_type": "client_credentials",
        "resource": "https://api.example.com/",
        "audience": "api://x",
        "client_id": "my-client",
        "client_secret": ENV["CLIENT_SECRET"],
    }


async def test_oauth2_token_endpoint_discovered_from_issuer(
    client: NamespaceClient, oauth_server: tuple[TestServer, TokenEndpoint]
) -> None:
    server, endpoint = oauth_server
    spec = oauth_spec(server)
    del spec["tokenEndpoint"]
    auth = build(spec)
    request = OutgoingRequest("GET", str(server.make_url("/api/x")))
    await auth.apply(request, client.send_once)
    assert request.headers["Authorization"] == "Bearer at-1"
    assert endpoint.fetches == 1


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_oauth2_failing_token_endpoint(
    client: NamespaceClient,
    oauth_server: tuple[TestServer, TokenEndpoint],
    status: int,
) -> None:
    server, endpoint = oauth_server
    endpoint.fail = status
    auth = build(oauth_spec(server))
    request = OutgoingRequest("GET", str(server.make_url("/api/x")))
    with pytest.raises(AuthError) as info:
        await auth.apply(request, client.send_once)
    message = str(info.value)
    assert str(server.make_url("/oauth/token")) in message
    assert str(status) in message and "invalid_client" in message
    for secret in auth.secrets:
        assert secret not in message
    assert ENV["CLIENT_SECRET"] in auth.secrets
    assert "Authorization" not in request.headers


async def test_oauth2_unreachable_token_endpoint(client: NamespaceClient) -> None:
    server = await start(web.Application())
    url = str(server.make_url("/oauth/token"))
    await server.close()
    auth = build({"type": "oauth2", "tokenEndpoint": url, "clientId": "c", "clientSecret": "s3"})
    with pytest.raises(AuthError, match=re.escape(url)):
        await auth.apply(OutgoingRequest("GET", "http://127.0.0.1/"), client.send_once)


async def test_oauth2_token_endpoint_with_a_query(
    client: NamespaceClient, oauth_server: tuple[TestServer, TokenEndpoint]
) -> None:
    server, endpoint = oauth_server
    url = str(server.make_url("/oauth/token")) + "?tenant=a%26b&x="
    auth = build(oauth_spec(server, tokenEndpoint=url))
    request = OutgoingRequest("GET", str(server.make_url("/api/x")))
    await auth.apply(request, client.send_once)
    assert request.headers["Authorization"] == "Bearer at-1"
    assert endpoint.queries == [[("tenant", "a&b"), ("x", "")]]
    assert endpoint.content_types == ["application/x-www-form-urlencoded"]
    assert endpoint.accepts == ["application/json"]


async def test_oauth2_token_response_not_json(client: NamespaceClient) -> None:
    async def token(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/token", token)
    server = await start(app)
    try:
        url = str(server.make_url("/token"))
        auth = build({"type": "oauth2", "tokenEndpoint": url, "clientId": "c", "clientSecret": "s3"})
        with pytest.raises(AuthError, match="has no usable access_token"):
            await auth.apply(OutgoingRequest("GET", "http://127.0.0.1/"), client.send_once)
    finally:
        await server.close()


async def test_oauth2_token_request_within_the_total_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"access_token": "late"})

    app = web.Application()
    app.router.add_post("/token", slow)
    server = await start(app)
    client = NamespaceClient("test", None, ClientSettings(total_timeout=0.2))
    try:
        url = str(server.make_url("/token"))
        auth = build({"type": "oauth2", "tokenEndpoint": url, "clientId": "c", "clientSecret": "s3"})
        with pytest.raises(AuthError, match=re.escape(f"OAuth2 request to {url} failed: TimeoutError")):
            await asyncio.wait_for(auth.apply(OutgoingRequest("GET", "http://127.0.0.1/"), client.send_once), 2)
    finally:
        await client.close()
        await server.close()


async def test_oauth2_token_endpoint_not_http(client: NamespaceClient) -> None:
    url = "ftp://tokens.example.com/token"
    auth = build({"type": "oauth2", "tokenEndpoint": url, "clientId": "c", "clientSecret": "s3"})
    with pytest.raises(AuthError, match=re.escape(f"OAuth2 request to {url} failed: ValueError")):
        await auth.apply(OutgoingRequest("GET", "http://127.0.0.1/"), client.send_once)

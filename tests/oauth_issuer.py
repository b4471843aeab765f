"""A real OAuth 2.1 authorization server for tests and bench/oauth_cost.py: RFC 8414 metadata,
a JWK set, RFC 7662 introspection, served by aiohttp on 127.0.0.1 in its own thread (so a
`naftiko run` subprocess and synchronous tests can both use it), with real RSA and EC keys made
here. It signs access tokens (RFC 9068) with PyJWT, and can go down and come back on its port."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from support import free_port

ALGORITHM = {"rsa": "RS256", "ec": "ES256"}


class Issuer:
    def __init__(self, port: int | None = None, audience: str = ""):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.audience = audience
        self.keys: dict[str, Any] = {
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
            "rsa-2": rsa.generate_private_key(public_exponent=65537, key_size=2048),  # published on rotation
        }
        self.published = ["rsa-1", "ec-1"]
        self.jwks_fetches = 0
        self.jwks_status = 200  # another status plays a key server that fails
        self.metadata_fetches = 0
        self.active: dict[str, dict[str, Any]] = {}  # opaque token → its introspection answer
        self.introspected: list[str] = []
        self.clients: dict[str, str] = {}  # client id → secret, for the client_credentials grant
        self.token_requests: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    # -- tokens ------------------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.audience,
            "sub": "alice",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "scope": "items:read",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, kid: str = "rsa-1", header: dict[str, Any] | None = None, **overrides: Any) -> str:
        """A token signed by key `kid`; `overrides` replace claims (None removes one)."""
        algorithm = ALGORITHM[kid.split("-")[0]]
        return jwt.encode(self.claims(**overrides), self.keys[kid], algorithm, headers={"kid": kid, **(header or {})})

    def public_pem(self, kid: str = "rsa-1") -> bytes:
        from cryptography.hazmat.primitives import serialization

        return (
            self.keys[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            key = self.keys[kid]
            converter = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
            jwk = converter.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM[kid.split("-")[0]]})
        return {"keys": keys}

    # -- serving -----------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_fetches += 1
        return web.json_response(
            {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/jwks",
                "authorization_endpoint": f"{self.url}/authorize",  # required by RFC 8414 readers; unused here
                "token_endpoint": f"{self.url}/token",
                "introspection_endpoint": f"{self.url}/introspect",
                "response_types_supported": ["code"],
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        if self.jwks_status != 200:
            return web.json_response({"error": "unavailable"}, status=self.jwks_status)
        return web.json_response(self.jwks())

    async def _token(self, request: web.Request) -> web.Response:
        """The client_credentials grant (client_secret_basic): a token for the RFC 8707 `resource`."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        try:
            client, _, secret = (
                base64.b64decode(request.headers["Authorization"].split(" ", 1)[1]).decode().partition(":")
            )
        except (KeyError, IndexError, ValueError):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials" or self.clients.get(unquote_plus(client)) != unquote_plus(
            secret
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = self.sign(aud=form.get("resource", ""), scope=form.get("scope", ""), sub=client)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 600})

    async def _introspect(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", ""))
        self.introspected.append(token)
        return web.json_response(self.active.get(token, {"active": False}))

    def start(self) -> Issuer:
        async def up() -> None:
            app = web.Application()
            app.router.add_get("/.well-known/oauth-authorization-server", self._metadata)
            app.router.add_get("/jwks", self._jwks)
            app.router.add_post("/introspect", self._introspect)
            app.router.add_post("/token", self._token)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
            self._runner = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

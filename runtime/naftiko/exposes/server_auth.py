"""Authentication of callers on an exposure (REST, MCP over HTTP, skill, control): bearer,
apikey, basic, and oauth2 (an OAuth 2.1 resource server, naftiko/auth/).

Credentials are resolved once at load; every check is constant-time. A refused request gets
401 with a `WWW-Authenticate` challenge and an RFC 9457 problem body that never echoes what
the caller sent. Adapters do not call these checks themselves: `naftiko.auth.guard` does.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..auth import CallerAuth, ResourceServer
from ..auth.oauth_settings import OAuthConfigError, read_oauth
from ..http import Request, Response
from .problems import problem


class ServerAuthConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ServerAuth:
    scheme: str  # bearer | apikey | basic
    expected: bytes  # the token, the api key value, or "user:password"
    key: str = "Authorization"  # apikey: header or query parameter name
    placement: str = "header"  # apikey: header | query

    @property
    def secrets(self) -> tuple[str, ...]:
        text = self.expected.decode()
        if self.scheme == "basic":
            return (text.partition(":")[2], base64.b64encode(self.expected).decode())
        return (text,)

    def presented(self, request: Request) -> bytes | None:
        if self.scheme == "apikey":
            value = request.query.get(self.key) if self.placement == "query" else request.headers.get(self.key)
            return value.encode() if value is not None else None
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if self.scheme == "bearer" and scheme.lower() == "bearer":
            return credential.strip().encode()
        if self.scheme == "basic" and scheme.lower() == "basic":
            try:
                return base64.b64decode(credential.strip(), validate=True)
            except ValueError:
                return None
        return None

    def allows(self, request: Request) -> bool:
        presented = self.presented(request)
        return presented is not None and hmac.compare_digest(presented, self.expected)

    def check(self, request: Request) -> Response | None:
        """The challenge, or None when the caller presented the credential (no I/O: answered at once)."""
        return None if self.allows(request) else self.challenge()

    def challenge(self) -> Response:
        if self.scheme == "basic":
            www = 'Basic realm="naftiko", charset="UTF-8"'
        elif self.scheme == "bearer":
            www = 'Bearer realm="naftiko"'
        else:
            www = f'ApiKey realm="naftiko", {self.placement}="{self.key}"'
        response = problem(401, "unauthorized", "Unauthorized", "missing or invalid credentials for this exposure")
        response.headers["WWW-Authenticate"] = www
        return response


def build_server_auth(spec: Mapping[str, Any] | None, resolve: Callable[[str], str]) -> CallerAuth | None:
    if spec is None:
        return None
    kind = str(spec.get("type", "")).lower()
    if kind == "oauth2":
        try:
            return ResourceServer(read_oauth(spec, resolve))
        except OAuthConfigError as exc:
            raise ServerAuthConfigError(str(exc)) from None
    if kind == "bearer":
        return ServerAuth("bearer", _required(spec, "token", resolve).encode())
    if kind == "apikey":
        placement = str(spec.get("placement", "header")).lower()
        if placement not in ("header", "query"):
            raise ServerAuthConfigError(
                f"authentication.placement {placement!r} is not supported on an exposure (header, query)"
            )
        return ServerAuth(
            "apikey", _required(spec, "value", resolve).encode(), _required(spec, "key", resolve), placement
        )
    if kind == "basic":
        user = _required(spec, "username", resolve)
        return ServerAuth("basic", f"{user}:{_required(spec, 'password', resolve)}".encode())
    raise ServerAuthConfigError(
        f"authentication.type {kind!r} is not supported on an exposure (bearer, apikey, basic, oauth2)"
    )


def _required(spec: Mapping[str, Any], field: str, resolve: Callable[[str], str]) -> str:
    value = spec.get(field)
    if value is None or value == "":
        raise ServerAuthConfigError(f"authentication.{field} is required")
    resolved = resolve(str(value))
    if not resolved:
        raise ServerAuthConfigError(f"authentication.{field} resolves to an empty value")
    return resolved

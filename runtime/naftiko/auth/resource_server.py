"""An exposure as an OAuth 2.1 resource server (MCP authorization, RFC 9728, RFC 6750).

    authentication:
      type: oauth2
      authorizationServerUri: https://auth.example.com/realms/acme
      resource: https://mcp.example.com/mcp
      scopes: [customers:write]

A caller sends `Authorization: Bearer <token>`. No token: 401 whose `WWW-Authenticate` points at
this resource's metadata document (served without a token at
`/.well-known/oauth-protected-resource<resource path>`), so an MCP client can find the
authorization server. A token that fails any check: 401 `error="invalid_token"`. A valid token
missing a configured scope: 403 `error="insufficient_scope"`. Authorization server unreachable:
503 problem, Retry-After. The token is used here only: it is never passed upstream (the
capability's own consumed authentication is), logged, or echoed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable
from typing import Any

from .. import json_text
from ..exposes.problems import problem
from ..http import Request, Response
from .authorization_server import AuthorizationServer, Unavailable
from .fetch import FetchError
from .oauth_settings import OAuthSettings
from .token_cache import TokenCache
from .tokens import Rejected, granted_scopes, introspect, verify_jwt

log = logging.getLogger("naftiko")
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1


class ResourceServer:
    scheme = "oauth2"

    def __init__(self, settings: OAuthSettings):
        self.settings = settings
        self.server = AuthorizationServer(settings)
        self.cache = TokenCache(settings.limits.cache_size)
        self.required = frozenset(settings.scopes)
        self._metadata_param = f'resource_metadata="{settings.metadata_url}"'
        self.metadata_document = json_text.dumps(self.metadata())

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()  # nothing secret is configured: keys come from the authorization server

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata."""
        document: dict[str, Any] = {
            "resource": self.settings.resource,
            "authorization_servers": [self.settings.issuer],
            "bearer_methods_supported": ["header"],
        }
        if self.settings.scopes:
            document["scopes_supported"] = list(self.settings.scopes)
        return document

    def openapi_scheme(self) -> dict[str, Any]:
        """The OpenAPI security scheme: client credentials at `tokenEndpoint` (else the issuer)."""
        token_url = self.settings.token_endpoint or self.settings.issuer
        scopes = {scope: f"the {scope} scope" for scope in self.settings.scopes}
        return {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": scopes}}}

    def start(self) -> None:
        """Fetch the authorization server's metadata and keys now (called when the port serves)."""
        self.server.start()

    def check(self, request: Request) -> Response | None | Awaitable[Response | None]:
        """A refusal, or None; awaitable unless the answer is known at once (a cached token)."""
        token = _bearer(request)
        if token is None:
            return self._challenge(401, "unauthorized", "no bearer token was sent", "")
        if len(token) > self.settings.limits.max_token_bytes:
            return self._invalid("the token is longer than this server accepts")
        if self.cache.holds(token):
            return None
        if not _B64TOKEN.fullmatch(token):
            return self._invalid("the token is not an RFC 6750 bearer token")
        return self._verify(token)

    async def _verify(self, token: str) -> Response | None:
        settings = self.settings
        try:
            if settings.validation == "introspection":
                claims = await introspect(token, self.server, settings)
            else:
                claims = await verify_jwt(token, self.server, settings)
            scopes = granted_scopes(claims)
        except Rejected as exc:
            return self._invalid(str(exc))
        except (Unavailable, FetchError) as exc:
            return self._unavailable(str(exc))
        missing = self.required - scopes
        if missing:
            return self._challenge(
                403,
                "insufficient-scope",
                f"the token lacks the scope(s) {' '.join(sorted(missing))}",
                f'error="insufficient_scope", scope="{" ".join(settings.scopes)}", ',
            )
        until = _number(claims.get("exp"))
        if settings.validation == "introspection":
            ttl = time.time() + settings.limits.introspection_ttl
            until = ttl if until is None else min(until, ttl)
        if until is not None:
            self.cache.keep(token, until)
        return None

    def _invalid(self, description: str) -> Response:
        return self._challenge(
            401, "invalid-token", description, f'error="invalid_token", error_description="{description}", '
        )

    def _challenge(self, status: int, kind: str, detail: str, params: str) -> Response:
        title = "Forbidden" if status == 403 else "Unauthorized"
        response = problem(status, kind, title, detail)
        response.headers["WWW-Authenticate"] = f"Bearer {params}{self._metadata_param}"
        return response

    def _unavailable(self, reason: str) -> Response:
        response = problem(
            503,
            "authorization-server-unavailable",
            "Service unavailable",
            "tokens cannot be checked: the authorization server cannot be reached (the server log says why)",
        )
        response.headers["Retry-After"] = "5"
        log.debug("oauth2: call refused with 503: %s", reason)
        return response


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

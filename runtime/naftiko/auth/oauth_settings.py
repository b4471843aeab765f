"""An exposure's `authentication: {type: oauth2, ...}` (official alpha2 `AuthOAuth2`), read once
at load, and the bounds of the resource server (fetch sizes and timeouts, refresh rates, caches)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

WELL_KNOWN = "/.well-known/oauth-protected-resource"


class OAuthConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class OAuthLimits:
    """Every bound of the resource server; the defaults suit production."""

    connect_timeout: float = 3.0  # seconds, per fetch of metadata or keys
    fetch_timeout: float = 5.0  # seconds, whole fetch
    max_document_bytes: int = 256 * 1024  # metadata, JWKS or introspection answer
    max_keys: int = 64  # keys read from one JWKS
    keys_ttl: float = 300.0  # seconds a JWKS is used before it is fetched again
    refresh_cooldown: float = 10.0  # at most one fetch per this many seconds on an unknown `kid`
    retry_first: float = 1.0  # seconds before retrying an unreachable authorization server...
    retry_max: float = 30.0  # ...doubling up to this
    leeway: float = 30.0  # seconds of clock skew allowed on exp, nbf, iat
    max_token_bytes: int = 8192  # longer bearer tokens are refused unread
    cache_size: int = 10_000  # verified tokens remembered until they expire
    introspection_ttl: float = 60.0  # seconds an introspected token is trusted (at most its exp)


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    issuer: str  # authorizationServerUri as written
    resource: str
    audience: str
    scopes: tuple[str, ...] = ()
    validation: str = "jwks"  # jwks | introspection
    token_endpoint: str | None = None  # for the OpenAPI document only
    limits: OAuthLimits = field(default_factory=OAuthLimits)

    @property
    def metadata_path(self) -> str:
        """Where this resource's RFC 9728 document is served (the path form: the resource's
        path appended to the well-known prefix)."""
        path = urlsplit(self.resource).path.rstrip("/")
        return WELL_KNOWN + path

    @property
    def metadata_url(self) -> str:
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.metadata_path}"

    def issuers(self) -> tuple[str, ...]:
        """The `iss` values accepted: the issuer with and without a trailing slash."""
        bare = self.issuer.rstrip("/")
        return (bare, bare + "/")


def read_oauth(spec: Mapping[str, Any], resolve: Callable[[str], str]) -> OAuthSettings:
    """The settings of an exposure's oauth2 block; raises OAuthConfigError naming the field."""
    issuer = _url(spec, "authorizationServerUri", resolve)
    resource = _url(spec, "resource", resolve)
    audience = spec.get("audience")
    scopes = spec.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
        raise OAuthConfigError("authentication.scopes must be a list of scope names (no spaces)")
    validation = str(spec.get("tokenValidation") or "jwks")
    if validation not in ("jwks", "introspection"):
        raise OAuthConfigError(f"authentication.tokenValidation {validation!r} is not jwks or introspection")
    token_endpoint = spec.get("tokenEndpoint")
    return OAuthSettings(
        issuer,
        resource,
        resolve(str(audience)) if audience else resource,
        tuple(resolve(s) for s in scopes),
        validation,
        resolve(str(token_endpoint)) if token_endpoint else None,
    )


def _url(spec: Mapping[str, Any], name: str, resolve: Callable[[str], str]) -> str:
    value = spec.get(name)
    if not value:
        raise OAuthConfigError(f"authentication.{name} is required for oauth2")
    text = resolve(str(value))
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise OAuthConfigError(
            f"authentication.{name} must be an http(s) URL with no query or fragment, not {text[:200]!r}"
        )
    return text

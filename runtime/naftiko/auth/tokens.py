"""Checking one access token: a signed JWT (RFC 9068) against the authorization server's keys,
or an opaque token through introspection (RFC 7662), then the claims the resource requires.

Only asymmetric signatures are accepted (RS*, PS*, ES*), each with a key of its own family, so
`alg: none` and an HMAC "signed" with the public key are refused before anything is verified.
Every failure is a `Rejected` (401 invalid_token) with a fixed sentence: the caller's token,
whatever its shape or size, never reaches an error, a log line or a 500.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import jwt

from .authorization_server import AuthorizationServer
from .fetch import fetch_json
from .oauth_settings import OAuthSettings

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "the token is not meant for this resource (aud)"),
    (jwt.InvalidIssuerError, "the token was not issued by this resource's authorization server (iss)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
)


class Rejected(Exception):
    """401 invalid_token; `str()` is the error_description."""


def granted_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The scopes a token carries: `scope` (space-separated, RFC 9068/8693) or `scp` (a list or
    a string, as Azure AD and Okta write it)."""
    for name in ("scope", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list) and all(isinstance(s, str) for s in value):
            return frozenset(value)
        raise Rejected(f"the token's {name} claim is neither a string nor a list of strings")
    return frozenset()


async def verify_jwt(token: str, server: AuthorizationServer, settings: OAuthSettings) -> dict[str, Any]:
    """The claims of a JWT whose signature, exp, nbf, iss and aud hold; else Rejected.
    Raises Unavailable when the keys are not known."""
    if not _JWS.fullmatch(token):
        raise Rejected("the token is not a signed JWT")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Rejected("the token's header is not valid") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise Rejected("the token's algorithm is not accepted (RS256, ES256 and the other RSA and EC ones are)")
    if kid is not None and not isinstance(kid, str) or "crit" in header:
        raise Rejected("the token's header is not valid")
    key = await server.key_for(kid, alg)
    if key is None:
        raise Rejected("the token is signed by a key the authorization server does not publish")
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=settings.audience,
            issuer=settings.issuers(),
            leeway=settings.limits.leeway,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise Rejected(f"the token has no {exc.claim} claim") from None
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
        reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "the token is not valid")
        raise Rejected(reason) from None


async def introspect(token: str, server: AuthorizationServer, settings: OAuthSettings) -> dict[str, Any]:
    """RFC 7662: the authorization server says whether the token is active and what it holds.
    The schema gives the resource server no client credentials, so the request carries none:
    use an authorization server whose introspection endpoint answers it (or `jwks`)."""
    await server.ready()
    endpoint = server.endpoint("introspection_endpoint")
    claims = await fetch_json(endpoint, settings.limits, {"token": token, "token_type_hint": "access_token"})
    if claims.get("active") is not True:
        raise Rejected("the token is not active")
    now, leeway = time.time(), settings.limits.leeway
    exp, iss, aud = claims.get("exp"), claims.get("iss"), claims.get("aud")
    if exp is not None and (not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp + leeway < now):
        raise Rejected("the token has expired")
    if iss is not None and iss not in settings.issuers():
        raise Rejected("the token was not issued by this resource's authorization server (iss)")
    if aud is not None and settings.audience not in (
        [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    ):
        raise Rejected("the token is not meant for this resource (aud)")
    return claims

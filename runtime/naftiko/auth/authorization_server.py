"""What the resource server knows of its authorization server: the RFC 8414 metadata, found
from the issuer, and the signing keys of its `jwks_uri`.

Fetched when the port starts serving. An unreachable server does not stop the runtime: every
protected call answers 503 (`Unavailable`, with the reason that was logged) and the next call
after a back-off (1 s, doubling to 30 s) tries again, so the runtime recovers by itself when the
server is back. Keys are fetched again after `keys_ttl`, or on a token whose `kid` is unknown
(key rotation) at most once per `refresh_cooldown`, so a caller cannot make us fetch per
request. One fetch at a time: callers arriving meanwhile wait for the same one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .fetch import FetchError, fetch_json
from .oauth_settings import OAuthSettings

log = logging.getLogger("naftiko")


class Unavailable(Exception):
    """The authorization server's metadata or keys are not known yet; `str()` says why."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey

    def fits(self, alg: str) -> bool:
        """The key can check `alg`: RSA for RS*/PS*, EC on the curve ES* names."""
        if isinstance(self.key, rsa.RSAPublicKey):
            return alg[:2] in ("RS", "PS")
        return _CURVES.get(alg) == self.key.curve.name


_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class AuthorizationServer:
    def __init__(self, settings: OAuthSettings):
        self.settings = settings
        self.limits = settings.limits
        self.metadata: dict[str, Any] | None = None
        self.keys: tuple[SigningKey, ...] | None = None
        self.reason = "the authorization server has not been asked yet"
        self._fetched = float("-inf")  # monotonic time of the last key fetch attempt
        self._next_try = 0.0
        self._backoff = self.limits.retry_first
        self._running: asyncio.Future[None] | None = None

    @property
    def needs_keys(self) -> bool:
        return self.settings.validation == "jwks"

    def known(self) -> bool:
        return self.metadata is not None and (self.keys is not None or not self.needs_keys)

    async def ready(self) -> None:
        """Metadata (and keys) at hand, or Unavailable."""
        now = time.monotonic()
        if not self.known():
            if now >= self._next_try:
                await self._refresh()
            if not self.known():
                raise Unavailable(self.reason)
        elif self.needs_keys and now - self._fetched > self.limits.keys_ttl and now >= self._next_try:
            self._begin()  # in the background: the keys we have serve meanwhile, and stay on a failure

    async def key_for(self, kid: str | None, alg: str) -> SigningKey | None:
        """The key a token names (or, with no `kid`, the first that fits `alg`); fetched again
        on an unknown `kid`, at most once per cooldown."""
        await self.ready()
        found = self._find(kid, alg)
        if found is None and kid is not None and time.monotonic() - self._fetched >= self.limits.refresh_cooldown:
            await self._refresh()
            found = self._find(kid, alg)
        return found

    def start(self) -> None:
        """Begin fetching now, off any request (the port starts serving meanwhile)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving (validate, tests of the document): the first call will fetch
        if not self.known():
            self._begin()

    def _find(self, kid: str | None, alg: str) -> SigningKey | None:
        for key in self.keys or ():
            if (kid is None or key.kid == kid) and key.fits(alg):
                return key
        return None

    async def _refresh(self) -> None:
        await asyncio.shield(self._begin())

    def _begin(self) -> asyncio.Future[None]:
        """The fetch under way, or a new one: one at a time, whoever asks."""
        if self._running is None:
            self._running = asyncio.ensure_future(self._fetch())
        return self._running

    async def _fetch(self) -> None:
        first = self.metadata is None
        try:
            if self.metadata is None:
                self.metadata = await self._discover()
            if self.needs_keys:
                self._fetched = time.monotonic()
                self.keys = await self._fetch_keys(self._endpoint("jwks_uri"))
        except FetchError as exc:
            self.reason = f"authorization server {self.settings.issuer}: {exc}"
            self._next_try = time.monotonic() + self._backoff
            log.warning(
                "oauth2: %s; protected calls answer 503 until it does (next try in %g s)", self.reason, self._backoff
            )
            self._backoff = min(self._backoff * 2, self.limits.retry_max)
        else:
            if first or self._backoff > self.limits.retry_first:
                count = f"{len(self.keys)} signing key(s)" if self.keys is not None else "introspection"
                log.info("oauth2: authorization server %s ready (%s)", self.settings.issuer, count)
            self._backoff = self.limits.retry_first
        finally:
            self._running = None

    async def _discover(self) -> dict[str, Any]:
        """RFC 8414 metadata (then OpenID Connect discovery) for the issuer; its `issuer` must
        be ours (RFC 8414 §3.3: metadata for another issuer is refused)."""
        tried = []
        for url in metadata_urls(self.settings.issuer):
            try:
                metadata = await fetch_json(url, self.limits)
            except FetchError as exc:
                if not exc.answered:
                    raise  # unreachable: the other forms would be too
                tried.append(str(exc))
                continue
            named = str(metadata.get("issuer", "")).rstrip("/")
            if named != self.settings.issuer.rstrip("/"):
                raise FetchError(f"{url} describes issuer {named[:200]!r}, not {self.settings.issuer!r}")
            return metadata
        raise FetchError("no authorization server metadata: " + "; ".join(tried))

    def _endpoint(self, name: str) -> str:
        assert self.metadata is not None
        value = self.metadata.get(name)
        if not isinstance(value, str) or not value:
            raise FetchError(f"its metadata has no {name}")
        return value

    async def _fetch_keys(self, url: str) -> tuple[SigningKey, ...]:
        document = await fetch_json(url, self.limits)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise FetchError(f"{url} is not a JWK set (no `keys` list)")
        keys = [key for entry in entries[: self.limits.max_keys] if (key := _signing_key(entry)) is not None]
        if not keys:
            raise FetchError(f"{url} holds no RSA or EC signing key")
        return tuple(keys)

    def endpoint(self, name: str) -> str:
        """A metadata endpoint (introspection); raises Unavailable when the metadata lacks it."""
        try:
            return self._endpoint(name)
        except FetchError as exc:
            raise Unavailable(f"authorization server {self.settings.issuer}: {exc}") from None


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: RFC 8414's path insertion, the appended form many
    servers also answer, then the OpenID Connect forms (Keycloak, Auth0: appended)."""
    parts = urlsplit(issuer.rstrip("/"))
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path
    urls = []
    for name in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        for url in (origin + name + path, origin + path + name):
            if url not in urls:
                urls.append(url)
    return urls


def _signing_key(entry: Any) -> SigningKey | None:
    """An RSA or EC public key for signatures, or None (other types, encryption keys, junk)."""
    if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC") or entry.get("use", "sig") != "sig":
        return None
    kid = entry.get("kid")
    try:
        key = jwt.PyJWK(entry).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        key = key.public_key()  # a JWKS should hold public keys only; never sign with one
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return None
    return SigningKey(kid if isinstance(kid, str) else None, key)

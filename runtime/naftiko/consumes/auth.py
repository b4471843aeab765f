"""Credentials on outgoing requests to a consumed API (`authentication` on `ConsumesHttp`).

Built once at load from the parsed YAML block; every string field goes through the caller's
`resolve` (template rendering). `Authenticator.secrets` lists every secret value, including
derived ones, so the caller can mask them wherever requests are shown.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from secrets import token_hex
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from naftiko import json_text
from naftiko.consumes.connections import (
    BodyTooLarge,
    BrokenAnswer,
    ConnectionFailed,
    UpstreamResponse,
)
from naftiko.consumes.request import OutgoingRequest
from naftiko.consumes.url import request_target, split_origin

__all__ = [
    "AuthConfigError",
    "AuthError",
    "Authenticator",
    "Send",
    "build_authenticator",
]

Send = Callable[[OutgoingRequest], Awaitable[UpstreamResponse]]
"""How an authenticator makes its own requests (OAuth2 token, RFC 8414 metadata): one attempt,
as given, through the namespace's connections and within its total timeout."""

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN_RE = re.compile(_TOKEN)
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")
_COOKIE_UNSAFE = re.compile(r"[\r\n\x00;]")


class AuthConfigError(ValueError):
    """The `authentication` block cannot be used. The message names the field, never a value."""


class AuthError(RuntimeError):
    """Credentials could not be obtained at call time (e.g. the OAuth2 token request failed)."""


class Authenticator(ABC):
    """Adds credentials to outgoing requests."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value this authenticator may put on the wire, for masking."""
        return self._secrets

    @abstractmethod
    async def apply(self, request: OutgoingRequest, send: Send) -> None: ...

    def answer_challenge(self, request: OutgoingRequest, status: int, headers: Mapping[str, str]) -> bool:
        """Prepare `request` for one resend after a challenge; False means do not resend."""
        return False


def build_authenticator(spec: Mapping[str, Any] | None, resolve: Callable[[str], str]) -> Authenticator | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise AuthConfigError("authentication must be a mapping")
    kind = spec.get("type")
    if not isinstance(kind, str) or not kind:
        raise AuthConfigError("authentication.type is required")
    builder = _BUILDERS.get(kind.lower())
    if builder is None:
        expected = ", ".join(sorted(_BUILDERS))
        raise AuthConfigError(f"authentication.type {kind!r} is not supported (expected one of: {expected})")
    return builder(_Fields(spec, resolve))


# --- configuration helpers ---------------------------------------------------------------


class _Fields:
    def __init__(self, spec: Mapping[str, Any], resolve: Callable[[str], str]) -> None:
        self._spec = spec
        self._resolve = resolve

    def get(self, *names: str) -> str | None:
        """The resolved value of the first present field among `names` (aliases)."""
        for name in names:
            raw = self._spec.get(name)
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise AuthConfigError(f"authentication.{name} must be a string")
            return self._resolve(str(raw))
        return None

    def require(self, *names: str) -> str:
        value = self.get(*names)
        if value is None:
            raise AuthConfigError(f"authentication.{names[0]} is required")
        return value

    def mapping(self, name: str) -> dict[str, str]:
        """A map of names to resolved string values (`headers: {X-Key: '{{KEY}}'}`)."""
        raw = self._spec.get(name)
        if raw is None:
            return {}
        if not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool) for k, v in raw.items()
        ):
            raise AuthConfigError(f"authentication.{name} must map names to strings")
        return {k: self._resolve(str(v)) for k, v in raw.items()}

    def strings(self, name: str) -> list[str]:
        raw = self._spec.get(name)
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = raw.split()
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise AuthConfigError(f"authentication.{name} must be a list of strings")
        return [self._resolve(item) for item in raw]


def _header_safe(value: str, field: str) -> str:
    if _HEADER_UNSAFE.search(value):
        raise AuthConfigError(f"authentication.{field} must not contain CR, LF or NUL")
    return value


def _token(value: str, field: str) -> str:
    if not _TOKEN_RE.fullmatch(value):
        raise AuthConfigError(f"authentication.{field} is not a valid header or cookie name")
    return value


def _nonempty(*values: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _basic_credential(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set `name`, dropping any case variant already present (headers is a plain dict)."""
    lowered = name.lower()
    for existing in [k for k in headers if k.lower() == lowered]:
        del headers[existing]
    headers[name] = value


# --- static credentials ------------------------------------------------------------------


class HeaderAuth(Authenticator):
    """basic, bearer and apikey-in-header: one precomputed header."""

    def __init__(self, name: str, value: str, secrets: tuple[str, ...]) -> None:
        super().__init__(secrets)
        self.name = name
        self.value = value

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        _set_header(request.headers, self.name, self.value)


class QueryAuth(Authenticator):
    def __init__(self, key: str, value: str) -> None:
        # The request-target carries the value percent-encoded, so mask that form too.
        encoded = request_target("", [(key, value)]).partition("=")[2]
        super().__init__(_nonempty(value, encoded))
        self.key = key
        self.value = value

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        request.query[:] = [(k, v) for k, v in request.query if k != self.key]
        request.query.append((self.key, self.value))


class CookieAuth(Authenticator):
    def __init__(self, name: str, value: str) -> None:
        super().__init__(_nonempty(value))
        self.name = name
        self.value = value

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        request.cookies[self.name] = self.value


def _build_basic(fields: _Fields) -> Authenticator:
    user = fields.require("username")
    password = fields.require("password")
    if ":" in user:
        raise AuthConfigError("authentication.username must not contain ':' (RFC 7617)")
    credential = _basic_credential(user, password)
    return HeaderAuth("Authorization", f"Basic {credential}", _nonempty(password, credential))


def _build_bearer(fields: _Fields) -> Authenticator:
    token = _header_safe(fields.require("token"), "token")
    return HeaderAuth("Authorization", f"Bearer {token}", _nonempty(token))


class HeadersAuth(Authenticator):
    """apikey with a `headers` map (Datadog's DD-API-KEY and DD-APPLICATION-KEY): every header."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__(_nonempty(*headers.values()))
        self.headers = dict(headers)

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        for name, value in self.headers.items():
            _set_header(request.headers, name, value)


def _build_apikey(fields: _Fields) -> Authenticator:
    # `name`/`in` are a non-schema dialect seen in real files, and so is a `headers` map of
    # several keys sent together (`headers: {DD-API-KEY: …, DD-APPLICATION-KEY: …}`).
    headers = fields.mapping("headers")
    if headers and fields.get("key", "name") is None:
        return HeadersAuth(
            {_token(name, "headers"): _header_safe(value, f"headers.{name}") for name, value in headers.items()}
        )
    key = fields.require("key", "name")
    value = fields.require("value")
    placement = (fields.get("placement", "in") or "header").strip().lower()
    if placement == "header":
        _header_safe(value, "value")
        return HeaderAuth(_token(key, "key"), value, _nonempty(value))
    if placement == "query":
        return QueryAuth(key, value)
    if placement == "cookie":
        if _COOKIE_UNSAFE.search(value):
            raise AuthConfigError("authentication.value must not contain CR, LF, NUL or ';' in a cookie")
        return CookieAuth(_token(key, "key"), value)
    raise AuthConfigError(f"authentication.placement {placement!r} is not supported (expected header, query or cookie)")


# --- digest (RFC 7616) -------------------------------------------------------------------

_DIGEST_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data),
}
_PARAM_RE = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})')
_SCHEME_RE = re.compile(rf"[\s,]*({_TOKEN})")
_TOKEN68_RE = re.compile(r"\s+[A-Za-z0-9._~+/-]+=*(?=\s*(?:,|$))")


def _parse_auth_header(value: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(scheme, params) for each challenge in a WWW-Authenticate (or Authorization) value."""
    pos = 0
    while match := _SCHEME_RE.match(value, pos):
        scheme, pos = match.group(1).lower(), match.end()
        params: dict[str, str] = {}
        if token68 := _TOKEN68_RE.match(value, pos):
            pos = token68.end()
        while param := _PARAM_RE.match(value, pos):
            raw = param.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[param.group(1).lower()] = raw
            pos = param.end()
        yield scheme, params


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    return [v for k, v in headers.items() if k.lower() == name.lower()]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(slots=True)
class _Challenge:
    realm: str
    nonce: str
    algorithm: str  # canonical key of _DIGEST_HASHES
    session: bool  # the -sess variant
    qop: str | None  # "auth", "auth-int" or None (RFC 2069)
    opaque: str | None
    userhash: bool
    nc: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> _Challenge | None:
        """None when the challenge uses something this client cannot answer."""
        algorithm = params.get("algorithm", "MD5").upper()
        session = algorithm.endswith("-SESS")
        algorithm = algorithm.removesuffix("-SESS")
        offered = {q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()}
        qop = next((q for q in ("auth", "auth-int") if q in offered), None)
        if algorithm not in _DIGEST_HASHES or "nonce" not in params or (offered and qop is None):
            return None
        return cls(
            realm=params.get("realm", ""),
            nonce=params["nonce"],
            algorithm=algorithm,
            session=session,
            qop=qop,
            opaque=params.get("opaque"),
            userhash=params.get("userhash", "").lower() == "true",
        )


class DigestAuth(Authenticator):
    """Answers 401 Digest challenges and pre-authorises later requests with the last nonce."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(_nonempty(password))
        self.username = username
        self.password = password
        self._challenge: _Challenge | None = None

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        if self._challenge is not None:
            _set_header(request.headers, "Authorization", self._authorization(request))

    def answer_challenge(self, request: OutgoingRequest, status: int, headers: Mapping[str, str]) -> bool:
        if status != 401:
            return False
        offers = [
            (challenge, params.get("stale", "").lower() == "true")
            for value in _header_values(headers, "WWW-Authenticate")
            for scheme, params in _parse_auth_header(value)
            if scheme == "digest" and (challenge := _Challenge.parse(params)) is not None
        ]
        if not offers:
            return False
        order = list(_DIGEST_HASHES)
        challenge, stale = max(offers, key=lambda offer: order.index(offer[0].algorithm))
        if not stale and challenge.nonce == self._sent_nonce(request):
            return False  # this nonce was already answered: the credentials are wrong
        self._challenge = challenge
        _set_header(request.headers, "Authorization", self._authorization(request))
        return True

    @staticmethod
    def _sent_nonce(request: OutgoingRequest) -> str | None:
        sent = _get_header(request.headers, "Authorization") or ""
        for scheme, params in _parse_auth_header(sent):
            if scheme == "digest":
                return params.get("nonce")
        return None

    def _authorization(self, request: OutgoingRequest) -> str:
        ch = self._challenge
        assert ch is not None
        hash_fn = _DIGEST_HASHES[ch.algorithm]

        def h(text: str | bytes) -> str:
            return hash_fn(text.encode() if isinstance(text, str) else text).hexdigest()

        uri = request_target(split_origin(request.url)[1], request.query)  # as the client sends it
        method = request.method.upper()
        ch.nc += 1
        nc = f"{ch.nc:08x}"
        cnonce = token_hex(16)
        ha1 = h(f"{self.username}:{ch.realm}:{self.password}")
        if ch.session:
            ha1 = h(f"{ha1}:{ch.nonce}:{cnonce}")
        if ch.qop == "auth-int":
            ha2 = h(f"{method}:{uri}:{h(request.body or b'')}")
        else:
            ha2 = h(f"{method}:{uri}")
        if ch.qop:
            response = h(f"{ha1}:{ch.nonce}:{nc}:{cnonce}:{ch.qop}:{ha2}")
        else:
            response = h(f"{ha1}:{ch.nonce}:{ha2}")

        algorithm = ch.algorithm + ("-sess" if ch.session else "")
        if ch.userhash:
            user = f"username={_quoted(h(f'{self.username}:{ch.realm}'))}"
        elif self.username.isascii():
            user = f"username={_quoted(self.username)}"
        else:
            user = f"username*=UTF-8''{quote(self.username, safe='')}"
        parts = [
            user,
            f"realm={_quoted(ch.realm)}",
            f"nonce={_quoted(ch.nonce)}",
            f"uri={_quoted(uri)}",
            f"algorithm={algorithm}",
            f"response={_quoted(response)}",
        ]
        if ch.opaque is not None:
            parts.append(f"opaque={_quoted(ch.opaque)}")
        if ch.qop:
            parts += [f"qop={ch.qop}", f"nc={nc}", f"cnonce={_quoted(cnonce)}"]
        if ch.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def _build_digest(fields: _Fields) -> Authenticator:
    user = _header_safe(fields.require("username"), "username")
    return DigestAuth(user, fields.require("password"))


# --- OAuth2 client credentials -----------------------------------------------------------

_CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
_ERROR_CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class OAuth2ClientCredentials(Authenticator):
    """Client-credentials grant (RFC 6749 §4.4); the token is cached until shortly before expiry.

    Without `tokenEndpoint` the endpoint is discovered from `authorizationServerUri` metadata
    (RFC 8414). A token without `expires_in` is kept until the upstream answers 401 to it.
    """

    max_skew = 30.0

    def __init__(
        self,
        token_url: str | None,
        issuer: str | None,
        client_id: str,
        client_secret: str,
        auth_method: str,
        form: list[tuple[str, str]],
    ) -> None:
        self._token_url = token_url
        self._issuer = issuer
        self._form = form
        self._client_header: str | None = None
        if auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: form-encode id and secret before the Basic encoding.
            credential = _basic_credential(quote_plus(client_id), quote_plus(client_secret))
            self._client_header = f"Basic {credential}"
            super().__init__(_nonempty(client_secret, credential))
        else:
            self._form = [*form, ("client_id", client_id), ("client_secret", client_secret)]
            super().__init__(_nonempty(client_secret, quote_plus(client_secret)))
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._previous_token: str | None = None
        self._refresh_at = 0.0

    @property
    def secrets(self) -> tuple[str, ...]:
        # The previous token stays masked: requests in flight may still carry it.
        return _nonempty(*self._secrets, self._token or "", self._previous_token or "")

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        _set_header(request.headers, "Authorization", f"Bearer {await self._current(send)}")

    def answer_challenge(self, request: OutgoingRequest, status: int, headers: Mapping[str, str]) -> bool:
        # Forget a token the upstream refused (revoked, or no expires_in): the next call refetches.
        sent = _get_header(request.headers, "Authorization")
        if status == 401 and self._token is not None and sent == f"Bearer {self._token}":
            self._refresh_at = 0.0
        return False

    async def _current(self, send: Send) -> str:
        if self._token is not None and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                await self._fetch(send)
            assert self._token is not None
            return self._token

    async def _fetch(self, send: Send) -> None:
        url = self._token_url or await self._discover(send)
        headers = {"Accept": "application/json"}
        if self._client_header:
            headers["Authorization"] = self._client_header
        status, body = await _request_json(send, "POST", url, headers, self._form)
        if not 200 <= status < 300:
            code = body.get("error") if isinstance(body, dict) else None
            known = isinstance(code, str) and _ERROR_CODE_RE.fullmatch(code)
            detail = f" ({code})" if known else ""
            raise AuthError(f"OAuth2 token request to {url} failed: HTTP {status}{detail}")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or _HEADER_UNSAFE.search(token):
            raise AuthError(f"OAuth2 token response from {url} has no usable access_token")
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise AuthError(f"OAuth2 token response from {url} is not a Bearer token")
        lifetime = body.get("expires_in")
        now = time.monotonic()
        if lifetime is None:
            self._refresh_at = float("inf")
        else:
            try:
                seconds = float(lifetime)
            except (TypeError, ValueError):
                raise AuthError(f"OAuth2 token response from {url} has an invalid expires_in") from None
            self._refresh_at = now + seconds - min(self.max_skew, seconds / 2)
        if token != self._token:
            self._previous_token, self._token = self._token, token

    async def _discover(self, send: Send) -> str:
        assert self._issuer is not None
        parts = urlsplit(self._issuer)
        path = parts.path.rstrip("/")
        well_known = f"/.well-known/oauth-authorization-server{path}"
        url = urlunsplit((parts.scheme, parts.netloc, well_known, "", ""))
        accept = {"Accept": "application/json"}
        status, body = await _request_json(send, "GET", url, accept, None)
        endpoint = body.get("token_endpoint") if isinstance(body, dict) else None
        if not 200 <= status < 300 or not isinstance(endpoint, str) or not endpoint:
            raise AuthError(f"OAuth2 metadata at {url} gives no token_endpoint: HTTP {status}")
        self._token_url = endpoint
        return endpoint


async def _request_json(
    send: Send,
    method: str,
    url: str,
    headers: dict[str, str],
    form: list[tuple[str, str]] | None,
) -> tuple[int, Any]:
    """(status, JSON body or None when the body is not JSON); `url` may carry a query."""
    body = None
    if form is not None:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        body = urlencode(form).encode("ascii")
    try:
        parts = urlsplit(url)
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        query = parse_qsl(parts.query, keep_blank_values=True)
        response = await send(OutgoingRequest(method, target, query, headers, body=body))
    except (ConnectionFailed, BrokenAnswer, BodyTooLarge, TimeoutError, ValueError) as exc:
        raise AuthError(f"OAuth2 request to {url} failed: {type(exc).__name__}") from None
    try:
        return response.status, json_text.loads(response.body)
    except ValueError:
        return response.status, None


def _build_oauth2(fields: _Fields) -> Authenticator:
    token_url = fields.get("tokenEndpoint")
    issuer = fields.get("authorizationServerUri")
    if not token_url and not issuer:
        raise AuthConfigError("authentication.tokenEndpoint is required (or authorizationServerUri for discovery)")
    auth_method = fields.get("tokenEndpointAuthMethod") or "client_secret_basic"
    if auth_method not in _CLIENT_AUTH_METHODS:
        raise AuthConfigError(
            f"authentication.tokenEndpointAuthMethod {auth_method!r} is not supported "
            f"(expected {' or '.join(_CLIENT_AUTH_METHODS)})"
        )
    form = [("grant_type", "client_credentials")]
    if scopes := fields.strings("scopes"):
        form.append(("scope", " ".join(scopes)))
    for name in ("resource", "audience"):
        if value := fields.get(name):
            form.append((name, value))
    return OAuth2ClientCredentials(
        token_url=token_url or None,
        issuer=issuer,
        client_id=fields.require("clientId"),
        client_secret=fields.require("clientSecret"),
        auth_method=auth_method,
        form=form,
    )


# --- OAuth 1.0a (RFC 5849), with the body hash extension ------------------------------------

_OAUTH1_METHODS = ("HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "RSA-SHA1", "RSA-SHA256", "RSA-SHA512", "PLAINTEXT")


class OAuth1Auth(Authenticator):
    """Signs every request (RFC 5849 §3) with oauthlib: an `Authorization: OAuth …` header with
    a fresh nonce and timestamp, and `oauth_body_hash` (draft-eaton-oauth-bodyhash, the hash of
    the signature method) on every request whose body is not a form.

    `signingKey` is an RSA private key in PEM (RSA-SHA256: Mastercard's scheme, the one real
    capability files use) or the consumer secret of an HMAC method; `signatureMethod` says which,
    else a PEM key means RSA-SHA256 and any other value HMAC-SHA1. `token`/`tokenSecret` are the
    resource owner's credentials when the API uses them.
    """

    def __init__(
        self,
        consumer_key: str,
        signing_key: str,
        method: str,
        token: str | None,
        token_secret: str | None,
        realm: str | None,
    ) -> None:
        super().__init__(_nonempty(signing_key, token_secret or ""))
        self.consumer_key, self.signing_key, self.method = consumer_key, signing_key, method
        self.token, self.token_secret, self.realm = token, token_secret, realm
        self._hash = (
            hashlib.sha1 if method.endswith("SHA1") else hashlib.sha512 if method.endswith("SHA512") else hashlib.sha256
        )

    async def apply(self, request: OutgoingRequest, send: Send) -> None:
        _set_header(request.headers, "Authorization", self.authorization(request))

    def authorization(self, request: OutgoingRequest) -> str:
        """The `Authorization` value for `request` exactly as it will be sent."""
        origin, path = split_origin(request.url)
        uri = origin + request_target(path, request.query)
        content_type = (_get_header(request.headers, "Content-Type") or "").split(";")[0].strip().lower()
        form = content_type == "application/x-www-form-urlencoded" and request.method not in ("GET", "HEAD")
        body_hash = None if form else base64.b64encode(self._hash(request.body or b"").digest()).decode("ascii")
        rsa = self.method.startswith("RSA")
        client = _oauth1_client()(
            self.consumer_key,
            client_secret=None if rsa else self.signing_key,
            resource_owner_key=self.token,
            resource_owner_secret=self.token_secret,
            signature_method=self.method,
            rsa_key=self.signing_key if rsa else None,
            realm=self.realm,
        )
        client.body_hash = body_hash
        body = (request.body or b"").decode("utf-8") if form else None
        try:
            _, headers, _ = client.sign(uri, request.method, body, {"Content-Type": content_type} if form else None)
        except (ValueError, TypeError) as exc:  # a key that is not a usable RSA private key, a form that is not one
            raise AuthError(f"OAuth 1.0a signing failed: {type(exc).__name__}") from None
        return headers["Authorization"]


@functools.cache
def _oauth1_client() -> type:
    """oauthlib's client, imported on the first signature (about 0.1 s of start-up otherwise)."""
    from oauthlib.oauth1 import Client

    class BodyHashClient(Client):
        """oauthlib's client with the body hash of the signature method (oauthlib hashes with SHA-1 always)."""

        body_hash: str | None = None

        def get_oauth_params(self, request):  # noqa: ANN001, ANN201 - oauthlib's signature
            params = [(k, v) for k, v in super().get_oauth_params(request) if k != "oauth_body_hash"]
            if self.body_hash is not None:
                params.append(("oauth_body_hash", self.body_hash))
            return params

    return BodyHashClient


def _build_oauth1(fields: _Fields) -> Authenticator:
    consumer_key = _header_safe(fields.require("consumerKey", "clientId"), "consumerKey")
    signing_key = fields.require("signingKey", "consumerSecret", "privateKey")
    pem = signing_key.lstrip().startswith("-----BEGIN")
    method = (fields.get("signatureMethod") or ("RSA-SHA256" if pem else "HMAC-SHA1")).upper()
    if method not in _OAUTH1_METHODS:
        raise AuthConfigError(
            f"authentication.signatureMethod {method!r} is not supported (expected one of: {', '.join(_OAUTH1_METHODS)})"
        )
    if method.startswith("RSA") and pem:
        try:
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            load_pem_private_key(signing_key.encode(), password=None)
        except ImportError:
            raise AuthConfigError("authentication.signingKey: RSA signatures need the 'cryptography' package") from None
        except (ValueError, TypeError):
            raise AuthConfigError("authentication.signingKey is not an unencrypted PEM private key") from None
    return OAuth1Auth(
        consumer_key, signing_key, method, fields.get("token"), fields.get("tokenSecret"), fields.get("realm")
    )


_BUILDERS: dict[str, Callable[[_Fields], Authenticator]] = {
    "apikey": _build_apikey,
    "oauth1": _build_oauth1,
    "basic": _build_basic,
    "bearer": _build_bearer,
    "digest": _build_digest,
    "oauth2": _build_oauth2,
}

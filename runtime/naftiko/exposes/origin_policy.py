"""Who may call from where: the Host check against DNS rebinding, the Origin check against
cross-site requests, CORS for the origins an operator allows, and X-Forwarded-* from trusted
proxies (starlette's TrustedHost and CORS middlewares, uvicorn's proxy headers, in one place).

A web page the operator visits can send requests to the runtime's ports, which hold real
credentials. So:
- bound to loopback, a `Host` that is not a loopback name (or a `--public-url` host) → 421:
  a rebound DNS name reaches 127.0.0.1 but keeps its own Host;
- an unsafe method (POST, PUT, PATCH, DELETE) with an `Origin` that is neither the request's
  own nor allowed by `--allow-origin` → 403, before anything is called (`Origin: null` too);
- only allowed origins get CORS headers, and their preflights are answered 204.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from ..http import Answer, Request, Responder, Response
from .problems import problem

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_MAX_AGE = "600"


class OriginPolicy:
    def __init__(
        self,
        address: str,
        allow_origins: Sequence[str] = (),
        forwarded_allow_ips: Sequence[str] = (),
        public_urls: Iterable[str] = (),
    ):
        public = [urlsplit(url) for url in public_urls]
        self.allow_origins = frozenset(o.lower() for o in allow_origins)
        self.own_origins = frozenset(
            f"{u.scheme}://{u.netloc}".lower() for u in public
        )  # a public URL is our own origin
        self.hosts = LOOPBACK_NAMES | {_hostname(u.netloc) for u in public} if _is_loopback(address) else None
        self.trust_all = "*" in forwarded_allow_ips
        self.trusted = tuple(ipaddress.ip_network(a, strict=False) for a in forwarded_allow_ips if a != "*")
        self.forwarding = bool(forwarded_allow_ips)

    def check(self, request: Request, browser: bool) -> Response | None:
        """A refusal, or None when the request may go on. `browser`: the port serves routes a
        web page could use with credentials (REST), so Origin and CORS apply there."""
        headers = request.headers
        if self.forwarding and self.trusts(request.peer):
            self._apply_forwarded(request)
        if self.hosts is not None:
            host = headers.get("Host")
            if host is not None and _hostname(host) not in self.hosts:
                return problem(
                    421, "misdirected-request", "Misdirected request", "this server answers only to its loopback names"
                )
        if not browser:
            return None
        origin = headers.get("Origin")
        if origin is None:
            return None
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
            return self._preflight(origin.lower(), request)
        if request.method not in SAFE_METHODS and not self.origin_allowed(origin, request):
            return problem(
                403,
                "origin-not-allowed",
                "Forbidden",
                f"requests from origin {origin[:200]!r} are not allowed (see --allow-origin)",
            )
        return None

    def origin_allowed(self, origin: str, request: Request) -> bool:
        lowered = origin.lower().rstrip("/")
        if lowered in self.allow_origins or lowered in self.own_origins:
            return True
        host = request.headers.get("Host")
        return host is not None and lowered == f"{request.scheme}://{host.lower()}"

    def cors_headers(self, request: Request, response: Response) -> None:
        """Adds CORS headers to an answer for an allowed cross-origin caller."""
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() in self.allow_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    def trusts(self, client: str) -> bool:
        if self.trust_all:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def forwarded_base(self, request: Request) -> str | None:
        """`proto://host` a trusted proxy says the client used (X-Forwarded-Host), else None."""
        host = request.headers.get("X-Forwarded-Host")
        if not self.forwarding or not host or not self.trusts(request.peer):
            return None
        host = host.split(",")[0].strip()
        if not host or any(c in host for c in "/\\?#@ \"'<>"):
            return None
        return f"{request.scheme}://{host}"

    def _apply_forwarded(self, request: Request) -> None:
        """X-Forwarded-For: the nearest address not itself a trusted proxy (uvicorn's rule).
        The Host check and the own-origin check keep the real `Host`: a page reached through a
        rebound DNS name could set X-Forwarded-Host itself."""
        headers = request.headers
        hops = [h.strip() for h in headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if hops:
            client = next((hop for hop in reversed(hops) if not self.trusts(hop)), hops[0])
            request.client = client[:64]
        proto = headers.get("X-Forwarded-Proto", "").strip().lower()
        if proto in ("http", "https"):
            request.scheme = proto

    def _preflight(self, origin: str, request: Request) -> Response:
        if origin not in self.allow_origins:
            return problem(
                403, "origin-not-allowed", "Forbidden", "this origin is not allowed to call (see --allow-origin)"
            )
        asked = request.headers.get("Access-Control-Request-Headers")
        headers = {
            "Access-Control-Allow-Origin": request.headers["Origin"],
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Max-Age": CORS_MAX_AGE,
            "Vary": "Origin",
        }
        if asked:
            headers["Access-Control-Allow-Headers"] = asked
        else:
            headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        return Response(204, headers=headers)


def checked(policy: OriginPolicy, inner: Responder, browser: bool) -> Responder:
    """`inner` behind the policy's checks; a check only, so no coroutine is added."""

    def check(request: Request) -> Answer:
        refusal = policy.check(request, browser)
        return inner(request) if refusal is None else refusal

    return check


def with_cors(policy: OriginPolicy, inner: Responder) -> Responder:
    """`inner` whose answers to allowed cross-origin callers carry CORS headers (installed only
    when `--allow-origin` is given: it awaits the answer)."""

    async def cors(request: Request) -> Response:
        answer = inner(request)
        response = answer if isinstance(answer, Response) else await answer
        policy.cors_headers(request, response)
        return response

    return cors


def _hostname(host: str) -> str:
    """`Host` without its port, lower-cased: `[::1]:8080` → `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False

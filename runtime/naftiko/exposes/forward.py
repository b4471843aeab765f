"""REST `forward` resources: a pass-through proxy to a consumed namespace (SEMANTICS §4.6).

`/forward/{{path}}` with `forward: {targetNamespace: ns}` sends any method to
`<baseUri of ns>/<path>`: the last route variable captures the rest of the path (one or more
segments). Every captured segment is decoded once and re-encoded, `.`/`..`/empty segments and
control characters are refused, so the caller can never leave the consumed `baseUri` (its host
comes from the file or `--upstream`). The query string and body are forwarded; of the caller's
headers only `trustedHeaders` pass (never Host or hop-by-hop headers; plus the body's
`Content-Type`); the consumed namespace's consume-level `header`/`query` parameters that have
a `value` and its authentication are added.
The upstream status, body and content type come back as they are; a failed call is the same
problem+json as on any other route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ..auth import guard
from ..consumes.auth import AuthError
from ..consumes.client import (
    NamespaceClient,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from ..consumes.request import OutgoingRequest
from ..consumes.url import join_url
from ..engine.capability import Capability, Exposure
from ..engine.results import (
    DryRun,
    Failed,
    RateLimited,
    Success,
    TimedOut,
    Unreachable,
    UpstreamError,
)
from ..http import Request, Response
from ..templates import MISSING, Template
from .problems import problem

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_VARIABLE = re.compile(r"^\{\{?\s*([^{}\s]+)\s*\}?\}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_HEADER_BREAK = ("\r", "\n", "\x00")
_NEVER_COPIED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)


class ForwardError(ValueError):
    """A forward resource that cannot be served (no path variable, unknown targetNamespace)."""


@dataclass(frozen=True, slots=True)
class ForwardRoute:
    path: str  # the resource path as written
    prefix: tuple[str, ...]  # segments before the captured tail (`{name}` for a variable)
    variable: str  # the route variable that captures the rest of the path
    capability: Capability
    exposure: Exposure
    target_namespace: str
    trusted: tuple[str, ...]  # lower-cased trusted header names


def forward_resources(exposure: Exposure) -> list[Mapping[str, Any]]:
    return [
        r
        for r in exposure.spec.get("resources") or []
        if isinstance(r, Mapping) and isinstance(r.get("forward"), Mapping)
    ]


def check_forwards(capability: Capability, exposure: Exposure) -> list[str]:
    """Load-time problems of the exposure's forward resources (empty when all is well)."""
    problems = []
    for resource in forward_resources(exposure):
        path = str(resource.get("path", ""))
        target = str(resource["forward"].get("targetNamespace", ""))
        if target not in capability.base_uris:
            known = ", ".join(sorted(capability.base_uris)) or "none"
            problems.append(
                f"forward resource {path!r}: targetNamespace {target!r} is not a consumed namespace (consumed: {known})"
            )
        if _split(path)[1] is None:
            problems.append(f"forward resource {path!r}: the path must end with a variable such as {{{{path}}}}")
    return problems


def _split(path: str) -> tuple[tuple[str, ...], str | None]:
    segments = [s for s in path.strip("/").split("/")]
    if not segments or not segments[-1]:
        return tuple(segments), None
    match = _VARIABLE.match(segments[-1])
    if match is None:
        return tuple(segments), None
    prefix = tuple("{" + m.group(1) + "}" if (m := _VARIABLE.match(s)) else s for s in segments[:-1])
    return prefix, match.group(1)


def collect_forwards(entries: Sequence[tuple[Capability, Exposure]]) -> list[ForwardRoute]:
    """The forward routes of the REST exposures sharing a port; a problem or duplicate raises ForwardError."""
    routes: dict[tuple[str, ...], ForwardRoute] = {}
    for capability, exposure in entries:
        problems = check_forwards(capability, exposure)
        if problems:
            raise ForwardError(f"{capability.file}: " + "; ".join(problems))
        for resource in forward_resources(exposure):
            path = str(resource.get("path", ""))
            prefix, variable = _split(path)
            assert variable is not None
            spec = resource["forward"]
            trusted = tuple(
                h.lower()
                for h in spec.get("trustedHeaders") or []
                if isinstance(h, str) and h.lower() not in _NEVER_COPIED
            )
            route = ForwardRoute(path, prefix, variable, capability, exposure, str(spec["targetNamespace"]), trusted)
            key = tuple("{}" if s.startswith("{") else s for s in prefix)
            if key in routes:
                raise ForwardError(
                    f"forward route {path} is declared by both {routes[key].capability.file} and {capability.file}"
                )
            routes[key] = route
    return list(routes.values())


class PathRefused(ValueError):
    pass


def encode_tail(raw_segments: Sequence[str]) -> str:
    """The captured raw segments, each decoded once and re-encoded; refuses anything that could escape."""
    out = []
    for raw in raw_segments:
        text = unquote(raw)
        if text in ("", ".", ".."):
            raise PathRefused("the forwarded path must not contain empty, '.' or '..' segments")
        if _CONTROL.search(text):
            raise PathRefused("the forwarded path must not contain control characters")
        out.append(quote(text, safe=_SEGMENT_SAFE))
    return "/".join(out)


class ForwardHandler:
    """One forward resource: any method, rest of the path captured."""

    def __init__(self, route: ForwardRoute):
        self.route = route
        capability = route.capability
        self.client: NamespaceClient = next(c for c in capability.clients if c.namespace == route.target_namespace)
        self.base = capability.base_uris[route.target_namespace]
        self.headers, self.query = _consume_level_values(capability, route.target_namespace)
        self.handle = guard(route.exposure.auth, self.answer)  # the caller check (naftiko/auth/guard.py)

    async def answer(self, request: Request, params: Mapping[str, str]) -> Response:
        """`params[variable]` is the captured tail as sent (still percent-encoded)."""
        from .rest import respond  # rest imports this module

        try:
            url = join_url(self.base, encode_tail(params[self.route.variable].split("/")))
        except PathRefused as exc:
            return problem(400, "invalid-path", "Invalid path", str(exc))
        outgoing = OutgoingRequest(request.method, url, query=list(request.query.items()))
        for name, value in request.headers.items():
            if name.lower() in self.route.trusted:
                outgoing.headers[name] = value
        if not _utf8([*(text for pair in outgoing.query for text in pair), *outgoing.headers.values()]):
            return problem(
                400, "invalid-bytes", "Invalid bytes", "the query or a forwarded header holds bytes that are not UTF-8"
            )
        outgoing.query.extend(self.query)
        outgoing.headers.update(self.headers)
        if request.body:
            outgoing.body = request.body
            if request.headers.get("Content-Type"):
                outgoing.headers.setdefault("Content-Type", request.headers["Content-Type"])
        capability = self.route.capability
        if capability.dry_run:
            described = {"method": outgoing.method, "url": url, "query": outgoing.query, "headers": outgoing.headers}
            result = DryRun(capability.masker.data(described))
            request.result = result
            return respond(result)
        try:
            response = await self.client.send(outgoing)
        except UpstreamUnreachable as exc:
            return _failed(request, Unreachable(capability.masker.text(str(exc))))
        except UpstreamTimeout as exc:
            return _failed(request, TimedOut(str(exc)))
        except UpstreamRateLimited as exc:
            return _failed(request, RateLimited(str(exc), exc.retry_after))
        except (UpstreamTooLarge, AuthError) as exc:
            return _failed(request, Failed(capability.masker.text(str(exc))))
        content_type = response.headers.get("Content-Type")
        request.result = (
            UpstreamError(response.status, None, content_type)
            if response.status >= 400
            else Success(response.status, None, {}, response.body, content_type)
        )
        headers = {"Content-Type": content_type} if content_type else {}
        return Response(status=response.status, body=response.body, headers=headers)


def _utf8(texts: Sequence[str]) -> bool:
    """False when a text holds bytes that were not UTF-8 (kept as lone surrogates): passing
    them on would mean replacing them, and two different values would reach the same thing."""
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _failed(request: Request, result) -> Response:
    from .rest import respond

    request.result = result
    return respond(result)


def _consume_level_values(capability: Capability, namespace: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The consumed namespace's consume-level header and query parameters that have a `value`,
    rendered with the capability's binds; a value needing anything else (a caller input) is skipped."""
    data = capability.document.resolved or {}
    consumes = (data.get("capability") or {}).get("consumes") or []
    spec = next((c for c in consumes if isinstance(c, Mapping) and str(c.get("namespace")) == namespace), {})
    headers: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    for parameter in spec.get("inputParameters") or []:
        if not isinstance(parameter, Mapping) or parameter.get("value") is None or not parameter.get("name"):
            continue
        location = str(parameter.get("in", "query"))
        if location not in ("header", "query"):
            continue
        missing: list[str] = []
        text = Template.compile(str(parameter["value"])).render(lambda n: capability.binds.get(n, MISSING), missing)
        if missing or (location == "header" and any(c in text for c in _HEADER_BREAK)):
            continue
        if location == "header":
            headers[str(parameter["name"])] = text
        else:
            query.append((str(parameter["name"]), text))
    return headers, query

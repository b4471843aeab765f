"""REST adapter: routes from `resources[].path`, requests turned into engine inputs.

Each route is compiled at start-up: the target, how each input is read from the request
(path, query, header, cookie, body, JSONPath into the body) and its type coercion. The handler
only reads, coerces, invokes and translates the Result (DESIGN §4.6).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .. import json_text
from ..auth import guard
from ..engine.capability import Capability, Exposure, Target
from ..engine.inputs import InputField, json_type_of, type_matches
from ..engine.jsonpath import JsonPath
from ..engine.results import (
    DryRun,
    Failed,
    InvalidInput,
    RateLimited,
    Result,
    ScriptFailed,
    Success,
    TimedOut,
    Unreachable,
    UpstreamError,
)
from ..http import Request, Response
from ..json_text import dumps_text
from .forward import METHODS, ForwardHandler, ForwardRoute
from .problems import problem

_ROUTE_VARIABLE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")
"""The engine's Result of a request, for logging and metrics."""


def route_path(path: str) -> str:
    """`/ships/{{imo}}` and `/ships/{imo}` are both the route `/ships/{imo}`."""
    path = _ROUTE_VARIABLE.sub(lambda m: "{" + m.group(1) + "}", path)
    return path if path.startswith("/") else "/" + path


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    capability: Capability
    exposure: Exposure
    target: Target

    @property
    def operation_id(self) -> str:
        return f"{self.exposure.namespace}.{self.target.name}"


class RouteConflict(ValueError):
    """Operations of one port answering the same method on the same path; `groups` holds them."""

    def __init__(self, groups: Sequence[Sequence[Route]]):
        self.groups = [list(g) for g in groups]
        super().__init__("; ".join(duplicate_route_message(g) for g in self.groups))


def route_shape(path: str) -> str:
    """`/images/{id}` and `/images/{image-id}` are one route: placeholders count, not their names."""
    return "/".join("{}" if is_placeholder(s) else s for s in route_path(path).split("/"))


def is_placeholder(segment: str) -> bool:
    """A whole path segment `{name}` (a segment such as `v{n}.json` is literal text)."""
    return _PLACEHOLDER.fullmatch(segment) is not None


def collect_routes(entries: Sequence[tuple[Capability, Exposure]]) -> list[Route]:
    """Every REST route of the exposures sharing one port.

    The same method on the same path (placeholders' names aside) twice is an error naming both
    places, `file:line:column`, whether in one file or in two served on one port."""
    routes: dict[tuple[str, str], list[Route]] = {}
    for capability, exposure in entries:
        for target in exposure.targets:
            method = str(target.spec.get("method", "GET")).upper()
            route = Route(method, route_path(resource_path(exposure, target)), capability, exposure, target)
            routes.setdefault((method, route_shape(route.path)), []).append(route)
    conflicts = [same for same in routes.values() if len(same) > 1]
    if conflicts:
        raise RouteConflict(conflicts)
    return [same[0] for same in routes.values()]


def duplicate_route_message(routes: Sequence[Route]) -> str:
    """`route GET /a is declared twice: at f.yaml:12:9 and at g.yaml:40:9`."""
    spellings = list(dict.fromkeys(r.path for r in routes))
    path = spellings[0] + (f" (also written {', '.join(spellings[1:])})" if len(spellings) > 1 else "")
    places = [f"at {r.capability.where(r.target.at)}" for r in routes]
    times = "twice" if len(routes) == 2 else f"{len(routes)} times"
    return f"route {routes[0].method} {path} is declared {times}: {', '.join(places[:-1])} and {places[-1]}"


def resource_path(exposure: Exposure, target: Target) -> str:
    """The exposed `resources[].path` a REST target belongs to."""
    for resource in exposure.spec.get("resources") or []:
        if any(op is target.spec for op in resource.get("operations") or []):
            return str(resource.get("path", "/"))
    return "/"


class RestRouter:
    """Matches a raw request path against the routes, segment by segment.

    Matching on the raw path keeps an encoded `/` (`%2F`) inside its segment; each captured
    value is decoded once. A route with more literal segments wins over one with parameters.
    Routes of the same shape (`/images/{id}` PUT, `/images/{image-id}` GET) are one route with
    several methods: a captured value is given under every spelling of its placeholder.
    """

    def __init__(self, routes: Sequence[Route], forwards: Sequence[ForwardRoute] = ()):
        self.routes = list(routes)
        self.forwards = list(forwards)
        self._forwards = []
        for forward in sorted(forwards, key=lambda f: (-len(f.prefix), sum(s.startswith("{") for s in f.prefix))):
            handler = ForwardHandler(forward)
            template = "/" + "/".join((*forward.prefix, "{" + forward.variable + "}"))
            self._forwards.append((forward.prefix, forward.variable, {m: handler for m in METHODS}, template))
        shapes: dict[tuple[str, ...], tuple[list[tuple[str, ...]], dict[str, RestHandler]]] = {}
        for route in routes:
            segments = _segments(route.path)
            shape = tuple("{}" if is_placeholder(s) else s for s in segments)
            spellings, methods = shapes.setdefault(shape, ([], {}))
            if segments not in spellings:
                spellings.append(segments)
            methods[route.method] = RestHandler(route)
        ordered = sorted(shapes.items(), key=lambda item: sum(s == "{}" for s in item[0]))
        self._by_length: dict[
            int, list[tuple[tuple[str, ...], tuple[tuple[str, ...], ...], dict[str, RestHandler], str]]
        ] = {}
        for shape, (spellings, methods) in ordered:
            # for each segment: the literal text, or every name its placeholder is spelled with
            names = tuple(
                tuple(dict.fromkeys(s[i][1:-1] for s in spellings)) if part == "{}" else ()
                for i, part in enumerate(shape)
            )
            template = "/" + "/".join(spellings[0])
            self._by_length.setdefault(len(shape), []).append((shape, names, methods, template))

    def match(self, raw_path: str) -> tuple[dict[str, RestHandler], dict[str, str], str] | None:
        """(handlers by method, path parameters, route template) or None."""
        parts = raw_path.split("?", 1)[0].split("/")[1:]
        for shape, names, methods, template in self._by_length.get(len(parts), ()):
            params: dict[str, str] = {}
            for part, spellings, actual in zip(shape, names, parts):
                if spellings:
                    if not actual:
                        break
                    # bytes that are not UTF-8 stay distinct (lone surrogates, refused as input) rather than all becoming U+FFFD
                    value = unquote(actual, errors="surrogateescape")
                    for name in spellings:
                        params.setdefault(name, value)  # a name written twice: its first segment
                elif part != unquote(actual):
                    break
            else:
                return methods, params, template
        return self._match_forward(parts)

    def _match_forward(self, parts: list[str]) -> tuple[dict[str, Any], dict[str, str], str] | None:
        """A forward resource's last variable takes the rest of the path, raw (one or more segments)."""
        for prefix, variable, methods, template in self._forwards:
            if len(parts) <= len(prefix):
                continue
            params: dict[str, str] = {}
            for segment, actual in zip(prefix, parts):
                if segment.startswith("{"):
                    if not actual:
                        break
                    params[segment[1:-1]] = unquote(actual)
                elif segment != unquote(actual):
                    break
            else:
                params[variable] = "/".join(parts[len(prefix) :])
                return methods, params, template
        return None


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.split("/")[1:])


class RequestError(Exception):
    def __init__(self, status: int, kind: str, title: str, detail: str, name: str | None = None):
        self.response = problem(
            status, kind, title, detail, **({"invalid-params": [{"name": name, "reason": detail}]} if name else {})
        )
        super().__init__(detail)


Reader = Callable[[Request, Mapping[str, str], Any], Any]  # request, path parameters, parsed body


def _coerce(field: InputField, text: str) -> Any:
    kind = field.type
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            if text.lower() in ("true", "1"):
                return True
            if text.lower() in ("false", "0"):
                return False
            raise ValueError
        if kind in ("object", "array"):
            return json.loads(text)
    except ValueError:
        name = field.wire_name
        raise RequestError(
            400, "invalid-input", "Invalid input", f"{field.location} parameter {name!r} must be of type {kind}", name
        ) from None
    return text


def _reader(field: InputField) -> Reader:
    """How one input is read from the request, decided once per route."""
    name = field.wire_name  # the placeholder's own spelling for a path input
    if field.whole_body:
        return lambda request, params, body: body
    if field.body_path is not None:
        path = JsonPath.compile(field.body_path)
        return lambda request, params, body: path.select(body) if body is not None else None
    if field.location == "body":
        return lambda request, params, body: body.get(field.name) if isinstance(body, dict) else None
    if field.location == "path":
        return lambda request, params, body: _coerce(field, params[name]) if name in params else None
    if field.location == "header":
        return lambda request, params, body: _coerce(field, request.headers[name]) if name in request.headers else None
    if field.location == "cookie":
        return lambda request, params, body: _coerce(field, request.cookies[name]) if name in request.cookies else None
    if field.type == "array":
        return lambda request, params, body: (
            [_coerce_item(v) for v in request.query.getall(name)] if name in request.query else None
        )
    return lambda request, params, body: _coerce(field, request.query[name]) if name in request.query else None


def _coerce_item(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class RestHandler:
    """One route: read inputs, invoke the engine, answer."""

    def __init__(self, route: Route):
        self.route = route
        self.readers = tuple((field.name, _reader(field)) for field in route.target.inputs)
        self.reads_body = any(f.location == "body" for f in route.target.inputs)
        self.body_type = body_type(route.target.inputs)
        self.handle = guard(route.exposure.auth, self.answer)  # the caller check (naftiko/auth/guard.py)

    async def answer(self, request: Request, params: Mapping[str, str]) -> Response:
        try:
            body = self._body(request)
            inputs = {}
            for name, read in self.readers:
                value = read(request, params, body)
                if value is not None:
                    inputs[name] = value
        except RequestError as exc:
            return exc.response
        result = await self.route.capability.invoke(self.route.target, inputs)
        request.result = result
        return respond(result)

    def _body(self, request: Request) -> Any:
        raw = request.body
        if not self.reads_body or not raw:  # no body at all; whitespace alone is not JSON (400)
            return None
        try:
            value = json_text.loads(raw)
        except (ValueError, RecursionError):
            raise RequestError(400, "malformed-json", "Malformed JSON", "the request body is not valid JSON") from None
        if self.body_type is not None and not type_matches(self.body_type, value):
            # what /openapi.json promises: a body of this type (JSON null included, refused)
            detail = f"the request body must be a JSON {self.body_type}, not {json_type_of(value)}"
            raise RequestError(400, "invalid-input", "Invalid input", detail, "body")
        return value


def body_type(fields: Sequence[InputField]) -> str | None:
    """The JSON type a REST request body must have (what /openapi.json documents), or None."""
    whole = next((f for f in fields if f.whole_body), None)
    if whole is not None:
        return whole.type or "object"
    return "object" if any(f.location == "body" for f in fields) else None


def respond(result: Result) -> Response:
    """Translate an engine Result into an HTTP answer."""
    match result:
        case Success(status, body, _, raw, content_type):
            if raw is not None:
                headers = {"Content-Type": content_type} if content_type and raw else {}
                return Response(status=status, body=raw, headers=headers)
            return _json(body, status)
        case UpstreamError(status, body, content_type):
            if status < 500:
                payload = body if isinstance(body, str) else dumps_text(body) if body is not None else ""
                return Response(
                    status=status, text=payload, content_type=_media_type(content_type) if payload else None
                )
            return problem(
                502,
                "upstream-error",
                "Upstream error",
                f"the upstream answered {status}",
                upstreamStatus=status,
                upstreamBody=body,
            )
        case Unreachable(message):
            return problem(502, "upstream-unreachable", "Upstream unreachable", message)
        case TimedOut(message):
            return problem(504, "upstream-timeout", "Upstream timeout", message)
        case RateLimited(message, retry_after):
            refused = problem(429, "rate-limited", "Too Many Requests", message, retryAfter=round(retry_after, 3))
            refused.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))  # whole seconds (RFC 9110)
            return refused
        case InvalidInput(name, reason):
            return problem(
                400, "invalid-input", "Invalid input", reason, **{"invalid-params": [{"name": name, "reason": reason}]}
            )
        case Failed(message):
            return problem(502, "upstream-failure", "Upstream answer unusable", message)
        case ScriptFailed(step, message, timed_out):
            if timed_out:
                return problem(504, "script-timeout", "Script step timed out", message, step=step)
            return problem(500, "script-failure", "Script step failed", message, step=step)
        case DryRun(request):
            return _json({"dryRun": True, "request": request}, 200)
    raise TypeError(result)


def _media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip()


def _json(value: Any, status: int) -> Response:
    """Compact JSON through orjson: the hot path (skill and control answers keep `json_response`)."""
    return Response(status, json_text.dumps(value), content_type="application/json; charset=utf-8")

"""Compile a checked document into invocation targets, and invoke them (DESIGN §3).

`Capability.invoke(target, inputs)` is the one path every call takes, whether it comes from
REST, MCP or `naftiko call`: check inputs, wire them into the consumed operation, build the
request, send it (or describe it, in dry-run), decode and map the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import json_text
from ..auth import CallerAuth
from ..consumes.auth import AuthError, DigestAuth, OAuth2ClientCredentials
from ..consumes.body import JsonValueBody, multipart_form
from ..consumes.client import (
    NamespaceClient,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from ..consumes.formats import BodyDecodeError
from ..consumes.operation import ConsumedOperation, ConsumedParameter
from ..consumes.request import OutgoingRequest
from ..consumes.url import PathValueError, join_url, request_target, split_origin
from ..spec.document import Document
from ..templates import MISSING, as_text
from .inputs import InputField, InputRef, Literal, Source, check_inputs
from .outputs import OutputShape
from .plans import MockPlan, StepsPlan
from .results import (
    DryRun,
    Failed,
    InvalidInput,
    RateLimited,
    Result,
    Success,
    TimedOut,
    Unreachable,
    UpstreamError,
    is_media,
)
from .secrets import Masker

if TYPE_CHECKING:
    from ..scripting.runtime import ScriptRuntime

_HEADER_BREAK = ("\r", "\n", "\x00")


@dataclass(frozen=True, slots=True)
class Target:
    """Something a caller can invoke: a consumed operation, a REST operation or an MCP tool.

    What it runs: with `plan` None, one call of `operation` (the hot path); otherwise the plan —
    a mock (`MockPlan`, no upstream, `operation` None) or steps (`StepsPlan`). Targets that
    `ref` an aggregate function are compiled into one of these with the function's fields
    inherited, so adapters never see the difference.
    """

    kind: str  # consumed | rest | mcp | step
    namespace: str
    name: str
    operation: ConsumedOperation | None
    inputs: tuple[InputField, ...]
    wiring: Mapping[str, Source]
    outputs: OutputShape
    description: str | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)  # the exposed entry as written
    plan: MockPlan | StepsPlan | None = None
    hints: Mapping[str, Any] | None = None  # MCP hints, with those derived from an aggregate's semantics
    at: tuple[str | int, ...] = ()  # where the exposed entry is in the file (a JSON path), for messages
    # `with` keys the consumed operation does not read (no parameter, placeholder or template
    # variable of that name): sent as query parameters under their own name (compile.py `extra_query_keys`)
    extra_query: tuple[str, ...] = ()
    input_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_names", frozenset(f.name for f in self.inputs))

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def calls(self) -> str:
        """What the target runs, for people: `ns.op`, `steps: a, lookup b, python script c`, or `mock`."""
        if self.operation is not None:
            return self.operation.key
        if isinstance(self.plan, StepsPlan):
            return "steps: " + ", ".join(step.summary for step in self.plan.steps)
        return "mock"


@dataclass
class Exposure:
    kind: str  # rest | mcp | skill | control
    namespace: str
    spec: Mapping[str, Any]  # the exposes entry as written
    targets: list[Target]
    auth: CallerAuth | None = None  # bearer/apikey/basic (exposes/server_auth.py) or oauth2 (auth/)

    @property
    def port(self) -> int | None:
        port = self.spec.get("port")
        return port if isinstance(port, int) else None


@dataclass
class Capability:
    file: str
    document: Document
    consumed: dict[str, Target]
    exposures: list[Exposure]
    binds: dict[str, str]
    masker: Masker
    clients: list[NamespaceClient]
    base_uris: dict[str, str]  # by consumed namespace, overrides applied
    dry_run: bool = False
    scripting: ScriptRuntime | None = None  # effective scripting settings; workers start with the first script call

    def targets(self) -> list[Target]:
        return [*self.consumed.values(), *(t for e in self.exposures for t in e.targets)]

    def where(self, at: tuple[str | int, ...]) -> str:
        """`file:line:column` of a JSON path in this capability's file."""
        source = self.document.source
        if source is None:
            return self.file
        line, column = source.position(at)
        return f"{self.file}:{line}:{column}"

    def find(self, name: str) -> Target | None:
        """By `namespace.name`, or by a tool's or REST operation's bare name when unique."""
        matches = [t for t in self.targets() if t.key == name]
        if not matches:
            matches = [t for t in self.targets() if t.kind != "consumed" and t.name == name]
        return matches[0] if len(matches) == 1 else None

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        if self.scripting is not None:
            await self.scripting.close()

    async def invoke(self, target: Target, inputs: Mapping[str, Any]) -> Result:
        problem = check_inputs(target.inputs, target.input_names, inputs)
        if problem is not None:
            return problem
        if target.plan is not None:
            return await target.plan.run(self, target, inputs)
        try:
            request = self._build_request(target, inputs)
        except _Invalid as exc:
            return InvalidInput(exc.name, self.masker.text(str(exc)))
        if self.dry_run:
            return DryRun(await self._describe(target, request))
        result = await self._send(target, request)
        if not isinstance(result, Success) or target.outputs.passthrough:
            return result
        return Success(result.status, target.outputs.apply(result.body, self.lookup(target, inputs, {})))

    # -- what steps ask of the capability (plans.StepHost) ------------------------------------

    async def send(self, target: Target, params: Mapping[str, Any]) -> Result:
        """One call step: its request built from the runtime parameters, sent, decoded."""
        try:
            request = self._build_request(target, params)
        except _Invalid as exc:
            return InvalidInput(exc.name, self.masker.text(f"step {target.name!r}: {exc}"))
        return await self._send(target, request)

    async def describe(self, target: Target, params: Mapping[str, Any]) -> dict[str, Any] | Result:
        """One call step in dry run: the request it would send."""
        try:
            request = self._build_request(target, params)
        except _Invalid as exc:
            return InvalidInput(exc.name, self.masker.text(f"step {target.name!r}: {exc}"))
        return await self._describe(target, request)

    async def _send(self, target: Target, request: OutgoingRequest) -> Result:
        """Send one request and decode the answer (not mapped: the caller maps)."""
        operation = target.operation
        try:
            response = await operation.client.send(request)
        except UpstreamUnreachable as exc:
            return Unreachable(self.masker.text(str(exc)))
        except UpstreamTimeout as exc:
            return TimedOut(str(exc))
        except UpstreamRateLimited as exc:
            return RateLimited(str(exc), exc.retry_after)
        except (UpstreamTooLarge, AuthError) as exc:
            return Failed(self.masker.text(str(exc)))
        content_type = response.headers.get("Content-Type")
        charset = _charset(content_type)
        if response.status >= 400:
            return UpstreamError(
                response.status, self.masker.data(_best_effort_body(response.body, charset)), content_type
            )
        if is_media(content_type):
            return Success(response.status, None, {}, response.body, content_type)
        try:
            decoded = operation.decode(response.body, charset)
        except BodyDecodeError as exc:
            return Failed(
                f"{target.key}: upstream answered {response.status} with a body that is not valid {operation.output_format}: {exc}"
            )
        return Success(response.status, decoded, {}, response.body, content_type)

    def wire(self, target: Target, inputs: Mapping[str, Any]) -> dict[str, Any]:
        wired: dict[str, Any] = {}
        if target.wiring:
            lookup = self.lookup(target, inputs, {})
            for name, source in target.wiring.items():
                value = _resolve(source, inputs, lookup)
                if value is not MISSING:
                    wired[name] = value
        return wired

    # -- request building -------------------------------------------------------------------

    def lookup(self, target: Target, inputs: Mapping[str, Any], wired: Mapping[str, Any]):
        binds = self.binds
        namespaces = (target.namespace,)

        def lookup(name: str) -> Any:
            if name in binds:
                return binds[name]
            if name in wired:
                return wired[name]
            if name in inputs:
                return inputs[name]
            for prefix in ("tools.", "rest.", *(f"{ns}." for ns in namespaces)):
                if name.startswith(prefix) and name[len(prefix) :] in inputs:
                    return inputs[name[len(prefix) :]]
            head, dot, rest = name.partition(".")
            if dot and head in inputs:  # {{step-name.field}}: into a step's output (or an object input)
                value = inputs[head]
                for key in rest.split("."):
                    if not isinstance(value, dict) or key not in value:
                        return MISSING
                    value = value[key]
                return value
            return MISSING

        return lookup

    def _build_request(self, target: Target, inputs: Mapping[str, Any]) -> OutgoingRequest:
        operation = target.operation
        wired: dict[str, Any] = {}
        base_lookup = self.lookup(target, inputs, {})
        for name, source in target.wiring.items():
            value = _resolve(source, inputs, base_lookup)
            if value is not MISSING:
                wired[name] = value
        lookup = self.lookup(target, inputs, wired)

        def value_of(parameter: ConsumedParameter) -> Any:
            if parameter.name in wired:
                return wired[parameter.name]
            if parameter.value is not None:
                if parameter.value.sole_variable is not None:
                    return lookup(parameter.value.sole_variable)
                missing: list[str] = []
                rendered = parameter.value.render(lookup, missing)
                return MISSING if missing and not rendered else rendered
            return lookup(parameter.name)

        def path_value(name: str) -> Any:
            parameter = operation.parameter(name)
            value = value_of(parameter) if parameter else lookup(name)
            if value is MISSING or value is None:
                raise _Invalid(name, f"missing value for path parameter {name!r}")
            return value

        base = self.base_uris[operation.namespace]
        try:
            url = join_url(base, operation.path.render(path_value))
        except PathValueError as exc:
            raise _Invalid(exc.name, str(exc)) from None
        request = OutgoingRequest(operation.method, url)
        body_fields: dict[str, Any] = {}
        form_fields: dict[str, tuple[str, bool]] = {}
        for parameter in operation.parameters:
            if parameter.location == "path" or parameter is operation.whole_body:
                continue
            value = value_of(parameter)
            if value is MISSING or value is None:
                if parameter.required and parameter.value is None:
                    raise _Invalid(parameter.name, f"missing required input {parameter.name!r}")
                continue
            text = as_text(value)
            if parameter.location in ("header", "cookie") and any(c in text for c in _HEADER_BREAK):
                raise _Invalid(
                    parameter.name, f"{parameter.location} {parameter.name!r} must not contain CR, LF or NUL"
                )
            if parameter.location == "query":
                request.query.append((parameter.name, text))
            elif parameter.location == "header":
                request.headers[parameter.name] = text
            elif parameter.location == "cookie":
                request.cookies[parameter.name] = text
            elif parameter.location == "body":
                body_fields[parameter.name] = value
            elif parameter.location == "formData":  # Swagger 2's form parameters, in real files
                form_fields[parameter.name] = (text, parameter.type == "file")
        for name in target.extra_query:
            value = wired.get(name)
            if value is not None:
                request.query.append((name, query_text(value)))
        payload = self._body(target, lookup, wired, body_fields)
        if payload is None and form_fields:
            payload = multipart_form(form_fields)
        if payload is not None:
            request.body, content_type = payload
            request.headers.setdefault("Content-Type", content_type)
        return request

    def _body(
        self, target: Target, lookup, wired: Mapping[str, Any], fields: dict[str, Any]
    ) -> tuple[bytes, str] | None:
        operation = target.operation
        if operation.whole_body is not None:
            value = wired.get("body", lookup("body"))
            if value is MISSING or value is None:
                if operation.method in ("POST", "PUT", "PATCH"):
                    return b"{}", "application/json"
                return None
            if isinstance(value, (bytes, str)) and not isinstance(value, str):
                return value, "application/octet-stream"
            return json_text.dumps(value), "application/json"
        if operation.body is not None:
            return operation.body.render(lookup)
        if fields:
            return JsonValueBody(fields).render(lookup)
        return None

    async def _describe(self, target: Target, request: OutgoingRequest) -> dict[str, Any]:
        """The request as it would be sent. OAuth2 and digest show only their scheme: no network."""
        auth = target.operation.client.auth
        if isinstance(auth, OAuth2ClientCredentials):
            request.headers["Authorization"] = "Bearer ****"
        elif isinstance(auth, DigestAuth):
            request.headers["Authorization"] = "Digest **** (computed from the upstream's challenge)"
        elif auth is not None:
            await auth.apply(request, target.operation.client.send_once)
        headers = dict(request.headers)
        origin, path = split_origin(request.url)
        url = origin + request_target(path, request.query)  # as sent, so masks match
        body: Any = None
        if request.body is not None:
            text = request.body.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        masker = Masker([*self.masker.secrets, *(auth.secrets if auth else ())])
        return masker.data(
            {"method": request.method, "url": url, "headers": headers, "cookies": request.cookies, "body": body}
        )


class _Invalid(Exception):
    def __init__(self, name: str, message: str):
        self.name = name
        super().__init__(message)


def _resolve(source: Source, inputs: Mapping[str, Any], lookup) -> Any:
    if isinstance(source, InputRef):
        return inputs.get(source.name, MISSING)
    if isinstance(source, Literal):
        return source.value
    name = source.sole_variable
    if name is not None:
        return lookup(name)
    return source.render(lookup)


def query_text(value: Any) -> str:
    """A value sent as one query parameter: text as it is, numbers and booleans as JSON, an array
    of scalars comma-joined (OpenAPI `style: form, explode: false`: `id,name`), anything else as
    JSON text."""
    if isinstance(value, list) and not any(isinstance(item, (list, dict)) for item in value):
        return ",".join(as_text(item) for item in value)
    return as_text(value)


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return None


def _best_effort_body(body: bytes, charset: str | None) -> Any:
    text = body.decode(charset or "utf-8", "replace")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text

"""Document → Capability: everything is compiled here, once, before any port opens.

Bind variables used by the capability are resolved now; each one that cannot be is reported
on its own line with where it is used (in dry-run they become visible placeholders).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..auth import CallerAuth
from ..binds import BindError, BindResolver, declare, declared_binds, lookup_declaration
from ..consumes.auth import AuthConfigError, build_authenticator
from ..consumes.body import BodyCompileError
from ..consumes.client import ClientSettings, NamespaceClient
from ..consumes.connections import ConnectionPool
from ..consumes.formats import UnsupportedFormat
from ..consumes.operation import (
    ConsumedOperation,
    ConsumedParameter,
    compile_operation,
    compile_parameter,
)
from ..consumes.proxy import ProxyRules
from ..consumes.tls import UpstreamTls, UpstreamTlsError, cert_file_of, client_context
from ..consumes.transport import UpstreamTransport
from ..exposes.server_auth import ServerAuthConfigError, build_server_auth
from ..observability import client_tracing
from ..scripting.runtime import ScriptRuntime
from ..scripting.settings import effective_settings, scripting_spec
from ..spec.diagnostics import CapabilityError, Diagnostic, JsonPath
from ..spec.document import Document
from ..spec.semantics import path_parameters
from ..templates import Template, variables_in
from .capability import Capability, Exposure, Target
from .inputs import InputField, InputRef, Source, compile_source, place_on_route, placeholder_key
from .jsonpath import JsonPath as JsonPathExpression
from .jsonpath import JsonPathError
from .outputs import OutputShape, compile_outputs
from .plans import MockPlan, Step, StepMapping, StepsPlan, compile_mock
from .secrets import SECRET_NAME, Masker
from .steps import CallStep, ConsumedOutput, LookupStep
from .steps_compile import script_step


@dataclass
class CompileOptions:
    dry_run: bool = False
    upstreams: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] | None = None  # None: os.environ (binds, HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE)
    settings: ClientSettings = field(default_factory=ClientSettings)
    rate_limits: Mapping[str, float] = field(default_factory=dict)  # requests per second, by namespace
    upstream_tls: Mapping[str, UpstreamTls] = field(default_factory=dict)  # CA and client certificate, by namespace
    namespace_settings: Mapping[str, ClientSettings] = field(
        default_factory=dict
    )  # instead of `settings`, by namespace


def compile_capability(document: Document, options: CompileOptions | None = None) -> Capability:
    options = options or CompileOptions()
    if not document.valid:
        raise CapabilityError(document.errors)
    return _Compiler(document, options).run()


class _Compiler:
    def __init__(self, document: Document, options: CompileOptions):
        self.document = document
        self.options = options
        self.data = document.resolved
        self.problems: list[Diagnostic] = []
        self.binds: dict[str, str] = {}
        self.secret_values: list[str] = []
        self.declared = declare(declared_binds(self.data))
        self.consumed_outputs: dict[int, tuple[ConsumedOutput, ...]] = {}  # by id() of the ConsumedOperation
        self.homonyms: dict[str, list[Target]] = {}  # `ns.name` → every consumed operation of that name
        self.tie_ranks: dict[tuple[Any, ...], int] = {}  # how many entries took a tied homonym (`_called`)
        self.functions: dict[str, tuple[Mapping[str, Any], str]] = {}
        environ = options.environ if options.environ is not None else os.environ
        self.resolver = BindResolver(document.base_dir, environ)
        self.scripting = ScriptRuntime(effective_settings(scripting_spec(self.data), environ))

    def problem(self, message: str, at: JsonPath) -> None:
        assert self.document.source is not None
        self.problems.append(self.document.source.diagnostic("error", message, at))

    def run(self) -> Capability:
        capability = self.data.get("capability") or {}
        consumed: dict[str, Target] = {}
        clients: list[NamespaceClient] = []
        base_uris: dict[str, str] = {}
        for index, spec in enumerate(capability.get("consumes") or []):
            at = ("capability", "consumes", index)
            namespace = str(spec.get("namespace"))
            client = self._client(namespace, spec, at)
            clients.append(client)
            base_uris[namespace] = self._base_uri(namespace, spec, at)
            shared = tuple(
                compile_parameter(p) for p in spec.get("inputParameters") or [] if isinstance(p, dict) and p.get("name")
            )
            self._resolve_templates(spec, at)
            for r_index, resource in enumerate(spec.get("resources") or []):
                for o_index, op_spec in enumerate(resource.get("operations") or []):
                    op_at = (*at, "resources", r_index, "operations", o_index)
                    operation = self._operation(namespace, resource, op_spec, shared, client, op_at)
                    if operation is not None:
                        target = self._target("consumed", namespace, operation.name, operation, op_spec, (), at=op_at)
                        consumed[operation.key] = target
                        self.homonyms.setdefault(operation.key, []).append(target)
                        self.consumed_outputs[id(operation)] = _consumed_outputs(op_spec.get("outputParameters"))
        self.functions = {
            f"{aggregate.get('namespace')}.{function.get('name')}": (function, str(aggregate.get("namespace")))
            for aggregate in capability.get("aggregates") or []
            if isinstance(aggregate, dict)
            for function in aggregate.get("functions") or []
            if isinstance(function, dict)
        }
        exposures = [
            self._exposure(index, spec, consumed) for index, spec in enumerate(capability.get("exposes") or [])
        ]
        if self.problems:
            raise CapabilityError(self.problems)
        return Capability(
            file=self.document.file,
            document=self.document,
            consumed=consumed,
            exposures=exposures,
            binds=self.binds,
            masker=Masker(self.secret_values + [s for c in clients if c.auth for s in c.auth.secrets]),
            clients=clients,
            base_uris=base_uris,
            dry_run=self.options.dry_run,
            scripting=self.scripting,
        )

    # -- binds --------------------------------------------------------------------------------

    def _resolve_templates(self, value: Any, at: JsonPath, secret: bool = False) -> None:
        """Resolve every bind variable used under `value` (once per name)."""
        if isinstance(value, str):
            for name in variables_in(value):
                self._bind_value(name, at, secret)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._resolve_templates(item, (*at, key), secret or key == "authentication")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._resolve_templates(item, (*at, index), secret)

    def _bind_value(self, name: str, at: JsonPath, secret: bool) -> str | None:
        declaration = lookup_declaration(name, self.declared)
        if declaration is None:
            return None  # an input, resolved per call
        if name not in self.binds:
            try:
                value = self.resolver.value(declaration)
            except BindError as exc:
                if not self.options.dry_run:
                    self.problem(f"variable {name}: {exc}", at)
                value = f"<{declaration.key}>"
            self.binds[name] = value
            if secret or SECRET_NAME.search(declaration.name):
                self.secret_values.append(value)
        return self.binds[name]

    def _render_binds(self, text: str, at: JsonPath, secret: bool = False) -> str:
        for name in variables_in(text):
            self._bind_value(name, at, secret)
        return Template.compile(text).render(lambda n: self.binds.get(n, ""))

    # -- consumes -----------------------------------------------------------------------------

    def _client(self, namespace: str, spec: Mapping[str, Any], at: JsonPath) -> NamespaceClient:
        """The namespace's client and its transport: a pool with the namespace's SSL context and
        the environment's proxies. Raises UpstreamTlsError (a ValueError) naming the namespace and
        the file, and ProxyConfigError (a ValueError) naming the variable, at load."""
        auth_spec = spec.get("authentication")
        auth_at = (*at, "authentication")
        try:
            auth = build_authenticator(auth_spec, lambda text: self._render_binds(text, auth_at, secret=True))
        except AuthConfigError as exc:
            self.problem(str(exc), auth_at)
            auth = None
        options = self.options
        settings = options.namespace_settings.get(namespace, options.settings)
        environ = options.environ if options.environ is not None else os.environ
        tls, cert_file = options.upstream_tls.get(namespace), cert_file_of(environ)
        try:
            ssl_context = client_context(tls or None, cert_file) if tls or cert_file else None
        except UpstreamTlsError as exc:
            raise UpstreamTlsError(f"upstream TLS of namespace {namespace!r}: {exc}") from None
        transport: UpstreamTransport = ConnectionPool(
            settings.connect_timeout, settings.max_body_bytes, ssl_context, ProxyRules.from_environ(environ)
        )
        tracing = None if options.dry_run else client_tracing(self.document, environ, self._render_binds)
        if tracing is not None:  # a CLIENT span per attempt, the trace sent upstream (observability/tracing.py)
            transport = tracing.client(transport, namespace, auth.secrets if auth is not None else ())
        return NamespaceClient(namespace, auth, settings, transport, options.rate_limits.get(namespace))

    def _base_uri(self, namespace: str, spec: Mapping[str, Any], at: JsonPath) -> str:
        override = self.options.upstreams.get(namespace)
        if override is not None:
            return override.rstrip("/")
        base = self._render_binds(str(spec.get("baseUri", "")), (*at, "baseUri"))
        if not base and not self.options.dry_run:
            self.problem(
                f"baseUri of {namespace!r} is empty: set it in the file or pass --upstream {namespace}=URL",
                (*at, "baseUri"),
            )
        elif "{" in base and not self.options.dry_run:
            self.problem(
                f"baseUri of {namespace!r} has an unresolved placeholder ({base}): pass --upstream {namespace}=URL",
                (*at, "baseUri"),
            )
        return base or f"http://{namespace}.invalid"

    def _operation(self, namespace, resource, spec, shared, client, at: JsonPath) -> ConsumedOperation | None:
        try:
            return compile_operation(namespace, resource, spec, shared, client)
        except UnsupportedFormat as exc:
            self.problem(str(exc), (*at, "outputRawFormat"))
        except BodyCompileError as exc:
            self.problem(str(exc), (*at, "body"))
        return None

    # -- exposes ------------------------------------------------------------------------------

    def _exposure(self, index: int, spec: Mapping[str, Any], consumed: Mapping[str, Target]) -> Exposure:
        at = ("capability", "exposes", index)
        kind = str(spec.get("type"))
        namespace = str(spec.get("namespace", ""))
        targets: list[Target] = []
        entries: list[tuple[JsonPath, Mapping[str, Any], Mapping[str, Any]]] = []
        if kind == "rest":
            for r_index, resource in enumerate(spec.get("resources") or []):
                for o_index, op in enumerate(resource.get("operations") or []):
                    entries.append(((*at, "resources", r_index, "operations", o_index), op, resource))
        elif kind == "mcp":
            for t_index, tool in enumerate(spec.get("tools") or []):
                entries.append(((*at, "tools", t_index), tool, {}))
        used_names: set[str] = set()
        for entry_at, entry, resource in entries:
            try:
                target = self._exposed(kind, namespace, entry, resource, consumed, entry_at, used_names)
            except JsonPathError as exc:
                self.problem(str(exc), (*entry_at, "outputParameters"))
                continue
            if target is not None:
                target = self._on_route(target, resource, entry_at) if kind == "rest" else replace(target, at=entry_at)
                used_names.add(target.name)
                targets.append(target)
        return Exposure(kind, namespace, spec, targets, self._server_auth(spec, (*at, "authentication")))

    def _exposed(self, kind, namespace, entry, resource, consumed, at: JsonPath, used_names: set[str]) -> Target | None:
        """One REST operation or MCP tool: a single call, a mock, or steps — its own or, with
        `ref`, inherited from an aggregate function (semantics §6.5).

        With `ref`, the entry's own fields override the function's: name, description,
        inputParameters, outputParameters, and the execution fields as a group (`call`/`steps`
        with their `with` and `mappings`: an entry with its own `call` or `steps` runs those).
        The function's `with` and steps read the caller's inputs in the aggregate's namespace
        (`shipyard.voyage-id`) as well as the exposure's. Unlike the reference, which delegates
        to the function at call time, everything is compiled into the target at load.
        """
        view: Mapping[str, Any] = entry
        namespaces: tuple[str, ...] = (namespace,)
        hints = None
        wiring_specs: list[tuple[Any, tuple[str, ...]]] = [(entry.get("with"), namespaces)]
        ref = entry.get("ref")
        if isinstance(ref, str):
            found = self.functions.get(ref)
            if found is None:
                return None  # semantics reported the unknown ref
            function, function_namespace = found
            namespaces = (namespace, function_namespace)
            own_execution = any(key in entry for key in ("call", "steps"))
            merged = {k: v for k, v in function.items() if k not in ("semantics",)}
            if own_execution:
                for key in ("call", "steps", "with", "mappings"):
                    merged.pop(key, None)
            merged.update({k: v for k, v in entry.items() if k != "ref"})
            view = merged
            wiring_specs = [
                (None if own_execution else function.get("with"), namespaces),
                (entry.get("with"), namespaces),
            ]
            hints = derive_hints(function.get("semantics"), entry.get("hints"))
        name = view.get("name")
        if not name or (kind == "rest" and not entry.get("name") and name in used_names):
            name = f"{entry.get('method', 'GET')} {resource.get('path', '')}"
        name = str(name)
        wiring: dict[str, Source] = {}
        for with_spec, with_namespaces in wiring_specs:
            if isinstance(with_spec, Mapping):
                wiring.update({str(k): compile_source(v, with_namespaces) for k, v in with_spec.items()})
        call = view.get("call")
        if isinstance(call, str):
            route = str(resource.get("path", "")) if kind == "rest" else None
            target = self._called(call, view, wiring, route, str(entry.get("method", "")), (*at, "call"))
            if target is None:
                return None  # semantics reported an unknown one
            return self._target(
                kind,
                namespace,
                name,
                target.operation,
                entry,
                namespaces,
                resource,
                view=view,
                wiring=wiring,
                hints=hints,
            )
        inputs = self._declared_inputs(kind, view, resource)
        description = view.get("description")
        if isinstance(view.get("steps"), list):
            plan = self._steps(view, namespaces, consumed, at)
            if not isinstance(view.get("inputParameters"), list):
                inputs = self._step_inputs(plan, inputs, resource, kind)
            outputs = OutputShape(()) if plan.mappings else compile_outputs(view.get("outputParameters"))
            return Target(kind, namespace, name, None, inputs, wiring, outputs, description, entry, plan, hints)
        mock = compile_mock(view.get("outputParameters"))
        if mock is None:
            return None  # nothing to run: no call, no steps, no value-bearing outputs
        if not isinstance(view.get("inputParameters"), list):
            named = {f.name for f in inputs}
            variables = sorted({_strip_input_prefix(v) for v in mock.variables()} - named)
            inputs += tuple(
                InputField(v, None, None, False, "query") for v in variables if not self.binds_or_declared(v)
            )
        return Target(kind, namespace, name, None, inputs, wiring, mock, description, entry, MockPlan(mock), hints)

    def _on_route(self, target: Target, resource: Mapping[str, Any], at: JsonPath) -> Target:
        """A REST target's inputs placed on its route's placeholders (engine/inputs.py
        `place_on_route`: one rule for routing, OpenAPI and validate)."""
        placeholders = path_parameters(str(resource.get("path", "")))
        inputs, problems = place_on_route(target.inputs, placeholders)
        for problem in problems:
            self.problem(f"{resource.get('path')}: {problem}", (*at[:-2], "path"))
        return replace(target, inputs=inputs, at=at)

    def _called(
        self,
        call: str,
        view: Mapping[str, Any],
        wiring: Mapping[str, Source],
        route: str | None,
        method: str,
        at: JsonPath,
    ) -> Target | None:
        """The consumed operation `call` names. Real files sometimes give several operations of a
        namespace one name (`get`, `delete`); the one meant is the one whose path the exposed
        route ends with, whose description the entry repeats, whose path parameters the entry
        supplies, whose method it shares (`pick_homonym`). Entries of one exposure that still tie
        take the tied operations in file order (the k-th such entry calls the k-th operation);
        one entry more than there are operations is an error naming them."""
        candidates = self.homonyms.get(call)
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        chosen, tied = pick_homonym(candidates, view, wiring, route, method)
        if not tied:
            return chosen
        key = (at[:3], call, tuple(id(t) for t in tied))
        rank = self.tie_ranks.get(key, 0)
        self.tie_ranks[key] = rank + 1
        if rank < len(tied):
            return sorted(tied, key=candidates.index)[rank]
        places = (
            ", ".join(f"line {self.document.source.position(t.at)[0]}" for t in tied) if self.document.source else ""
        )
        self.problem(
            f"call {call!r} names {len(tied)} operations of the same name ({places}) and this is entry {rank + 1} of"
            " this exposure calling it, with nothing telling which operation it means: give those operations distinct names",
            at,
        )
        return None

    def _step_inputs(
        self, plan: StepsPlan, inputs: tuple[InputField, ...], resource, kind: str
    ) -> tuple[InputField, ...]:
        """Steps without declared inputParameters: the inputs each call step would infer
        (DESIGN §4.3), except what earlier steps supply (`{{get-ship.x}}`, a step's name)."""
        fields = {f.name: f for f in inputs}
        step_names = {s.name for s in plan.steps}
        for step in plan.steps:
            if not isinstance(step, CallStep):
                continue
            for inferred in infer_inputs(step.target.operation, step.target.wiring, self.binds_or_declared, kind):
                if inferred.name.split(".")[0] not in step_names:
                    fields.setdefault(inferred.name, inferred)
        return tuple(fields.values())

    def _declared_inputs(
        self, kind: str, view: Mapping[str, Any], resource: Mapping[str, Any]
    ) -> tuple[InputField, ...]:
        """Declared inputParameters; a REST route's placeholders are placed later (`_on_route`)."""
        declared = view.get("inputParameters")
        return (
            tuple(_declared_input(kind, p) for p in declared if isinstance(p, dict) and p.get("name"))
            if isinstance(declared, list)
            else ()
        )

    def _steps(
        self, view: Mapping[str, Any], namespaces: tuple[str, ...], consumed: Mapping[str, Target], at: JsonPath
    ) -> StepsPlan:
        steps: list[Step] = []
        for index, step in enumerate(view.get("steps") or []):
            if not isinstance(step, dict):
                continue
            step_at = (*at, "steps", index)
            name = str(step.get("name", f"step-{index + 1}"))
            kind = step.get(
                "type", "call" if "call" in step else "lookup" if "lookup" in step or "index" in step else None
            )
            if kind == "call":
                wiring = {str(k): compile_source(v, namespaces) for k, v in (step.get("with") or {}).items()}
                target = self._called(str(step.get("call")), step, wiring, None, "", (*step_at, "call"))
                if target is None:
                    continue  # semantics reported an unknown one
                operation = target.operation
                extra = extra_query_keys(operation, wiring)
                step_target = Target(
                    "step", namespaces[-1], name, operation, (), wiring, OutputShape(()), extra_query=extra
                )
                steps.append(CallStep(name, step_target, self.consumed_outputs.get(id(operation), ())))
            elif kind == "lookup":
                index_name = str(step.get("index", ""))
                if index_name not in {s.name for s in steps}:
                    self.problem(
                        f"lookup step {name!r}: index {index_name!r} is not the name of an earlier step",
                        (*step_at, "index"),
                    )
                    continue
                fields = tuple(str(f) for f in step.get("outputParameters") or [] if isinstance(f, (str, int)))
                steps.append(
                    LookupStep(
                        name,
                        index_name,
                        str(step.get("match", "")),
                        _path_or_template(step.get("lookupValue", "")),
                        fields,
                    )
                )
            elif kind == "script":
                wiring = {str(k): compile_source(v, namespaces) for k, v in (step.get("with") or {}).items()}
                with_target = Target("step", namespaces[-1], name, None, (), wiring, OutputShape(()))
                found = script_step(self, step, with_target, step_at)
                if found is not None:
                    steps.append(found)
            else:
                self.problem(
                    f"step {name!r}: steps of type {kind!r} are not supported (call, lookup and script are)",
                    (*step_at, "type"),
                )
        mappings = tuple(
            StepMapping(tuple(str(m["targetName"]).split(".")), _path_or_template(m.get("value", "")))
            for m in view.get("mappings") or []
            if isinstance(m, dict) and m.get("targetName")
        )
        return StepsPlan(tuple(steps), mappings, compile_mock(view.get("outputParameters")))

    def _server_auth(self, spec: Mapping[str, Any], at: JsonPath) -> CallerAuth | None:
        try:
            auth = build_server_auth(spec.get("authentication"), lambda text: self._render_binds(text, at, secret=True))
        except ServerAuthConfigError as exc:
            self.problem(str(exc), at)
            return None
        if auth is not None:
            self.secret_values.extend(auth.secrets)
        return auth

    def _target(
        self,
        kind,
        namespace,
        name,
        operation,
        spec,
        namespaces,
        resource=None,
        *,
        view=None,
        wiring=None,
        hints=None,
        at=(),
    ) -> Target:
        """A single-call target; `view` is the declaration to read (the entry merged with its
        aggregate function), `spec` the entry as written."""
        view = spec if view is None else view
        if wiring is None:
            wiring = {str(k): compile_source(v, namespaces) for k, v in (view.get("with") or {}).items()}
        declared = view.get("inputParameters") if kind != "consumed" else None
        if isinstance(declared, list) and declared:
            inputs = self._declared_inputs(kind, view, resource)
        else:
            inputs = infer_inputs(operation, wiring, self.binds_or_declared, kind)
        outputs = compile_outputs(view.get("outputParameters") if kind != "consumed" else None)
        extra = extra_query_keys(operation, wiring) if operation is not None else ()
        return Target(
            kind,
            namespace,
            name,
            operation,
            inputs,
            wiring,
            outputs,
            view.get("description"),
            spec,
            None,
            hints,
            at,
            extra,
        )

    def binds_or_declared(self, name: str) -> bool:
        return lookup_declaration(name, self.declared) is not None


def _shape_key(path: str) -> tuple[str, ...]:
    """Path segments as comparable across spellings: lower case, no `-`/`_`, placeholders `{}`."""
    segments = [s for s in path.split("/") if s]
    return tuple("{}" if s.startswith("{") and s.endswith("}") else placeholder_key(s) for s in segments)


def pick_homonym(
    candidates: list[Target], view: Mapping[str, Any], wiring: Mapping[str, Source], route: str | None, method: str
) -> tuple[Target, list[Target]]:
    """The consumed operation an entry means among several of one name, or the tied best ones."""
    supplied = {placeholder_key(k) for k in wiring}
    if route is not None:
        supplied |= {placeholder_key(p) for p in path_parameters(route)}
    route_key = _shape_key(route) if route is not None else None
    description = str(view.get("description") or "").strip()

    def score(target: Target) -> tuple[int, int, int, int, int]:
        operation = target.operation
        assert operation is not None
        own = _shape_key("".join(part if i % 2 == 0 else "{x}" for i, part in enumerate(operation.path.parts)))
        path_match = int(
            route_key is not None and len(own) <= len(route_key) and route_key[len(route_key) - len(own) :] == own
        )
        same_description = int(bool(description) and description == str(operation.description or "").strip())
        names = {placeholder_key(n) for n in operation.path.names}
        known = names | {placeholder_key(p.name) for p in operation.parameters}
        missing = len(names - supplied)
        foreign = len({placeholder_key(k) for k in wiring} - known)
        same_method = int(method.upper() == operation.method)
        return (path_match, same_description, -missing, -foreign, same_method)

    scored = sorted(
        ((score(t), i, t) for i, t in enumerate(candidates)), key=lambda item: (item[0], -item[1]), reverse=True
    )
    best = scored[0][0]
    tied = [t for s, _, t in scored if s == best]
    return scored[0][2], (tied if len(tied) > 1 else [])


def derive_hints(semantics: Any, explicit: Any) -> dict[str, Any] | None:
    """MCP hints from an aggregate function's `semantics` (semantics §6.5): `safe: true` →
    readOnly and not destructive, `safe: false` → not readOnly, `idempotent` copied; the
    entry's explicit `hints` override field by field."""
    hints: dict[str, Any] = {}
    if isinstance(semantics, Mapping):
        if semantics.get("safe") is True:
            hints.update(readOnly=True, destructive=False)
        elif semantics.get("safe") is False:
            hints["readOnly"] = False
        if isinstance(semantics.get("idempotent"), bool):
            hints["idempotent"] = semantics["idempotent"]
    if isinstance(explicit, Mapping):
        hints.update(explicit)
    return hints or None


def _consumed_outputs(specs: Any) -> tuple[ConsumedOutput, ...]:
    """Named consumed output parameters with a JSONPath (`value` or `mapping` starting with `$`)."""
    outputs = []
    for spec in specs if isinstance(specs, list) else ():
        if not isinstance(spec, dict) or not spec.get("name"):
            continue
        path = spec.get("mapping") if isinstance(spec.get("mapping"), str) else spec.get("value")
        if isinstance(path, str) and path.strip().startswith("$"):
            try:
                outputs.append(ConsumedOutput(str(spec["name"]), JsonPathExpression.compile(path)))
            except JsonPathError:
                continue
    return tuple(outputs)


def _path_or_template(value: Any) -> JsonPathExpression | Template:
    text = str(value)
    return JsonPathExpression.compile(text) if text.strip().startswith("$") else Template.compile(text)


def _declared_input(kind: str, spec: Mapping[str, Any]) -> InputField:
    name = str(spec["name"])
    location = str(spec.get("in") or "query")
    value = spec.get("value")
    body_path = value if location == "body" and isinstance(value, str) and value.startswith("$") else None
    # MCP tool inputs are required unless they say otherwise (schema default); REST ones are not.
    required = location == "path" or (body_path is None and bool(spec.get("required", kind == "mcp")))
    return InputField(
        name=name,
        type=spec.get("type") if isinstance(spec.get("type"), str) else None,
        description=spec.get("description"),
        required=required,
        location=location,
        whole_body=kind == "rest" and location == "body" and name == "body" and body_path is None,
        body_path=body_path,
    )


def infer_inputs(
    operation: ConsumedOperation, wiring: Mapping[str, Source], is_bind, kind: str
) -> tuple[InputField, ...]:
    """DESIGN §4.3: every consumed parameter reached through `with`, path parameters, and
    parameters passed through by name, with their declared type, description and `required`.
    Where REST reads each one is decided by its route (`place_on_route`)."""
    fields: dict[str, InputField] = {}

    def add(name: str, parameter: ConsumedParameter | None, required: bool, location: str) -> None:
        if name in fields or is_bind(name):
            return
        if location == "formData":  # a form field of the upstream request: a body field to REST callers
            location = "body"
        whole_body = parameter is not None and parameter is operation.whole_body
        fields[name] = InputField(
            name=name,
            # Without a declared type: a path segment is text; a template slot takes any JSON value.
            type=(parameter.type if parameter else None)
            or ("object" if whole_body else "string" if location in ("path", "query", "header", "cookie") else None),
            description=parameter.description if parameter else None,
            required=required or location == "path",
            location="body" if whole_body else location,
            whole_body=whole_body and kind == "rest",
        )

    for param_name, source in wiring.items():
        parameter = operation.parameter(param_name)
        location = parameter.location if parameter else ("path" if param_name in operation.path.names else "query")
        if isinstance(source, InputRef):
            add(source.name, parameter, bool(parameter and parameter.required) or location == "path", location)
        elif isinstance(source, Template):
            for variable in source.variables:
                add(
                    variable.split(".")[-1] if variable.startswith(("tools.", "rest.")) else variable,
                    None,
                    location == "path",
                    "query",
                )
    for name in operation.path.names:
        if name not in wiring:
            parameter = operation.parameter(name)
            if parameter is None or parameter.value is None:
                add(name, parameter, True, "path")
    for parameter in operation.parameters:
        if parameter.name in wiring or parameter.location in ("path", "environment"):
            continue
        if parameter.value is None:
            add(parameter.name, parameter, parameter.required, parameter.location)
        else:
            for variable in parameter.value.variables:
                add(_strip_input_prefix(variable), None, False, "query")
    for variable in operation.body.variables if operation.body is not None else ():
        add(_strip_input_prefix(variable), None, False, "body")
    return tuple(fields.values())


def extra_query_keys(operation: ConsumedOperation, wiring: Mapping[str, Source]) -> tuple[str, ...]:
    """The `with` keys the consumed operation reads nowhere, in file order: sent upstream as query
    parameters under their own name (X's `user.fields`, which the schema forbids as a consumed
    parameter's name). A key reads somewhere when it names a consumed parameter or path
    placeholder, is a variable of the body template or of a parameter's `value` (`{{x}}`,
    `{{tools.x}}`), or is `body`; names compare as placeholders and inputs do (`placeholder_key`:
    case, `-` and `_` aside), so a key that probably meant one of those is not sent again under
    a second spelling. Computed once at load; the request path only walks this tuple."""
    read = {placeholder_key(p.name) for p in operation.parameters}
    read |= {placeholder_key(n) for n in operation.path.names}
    variables = [v for p in operation.parameters if p.value is not None for v in p.value.variables]
    variables += operation.body.variables if operation.body is not None else []
    for variable in variables:
        head, _, rest = variable.partition(".")
        read |= {placeholder_key(variable), placeholder_key(head), placeholder_key(rest)}
    read.add("body")
    return tuple(key for key in wiring if placeholder_key(key) not in read)


def _strip_input_prefix(name: str) -> str:
    for prefix in ("tools.", "rest."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name

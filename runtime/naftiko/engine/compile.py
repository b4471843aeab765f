"""Document → Capability: everything is compiled here, once, before any port opens.

Bind variables used by the capability are resolved now; each one that cannot be is reported
on its own line with where it is used (in dry-run they become visible placeholders).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..binds import BindError, BindResolver, declare, declared_binds, lookup_declaration
from ..consumes.auth import AuthConfigError, build_authenticator
from ..consumes.body import BodyCompileError
from ..consumes.client import ClientSettings, NamespaceClient
from ..consumes.formats import UnsupportedFormat
from ..consumes.operation import ConsumedOperation, ConsumedParameter, compile_operation, compile_parameter
from ..exposes.server_auth import ServerAuth, ServerAuthConfigError, build_server_auth
from ..spec.diagnostics import CapabilityError, Diagnostic, JsonPath
from ..spec.document import Document
from ..spec.semantics import path_parameters
from ..templates import Template, variables_in
from .capability import Capability, Exposure, Target
from .inputs import InputField, InputRef, Source, compile_source
from .jsonpath import JsonPathError
from .outputs import compile_outputs
from .secrets import SECRET_NAME, Masker


@dataclass
class CompileOptions:
    dry_run: bool = False
    upstreams: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] | None = None
    settings: ClientSettings = field(default_factory=ClientSettings)
    rate_limits: Mapping[str, float] = field(default_factory=dict)  # requests per second, by namespace


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
        self.resolver = BindResolver(document.base_dir, options.environ if options.environ is not None else os.environ)

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
            shared = tuple(compile_parameter(p) for p in spec.get("inputParameters") or [] if isinstance(p, dict) and p.get("name"))
            self._resolve_templates(spec, at)
            for r_index, resource in enumerate(spec.get("resources") or []):
                for o_index, op_spec in enumerate(resource.get("operations") or []):
                    op_at = (*at, "resources", r_index, "operations", o_index)
                    operation = self._operation(namespace, resource, op_spec, shared, client, op_at)
                    if operation is not None:
                        consumed[operation.key] = self._target("consumed", namespace, operation.name, operation, op_spec, ())
        exposures = [self._exposure(index, spec, consumed) for index, spec in enumerate(capability.get("exposes") or [])]
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
        auth_spec = spec.get("authentication")
        auth_at = (*at, "authentication")
        try:
            auth = build_authenticator(auth_spec, lambda text: self._render_binds(text, auth_at, secret=True))
        except AuthConfigError as exc:
            self.problem(str(exc), auth_at)
            auth = None
        return NamespaceClient(namespace, auth, self.options.settings, self.options.rate_limits.get(namespace))

    def _base_uri(self, namespace: str, spec: Mapping[str, Any], at: JsonPath) -> str:
        override = self.options.upstreams.get(namespace)
        if override is not None:
            return override.rstrip("/")
        base = self._render_binds(str(spec.get("baseUri", "")), (*at, "baseUri"))
        if not base and not self.options.dry_run:
            self.problem(f"baseUri of {namespace!r} is empty: set it in the file or pass --upstream {namespace}=URL", (*at, "baseUri"))
        elif "{" in base and not self.options.dry_run:
            self.problem(f"baseUri of {namespace!r} has an unresolved placeholder ({base}): pass --upstream {namespace}=URL", (*at, "baseUri"))
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
        for entry_at, entry, resource in entries:
            call = entry.get("call")
            if not isinstance(call, str) or call not in consumed:
                continue  # steps, refs and mocks: not served yet; semantics already checked targets
            operation = consumed[call].operation
            name = str(entry.get("name") or f"{entry.get('method', 'GET')} {resource.get('path', '')}")
            try:
                targets.append(self._target(kind, namespace, name, operation, entry, (namespace,), resource))
            except JsonPathError as exc:
                self.problem(str(exc), (*entry_at, "outputParameters"))
        return Exposure(kind, namespace, spec, targets, self._server_auth(spec, (*at, "authentication")))

    def _server_auth(self, spec: Mapping[str, Any], at: JsonPath) -> ServerAuth | None:
        try:
            auth = build_server_auth(spec.get("authentication"), lambda text: self._render_binds(text, at, secret=True))
        except ServerAuthConfigError as exc:
            self.problem(str(exc), at)
            return None
        if auth is not None:
            self.secret_values.extend(auth.secrets)
        return auth

    def _target(self, kind, namespace, name, operation, spec, namespaces, resource=None) -> Target:
        wiring = {str(k): compile_source(v, namespaces) for k, v in (spec.get("with") or {}).items()}
        declared = spec.get("inputParameters") if kind != "consumed" else None
        route_params = set(path_parameters(str((resource or {}).get("path", ""))))
        if isinstance(declared, list) and declared:
            inputs = tuple(_declared_input(kind, p, route_params) for p in declared if isinstance(p, dict) and p.get("name"))
            named = {field.name for field in inputs}
            inputs += tuple(InputField(name, "string", None, True, "path") for name in sorted(route_params - named))
        else:
            inputs = infer_inputs(operation, wiring, self.binds_or_declared, route_params, kind)
        outputs = compile_outputs(spec.get("outputParameters") if kind != "consumed" else None)
        return Target(kind, namespace, name, operation, inputs, wiring, outputs, spec.get("description"), spec)

    def binds_or_declared(self, name: str) -> bool:
        return lookup_declaration(name, self.declared) is not None


def _declared_input(kind: str, spec: Mapping[str, Any], route_params: set[str]) -> InputField:
    name = str(spec["name"])
    location = str(spec.get("in") or ("path" if name in route_params else "query"))
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


def infer_inputs(operation: ConsumedOperation, wiring: Mapping[str, Source], is_bind, route_params: set[str], kind: str) -> tuple[InputField, ...]:
    """DESIGN §4.3: every consumed parameter reached through `with`, path parameters, and
    parameters passed through by name, with their declared type, description and `required`."""
    fields: dict[str, InputField] = {}

    def add(name: str, parameter: ConsumedParameter | None, required: bool, location: str) -> None:
        if name in fields or is_bind(name):
            return
        if location != "body" and name in route_params:
            location = "path"
        whole_body = parameter is not None and parameter is operation.whole_body
        fields[name] = InputField(
            name=name,
            # Without a declared type: a path segment is text; a template slot takes any JSON value.
            type=(parameter.type if parameter else None) or ("object" if whole_body else "string" if location in ("path", "query", "header", "cookie") else None),
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
                add(variable.split(".")[-1] if variable.startswith(("tools.", "rest.")) else variable, None, location == "path", "query")
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


def _strip_input_prefix(name: str) -> str:
    for prefix in ("tools.", "rest."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name

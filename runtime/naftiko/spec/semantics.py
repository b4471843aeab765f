"""Checks beyond the schema: what a file must get right for the runtime to serve it.

Every `call` and `ref` resolves; namespaces are unique; baseUris are well formed; every path
parameter of a called operation can be supplied; every template variable names a bind, an
`env.` variable or an input that can reach it. Run on documents the dialect schema accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

from ..binds import declare, declared_binds, lookup_declaration
from ..engine.inputs import placeholder_key
from ..scripting.settings import SUPPORTED, scripting_spec
from ..templates import variables_in
from .diagnostics import JsonPath

Report = Callable[[str, str, JsonPath], None]
PATH_PARAMETER = re.compile(r"\{\{?\s*([^{}\s]+?)\s*\}?\}")
_INPUT_PREFIXES = ("tools.", "rest.", "$this.")
# Bind variables are UPPER_CASE by convention (every corpus file); other names are caller inputs.
_BIND_STYLE = re.compile(r"(?:[\w-]+\.)?[A-Z][A-Z0-9_]*")


def path_parameters(path: str) -> list[str]:
    """Names in `{x}` or `{{x}}` placeholders of a consumed or exposed path."""
    return PATH_PARAMETER.findall(path)


def operation_path(resource: Mapping[str, Any], operation: Mapping[str, Any]) -> str:
    """The path a consumed operation calls. Real files (Datadog, GitHub: 301 operations) give an
    operation its own `path` beside the collection's: from the baseUri when it starts with `/`,
    else under the resource's path. Without one, the resource's path."""
    own = operation.get("path")
    base = str(resource.get("path", ""))
    if not isinstance(own, str) or not own:
        return base
    return own if own.startswith("/") else base.rstrip("/") + "/" + own


def check_semantics(document: Mapping[str, Any], report: Report) -> None:
    capability = document.get("capability")
    if not isinstance(capability, dict):
        return
    consumes = [c for c in _items(capability.get("consumes")) if isinstance(c[1], dict)]
    exposes = [e for e in _items(capability.get("exposes")) if isinstance(e[1], dict)]
    aggregates = [a for a in _items(capability.get("aggregates")) if isinstance(a[1], dict)]
    _check_namespaces(consumes, exposes, aggregates, report)
    operations = _consumed_operations(consumes)
    functions = {
        f"{agg.get('namespace')}.{fn.get('name')}": fn
        for _, agg in aggregates
        for _, fn in _items(agg.get("functions"))
        if isinstance(fn, dict)
    }
    declared = declare(declared_binds(document))
    expose_namespaces = {str(e.get("namespace")) for _, e in exposes}
    for index, consumed in consumes:
        _check_base_uri(consumed, ("capability", "consumes", index), report)
    for _, (operation, resource, op_path) in operations.items():
        _check_unplaced_path_inputs(operation, resource, op_path, report)
    for index, exposure in exposes:
        if exposure.get("type") == "control" and "observability" in exposure:
            _check_observability(exposure["observability"], ("capability", "exposes", index, "observability"), report)
    scripting = scripting_spec(document)
    for path, callable_, route_parameters in _callables(capability):
        _check_callable(callable_, path, route_parameters, operations, functions, report)
        _check_semantics_consistency(callable_, path, functions, report)
        _check_script_steps(callable_, path, scripting, report)
    _check_templates(consumes, operations, _caller_inputs(capability), declared, expose_namespaces, report)


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


Entries = list[tuple[int, dict]]


def _check_namespaces(consumes: Entries, exposes: Entries, aggregates: Entries, report: Report) -> None:
    seen: dict[str, str] = {}
    for kind, entries in (("consumes", consumes), ("exposes", exposes), ("aggregates", aggregates)):
        for index, entry in entries:
            namespace = entry.get("as") or entry.get("namespace") or entry.get("import")
            if not isinstance(namespace, str):
                continue
            where = f"capability.{kind}[{index}]"
            if namespace in seen:
                report(
                    "error",
                    f"namespace {namespace!r} is already used by {seen[namespace]}",
                    ("capability", kind, index, "namespace"),
                )
            else:
                seen[namespace] = where


def _consumed_operations(consumes: list[tuple[int, dict]]) -> dict[str, tuple[dict, dict, JsonPath]]:
    """`namespace.operation` → (operation, resource, path of the operation)."""
    found: dict[str, tuple[dict, dict, JsonPath]] = {}
    for index, consumed in consumes:
        namespace = consumed.get("as") or consumed.get("namespace")
        for r_index, resource in _items(consumed.get("resources")):
            if not isinstance(resource, dict):
                continue
            for o_index, operation in _items(resource.get("operations")):
                if isinstance(operation, dict) and "name" in operation:
                    path = ("capability", "consumes", index, "resources", r_index, "operations", o_index)
                    found[f"{namespace}.{operation['name']}"] = (operation, resource, path)
    return found


def _check_base_uri(consumed: dict, path: JsonPath, report: Report) -> None:
    base = consumed.get("baseUri")
    if not isinstance(base, str):
        return
    at = (*path, "baseUri")
    if base == "":
        report("warning", "baseUri is empty: give it a value, or pass --upstream NAMESPACE=URL at run time", at)
        return
    if base.endswith("/"):
        report("error", f"baseUri must not end with '/': {base!r}", at)
        return
    if variables_in(base) or "{" in base or "${" in base:
        return
    parsed = urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        report("error", f"baseUri must be an http:// or https:// URL with a host: {base!r}", at)
    elif parsed.query or parsed.fragment:
        report("error", f"baseUri must not carry a query string or fragment: {base!r}", at)


def _check_observability(observability: Any, path: JsonPath, report: Report) -> None:
    """The tracing settings `naftiko run` reads (observability/trace_config.py): a value it could
    not use is an error here rather than a silent default there."""
    if not isinstance(observability, dict):
        report("error", "observability must be a mapping (enabled, metrics, traces, exporters)", path)
        return
    if "enabled" in observability and not isinstance(observability["enabled"], bool):
        report(
            "error",
            f"observability.enabled must be true or false, not {observability['enabled']!r}",
            (*path, "enabled"),
        )
    traces = observability.get("traces")
    if isinstance(traces, dict):
        sampling = traces.get("sampling")
        if "sampling" in traces and (
            isinstance(sampling, bool) or not isinstance(sampling, (int, float)) or not 0 <= sampling <= 1
        ):
            report(
                "error",
                f"traces.sampling must be a number from 0 to 1 (1.0 keeps every trace, 0.1 one in ten), not {sampling!r}",
                (*path, "traces", "sampling"),
            )
        propagation = traces.get("propagation")
        if "propagation" in traces and propagation not in ("w3c", "b3"):
            report(
                "error",
                f"traces.propagation must be w3c (traceparent) or b3, not {propagation!r}",
                (*path, "traces", "propagation"),
            )
        local = traces.get("local")
        if isinstance(local, dict):
            size = local.get("buffer-size")
            if "buffer-size" in local and (
                isinstance(size, bool) or not isinstance(size, int) or not 10 <= size <= 10000
            ):
                report(
                    "error",
                    f"traces.local.buffer-size must be a whole number of traces from 10 to 10000, not {size!r}",
                    (*path, "traces", "local", "buffer-size"),
                )
            if "enabled" in local and not isinstance(local["enabled"], bool):
                report(
                    "error",
                    f"traces.local.enabled must be true or false, not {local['enabled']!r}",
                    (*path, "traces", "local", "enabled"),
                )
        elif local is not None:
            report("error", "traces.local must be a mapping (enabled, buffer-size)", (*path, "traces", "local"))
    elif traces is not None:
        report("error", "observability.traces must be a mapping (sampling, propagation, local)", (*path, "traces"))
    exporters = observability.get("exporters")
    otlp = exporters.get("otlp") if isinstance(exporters, dict) else None
    if isinstance(otlp, dict):
        endpoint = otlp.get("endpoint")
        at = (*path, "exporters", "otlp", "endpoint")
        if not isinstance(endpoint, str):
            report(
                "error",
                f"exporters.otlp.endpoint must be the collector's OTLP/HTTP URL (e.g. http://collector:4318), not {endpoint!r}",
                at,
            )
        elif not variables_in(endpoint) and "<<" not in endpoint:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                report(
                    "error",
                    f"exporters.otlp.endpoint must be an http:// or https:// URL (OTLP/HTTP, e.g. http://collector:4318): {endpoint!r}",
                    at,
                )


def _callables(capability: dict) -> Iterator[tuple[JsonPath, dict, set[str]]]:
    """Every exposed REST operation, MCP tool and aggregate function, with its route's parameters."""
    for e_index, expose in _items(capability.get("exposes")):
        if not isinstance(expose, dict):
            continue
        base = ("capability", "exposes", e_index)
        for r_index, resource in _items(expose.get("resources")):
            if isinstance(resource, dict):
                route = set(path_parameters(str(resource.get("path", ""))))
                for o_index, operation in _items(resource.get("operations")):
                    if isinstance(operation, dict):
                        yield (*base, "resources", r_index, "operations", o_index), operation, route
        for t_index, tool in _items(expose.get("tools")):
            if isinstance(tool, dict):
                yield (*base, "tools", t_index), tool, set()
    for a_index, aggregate in _items(capability.get("aggregates")):
        if isinstance(aggregate, dict):
            for f_index, function in _items(aggregate.get("functions")):
                if isinstance(function, dict):
                    yield ("capability", "aggregates", a_index, "functions", f_index), function, set()


def _check_script_steps(callable_: dict, path: JsonPath, scripting: Mapping[str, Any], report: Report) -> None:
    """Script steps this runtime can run: a supported language (theirs or the control port's
    `defaultLanguage`) that `allowedLanguages` permits, and a `location` (theirs or the default).
    Files and syntax are checked when the capability is compiled (engine/steps_compile.py)."""
    allowed = scripting.get("allowedLanguages")
    for s_index, step in _items(callable_.get("steps")):
        if not isinstance(step, dict) or step.get("type") != "script":
            continue
        at = (*path, "steps", s_index)
        language = step.get("language") or scripting.get("defaultLanguage")
        where = (*at, "language") if "language" in step else at
        if not language:
            report("error", "script step without a language, and no management.scripting.defaultLanguage", at)
        elif language not in SUPPORTED:
            report("error", f"{language} scripts are not supported by this runtime (javascript and python are)", where)
        elif isinstance(allowed, list) and language not in allowed:
            listed = ", ".join(str(a) for a in allowed) or "none"
            report("error", f"language {language!r} is not in management.scripting.allowedLanguages ({listed})", where)
        if not (step.get("location") or scripting.get("defaultLocation")):
            report("error", "script step without a location, and no management.scripting.defaultLocation", at)


def _check_callable(
    callable_: dict,
    path: JsonPath,
    route_parameters: set[str],
    operations: Mapping[str, tuple[dict, dict, JsonPath]],
    functions: Mapping[str, dict],
    report: Report,
) -> None:
    ref = callable_.get("ref")
    if isinstance(ref, str) and ref not in functions:
        known = ", ".join(sorted(functions)) or "none"
        report("error", f"unknown aggregate function ref {ref!r} (known: {known})", (*path, "ref"))
    call = callable_.get("call")
    if isinstance(call, str):
        target = operations.get(call)
        if target is None:
            report("error", f"call target {call!r} is not an operation of any consumed namespace", (*path, "call"))
        else:
            _check_path_parameters(callable_, path, route_parameters, call, target, report)
    for s_index, step in _items(callable_.get("steps")):
        if isinstance(step, dict) and isinstance(step.get("call"), str) and step["call"] not in operations:
            report(
                "error",
                f"step call target {step['call']!r} is not an operation of any consumed namespace",
                (*path, "steps", s_index, "call"),
            )


def _check_semantics_consistency(
    callable_: dict, path: JsonPath, functions: Mapping[str, dict], report: Report
) -> None:
    """A `ref` user must not contradict its function's `semantics` (the framework's Spectral rule
    naftiko-aggregate-semantics-consistency): safe means read-only, not destructive, and GET;
    unsafe means not read-only and not GET; idempotent both ways, and never POST."""
    function = functions.get(str(callable_.get("ref")))
    semantics = function.get("semantics") if isinstance(function, dict) else None
    if not isinstance(semantics, dict):
        return
    safe, idempotent = semantics.get("safe"), semantics.get("idempotent")
    hints = callable_.get("hints") if isinstance(callable_.get("hints"), dict) else {}
    where = f"function {callable_['ref']}"
    if safe is True and (hints.get("readOnly") is False or hints.get("destructive") is True):
        report(
            "warning",
            f"hints contradict the semantics of {where}: a safe function is read-only and not destructive",
            (*path, "hints"),
        )
    if safe is False and hints.get("readOnly") is True:
        report(
            "warning",
            f"hints contradict the semantics of {where}: an unsafe function is not read-only",
            (*path, "hints"),
        )
    if isinstance(idempotent, bool) and isinstance(hints.get("idempotent"), bool) and hints["idempotent"] != idempotent:
        report("warning", f"hints.idempotent contradicts the semantics of {where}", (*path, "hints"))
    method = str(callable_.get("method", "")).upper()
    if not method or "tools" in path:
        return
    if safe is True and method != "GET":
        report("warning", f"{method} exposes {where}, which is safe: safe operations use GET", (*path, "method"))
    elif safe is False and method == "GET":
        report("warning", f"GET exposes {where}, which is unsafe", (*path, "method"))
    if idempotent is True and method == "POST":
        report("warning", f"POST exposes {where}, which is idempotent", (*path, "method"))


def _check_path_parameters(
    callable_: dict,
    path: JsonPath,
    route_parameters: set[str],
    call: str,
    target: tuple[dict, dict, JsonPath],
    report: Report,
) -> None:
    """A declared input list that supplies no value for a path parameter can never build the URL.

    A REST route's own `{x}` supplies `x`."""
    declared_inputs = callable_.get("inputParameters")
    if not isinstance(declared_inputs, list) or not declared_inputs:
        return  # inputs are inferred from the consumed operation, path parameters included
    operation, resource, _ = target
    supplied = {str(k) for k in (callable_.get("with") or {})} if isinstance(callable_.get("with"), dict) else set()
    supplied |= {str(p.get("name")) for p in declared_inputs if isinstance(p, dict)} | route_parameters
    supplied |= {
        str(p.get("name"))
        for p in _items_values(operation.get("inputParameters"))
        if isinstance(p, dict) and "value" in p
    }
    keys = {placeholder_key(s) for s in supplied}
    for name in path_parameters(operation_path(resource, operation)):
        if name not in supplied and placeholder_key(name) not in keys:
            report(
                "error",
                f"path parameter {name!r} of {call} is not supplied by inputParameters or with",
                (*path, "call"),
            )


def _check_unplaced_path_inputs(operation: dict, resource: dict, at: JsonPath, report: Report) -> None:
    """An `in: path` parameter its operation's path has no placeholder for is never sent:
    the operation calls a URL its author did not mean (warning: the rest of the file serves)."""
    path = operation_path(resource, operation)
    placeholders = set(path_parameters(path))
    for index, parameter in _items(operation.get("inputParameters")):
        if (
            isinstance(parameter, dict)
            and parameter.get("in") == "path"
            and str(parameter.get("name")) not in placeholders
        ):
            name = parameter.get("name")
            report(
                "warning",
                f"path parameter {name!r} has no {{{name}}} placeholder in the path {path!r}: its value is never sent",
                (*at, "inputParameters", index),
            )


def _items_values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _caller_inputs(capability: dict) -> dict[str, set[str]]:
    """For each call target, the names its callers pass: `with` keys and declared inputs."""
    names: dict[str, set[str]] = {}
    for _, callable_, _route in _callables(capability):
        steps = [s for s in _items_values(callable_.get("steps")) if isinstance(s, dict)]
        declared = {str(p.get("name")) for p in _items_values(callable_.get("inputParameters")) if isinstance(p, dict)}
        for caller in (callable_, *steps):
            if isinstance(caller.get("call"), str):
                with_keys = set(caller["with"]) if isinstance(caller.get("with"), dict) else set()
                names.setdefault(caller["call"], set()).update(declared | {str(k) for k in with_keys})
    return names


def _check_templates(
    consumes: list[tuple[int, dict]],
    operations: Mapping[str, tuple[dict, dict, JsonPath]],
    caller_inputs: Mapping[str, set[str]],
    declared: Mapping[str, Any],
    expose_namespaces: set[str],
    report: Report,
) -> None:
    """Template variables in consumes must be binds, `env.` variables or inputs.

    An unknown lower-case name is a caller input the engine infers; an unknown UPPER_CASE one
    is a bind variable nobody declared — almost always a typo or a missing `binds` entry.
    """
    prefixes = _INPUT_PREFIXES + tuple(f"{ns}." for ns in expose_namespaces)

    def check(text: Any, path: JsonPath, inputs: set[str]) -> None:
        for text_value, text_path in _strings(text, path):
            for name in variables_in(text_value):
                if name in inputs or name.startswith(prefixes):
                    continue
                declaration = lookup_declaration(name, declared)
                if declaration is None:
                    if _BIND_STYLE.fullmatch(name):
                        report(
                            "error",
                            f"template variable {{{{{name}}}}} is not declared in binds and is not an input",
                            text_path,
                        )
                elif declaration.bind is None:
                    report(
                        "warning",
                        f"{{{{{name}}}}} is not declared in binds; it is read from the environment variable {declaration.key}",
                        text_path,
                    )

    for index, consumed in consumes:
        base = ("capability", "consumes", index)
        all_inputs: set[str] = set()
        namespace_ops = [
            (target, caller_inputs.get(call, set())) for call, target in operations.items() if target[2][:3] == base
        ]
        for (operation, resource, _), callers in namespace_ops:
            all_inputs |= _operation_inputs(operation, resource) | callers
        for key in ("baseUri", "authentication", "headers", "inputParameters"):
            check(consumed.get(key), (*base, key), all_inputs)
        for r_index, resource in _items(consumed.get("resources")):
            if isinstance(resource, dict):
                check(resource.get("path"), (*base, "resources", r_index, "path"), all_inputs)
        for (operation, resource, op_path), callers in namespace_ops:
            inputs = _operation_inputs(operation, resource) | callers
            for key in ("inputParameters", "body", "headers", "path"):
                check(operation.get(key), (*op_path, key), inputs)


def _operation_inputs(operation: dict, resource: dict) -> set[str]:
    names = {str(p.get("name")) for p in _items_values(operation.get("inputParameters")) if isinstance(p, dict)}
    names |= set(path_parameters(operation_path(resource, operation)))
    return names


def _strings(value: Any, path: JsonPath) -> Iterator[tuple[str, JsonPath]]:
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))

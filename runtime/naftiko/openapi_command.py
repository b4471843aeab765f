"""`naftiko openapi FILE`: print the OpenAPI 3.1 document a REST exposure serves at /openapi.json."""

from __future__ import annotations

import json
import sys

from .engine.compile import CompileOptions, compile_capability
from .exposes.openapi import build_openapi
from .exposes.rest import RouteConflict, collect_routes
from .server import PlanError, plan
from .spec.diagnostics import CapabilityError
from .spec.document import load_document


def print_openapi(file: str, namespace: str | None) -> int:
    try:
        capability = compile_capability(load_document(file), CompileOptions(dry_run=True))
    except OSError as exc:
        print(f"naftiko openapi: {file}: {exc.strerror}", file=sys.stderr)
        return 2
    except CapabilityError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        plans = [p for p in plan([capability]) if p.kind == "rest"]
    except PlanError as exc:
        print(f"naftiko openapi: {exc}", file=sys.stderr)
        return 2
    known = ", ".join(e.namespace for p in plans for _, e in p.entries) or "none"
    if namespace is not None:
        plans = [p for p in plans if any(e.namespace == namespace for _, e in p.entries)]
        if not plans:
            print(
                f"naftiko openapi: --namespace: no REST exposure named {namespace!r} (known: {known})", file=sys.stderr
            )
            return 2
    if len(plans) != 1:
        print(
            f"naftiko openapi: expected one REST exposure, found: {known} (choose one with --namespace)",
            file=sys.stderr,
        )
        return 2
    [port_plan] = plans
    try:
        routes = collect_routes(port_plan.entries)
    except RouteConflict as exc:  # the message `naftiko run` gives: both places, file:line:column
        print(f"naftiko openapi: {exc}", file=sys.stderr)
        return 2
    document = build_openapi(routes, f"http://{port_plan.address}:{port_plan.port}")
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0

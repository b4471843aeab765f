"""`naftiko call`: load one capability, invoke one target, print the result as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from .config import UsageError, check_namespaces, parse_pairs
from .consumes.proxy import ProxyConfigError
from .consumes.tls import UpstreamTlsError
from .engine.compile import CompileOptions, compile_capability
from .engine.results import DryRun, Success, result_as_json
from .observability import close_all
from .spec.diagnostics import CapabilityError
from .spec.document import load_document


def parse_inputs(args: Sequence[str], json_text: str | None, text_inputs: set[str]) -> dict[str, Any]:
    """`--json` first, then each `--arg`: kept as text for string inputs, else parsed as JSON when it can be."""
    inputs: dict[str, Any] = {}
    if json_text is not None:
        try:
            loaded = json.loads(json_text)
        except ValueError as exc:
            raise UsageError(f"--json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError("--json must be a JSON object")
        inputs.update(loaded)
    for key, value in parse_pairs(args, "--arg").items():
        if key in text_inputs:
            inputs[key] = value
            continue
        try:
            inputs[key] = json.loads(value)
        except ValueError:
            inputs[key] = value
    return inputs


def run_call(file: str, target_name: str, args: Sequence[str], json_text: str | None, options: CompileOptions) -> int:
    try:
        capability = compile_capability(load_document(file), options)
        check_namespaces(options, (c.namespace for c in capability.clients))
    except (UsageError, UpstreamTlsError, ProxyConfigError) as exc:
        print(f"naftiko call: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"naftiko call: {file}: {exc.strerror}", file=sys.stderr)
        return 2
    except CapabilityError as exc:
        print(exc, file=sys.stderr)
        return 2
    target = capability.find(target_name)
    if target is None:
        names = ", ".join(sorted({t.key for t in capability.targets()}))
        print(f"naftiko call: no single target named {target_name!r} (known: {names})", file=sys.stderr)
        return 2
    try:
        inputs = parse_inputs(args, json_text, {f.name for f in target.inputs if f.type == "string"})
    except UsageError as exc:
        print(f"naftiko call: {exc}", file=sys.stderr)
        return 2

    async def invoke() -> Any:
        try:
            return await capability.invoke(target, inputs)
        finally:
            await capability.close()
            await close_all()  # its spans, when the file traces

    result = asyncio.run(invoke())
    print(json.dumps(result_as_json(result), indent=2, ensure_ascii=False))
    ok = isinstance(result, DryRun) or (isinstance(result, Success) and 200 <= result.status < 300)
    return 0 if ok else 1

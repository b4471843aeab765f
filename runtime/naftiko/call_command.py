"""`naftiko call`: load one capability, invoke one target, print the result as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from .engine.compile import CompileOptions, compile_capability
from .engine.results import DryRun, Success, result_as_json
from .spec.diagnostics import CapabilityError
from .spec.document import load_document


class UsageError(Exception):
    pass


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must look like NAME=VALUE, got {pair!r}")
        parsed[key] = value
    return parsed


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


def parse_rates(pairs: Sequence[str]) -> dict[str, float]:
    """`--rate-limit NS=RPS` pairs; RPS a positive number of requests per second."""
    rates: dict[str, float] = {}
    for namespace, text in parse_pairs(pairs, "--rate-limit").items():
        try:
            rate = float(text)
        except ValueError:
            rate = 0.0
        if not 0 < rate < float("inf"):
            raise UsageError(f"--rate-limit needs a positive number of requests per second, got {text!r}")
        rates[namespace] = rate
    return rates


def run_call(
    file: str, target_name: str, args: Sequence[str], json_text: str | None, upstreams: Sequence[str], rate_limits: Sequence[str], dry_run: bool
) -> int:
    try:
        options = CompileOptions(dry_run=dry_run, upstreams=parse_pairs(upstreams, "--upstream"), rate_limits=parse_rates(rate_limits))
        capability = compile_capability(load_document(file), options)
    except UsageError as exc:
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

    result = asyncio.run(invoke())
    print(json.dumps(result_as_json(result), indent=2, ensure_ascii=False))
    ok = isinstance(result, DryRun) or (isinstance(result, Success) and 200 <= result.status < 300)
    return 0 if ok else 1

"""Is every REST operation of the real corpus callable? (issue #16, "Every real file works")

For every file of ../shared/corpus/alpha2 that `naftiko validate` accepts and that declares a
REST exposure: compile it as `naftiko run --dry-run` would, serve its REST ports on 127.0.0.1
(port 0, in this process), read `/openapi.json`, check it is valid OpenAPI 3.1 (the
`openapi-spec-validator` package, plus unique operationIds), then call every operation with
values built from that document alone (path parameters, required query/header/cookie
parameters, a body matching the schema). An operation is callable when it answers 200.

Run:  python bench/corpus_callable.py [--sample N] [--limit K] [--details] [--json OUT]
      (--sample 9: every 9th validate-accepted file, sorted by path; --limit: at most K files)

Prints callable / total operations, invalid OpenAPI documents, files `validate` accepts but
`run` refuses, tracebacks, and whether the values sent as path parameters reach the upstream
URL of the dry-run answer. Nothing is asserted: it is a measure (tests/integration hold the bars).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from openapi_spec_validator import OpenAPIV31SpecValidator

from naftiko.access_log import AccessLog
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.server import PlanError, PortServer, plan
from naftiko.spec.diagnostics import CapabilityError
from naftiko.spec.document import load_document
from naftiko.validation import check_files, discover

_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - the access log of every server goes nowhere
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "alpha2"


@dataclass
class Tally:
    files: int = 0  # validate-accepted files looked at
    rest_files: int = 0
    operations: int = 0
    callable: int = 0
    documents: int = 0
    invalid_documents: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # accepted by validate, refused by run
    tracebacks: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # file, "METHOD /path", reason
    path_values: int = 0
    path_values_in_url: int = 0
    path_values_elsewhere: int = 0  # in a header or the body, not the URL
    path_values_lost: list[tuple[str, str, str]] = field(default_factory=list)


class _TracebackCatcher(logging.Handler):
    """The server logs an unhandled error (and answers 500) instead of raising: catch those."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


# -- values from the OpenAPI document ----------------------------------------------------------


class Values:
    """Example values for a schema; strings and integers are unique per call so they can be found."""

    def __init__(self) -> None:
        self.counter = 0

    def token(self) -> str:
        self.counter += 1
        return f"v{self.counter}q"

    def of(self, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, dict) or depth > 6:
            return self.token()
        if "enum" in schema and schema["enum"]:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.of(schema[key][0], depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "integer":
            self.counter += 1
            return 7000 + self.counter
        if kind == "number":
            return 1.5
        if kind == "boolean":
            return True
        if kind == "array":
            return [self.of(schema.get("items"), depth + 1)]
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties") or {}
            return {name: self.of(properties.get(name), depth + 1) for name in schema.get("required") or []}
        if kind == "null":
            return None
        return self.token()


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def check_document(document: dict[str, Any]) -> str | None:
    """Why `document` is not valid OpenAPI 3.1, or None."""
    errors = list(OpenAPIV31SpecValidator(document).iter_errors())
    if errors:
        return "; ".join(sorted({str(e.message)[:200] for e in errors})[:3])
    ids = Counter(
        op.get("operationId")
        for item in document.get("paths", {}).values()
        for op in item.values()
        if isinstance(op, dict)
    )
    duplicates = [i for i, n in ids.items() if n > 1 and i is not None]
    if duplicates:
        return f"operationId used more than once: {', '.join(map(str, duplicates[:3]))}"
    return None


def _urls(answer: Any) -> list[str]:
    request = answer.get("request") if isinstance(answer, dict) else None
    if not isinstance(request, dict):
        return []
    if "steps" in request:
        return [s.get("url", "") for s in request["steps"] if isinstance(s, dict)]
    return [str(request.get("url", ""))]


# -- one file ---------------------------------------------------------------------------------


async def check_file(
    path: Path, document_loaded, tally: Tally, session: aiohttp.ClientSession, catcher: _TracebackCatcher
) -> None:
    name = str(path.relative_to(CORPUS)) if path.is_relative_to(CORPUS) else str(path)
    try:
        capability = compile_capability(document_loaded, CompileOptions(dry_run=True))
        plans = plan([capability])
    except (CapabilityError, PlanError) as exc:
        tally.refused.append((name, str(exc).splitlines()[0]))
        return
    except Exception:  # noqa: BLE001 - that is what we count
        tally.tracebacks.append((name, traceback.format_exc()))
        return
    rest_plans = [p for p in plans if p.kind == "rest"]
    if not rest_plans:
        return
    tally.rest_files += 1
    servers = []
    try:
        for port_plan in plans:
            try:
                if port_plan.kind == "mcp":
                    from naftiko.exposes.mcp import McpServer

                    McpServer(port_plan.entries)  # run builds it too: a refusal here is a refusal of run
                    continue
                if port_plan.kind != "rest":
                    continue
                server = PortServer(replace(port_plan, address="127.0.0.1", port=0))
                server.access_log = AccessLog(_DEVNULL)
            except (PlanError, ValueError) as exc:
                tally.refused.append((name, str(exc).splitlines()[0]))
                return
            except Exception:  # noqa: BLE001
                tally.tracebacks.append((name, traceback.format_exc()))
                return
            await server.listen()
            servers.append(server)
        for server in servers:
            await check_server(name, server, tally, session, catcher)
    finally:
        for server in servers:
            await server.close(timeout=1.0)
        await capability.close()


async def check_server(
    name: str, server: PortServer, tally: Tally, session: aiohttp.ClientSession, catcher: _TracebackCatcher
) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with session.get(base + "/openapi.json") as response:
        document = await response.json()
    tally.documents += 1
    problem = check_document(document)
    if problem:
        tally.invalid_documents.append((name, problem))
    for template, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            tally.operations += 1
            before = len(catcher.records)
            await call_operation(name, base, template, method.upper(), operation, tally, session)
            for record in catcher.records[before:]:
                tally.tracebacks.append(
                    (name, f"{method.upper()} {template}: " + logging.Formatter().formatException(record.exc_info))
                )


async def call_operation(name, base, template, method, operation, tally: Tally, session) -> None:
    values = Values()
    path = template
    path_values: list[tuple[str, str]] = []
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    for parameter in operation.get("parameters") or []:
        where, pname = parameter.get("in"), parameter.get("name")
        if where != "path" and not parameter.get("required"):
            continue
        value = values.of(parameter.get("schema"))
        text = text_of(value)
        if where == "path":
            path = path.replace("{" + pname + "}", quote(text, safe=""))
            path_values.append((pname, text))
        elif where == "query":
            for item in value if isinstance(value, list) else [value]:
                query.append((pname, text_of(item)))
        elif where == "header":
            headers[pname] = text
        elif where == "cookie":
            cookies[pname] = text
    body = None
    request_body = operation.get("requestBody")
    if isinstance(request_body, dict):
        schema = (request_body.get("content") or {}).get("application/json", {}).get("schema")
        body = values.of(schema if schema else {"type": "object"})
        if body is None:
            body = {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    url = base + path
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    where = f"{method} {template}"
    try:
        async with session.request(method, aiohttp.client.URL(url, encoded=True), **kwargs) as response:
            raw = await response.read()
            status = response.status
    except Exception as exc:  # noqa: BLE001
        tally.failures.append((name, where, f"request failed: {exc!r}"))
        return
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = raw.decode("utf-8", "replace")
    if status != 200:
        detail = answer.get("detail") if isinstance(answer, dict) else str(answer)[:120]
        tally.failures.append((name, where, f"{status}: {detail}"))
        return
    tally.callable += 1
    if not (isinstance(answer, dict) and answer.get("dryRun")):
        return  # a mock: nothing is sent upstream
    urls = " ".join(_urls(answer))
    whole = json.dumps(answer)
    for pname, text in path_values:
        tally.path_values += 1
        if quote(text, safe="") in urls or text in urls:
            tally.path_values_in_url += 1
        elif text in whole:
            tally.path_values_elsewhere += 1
        else:
            tally.path_values_lost.append((name, where, pname))


# -- the run ----------------------------------------------------------------------------------


def reason_kind(reason: str) -> str:
    """Failure reasons with the names and values taken out, to count them by kind."""
    reason = re.sub(r"'[^']*'", "'…'", reason)
    reason = re.sub(r"\(expected: [^)]*\)", "(expected: …)", reason)
    return re.sub(r"\d{4,}", "N", reason)[:140]


async def run(files: list[Path], tally: Tally, verbose: bool) -> None:
    catcher = _TracebackCatcher()
    logging.getLogger("naftiko").addHandler(catcher)
    logging.getLogger("naftiko").propagate = False
    connector = aiohttp.TCPConnector(
        limit=16, force_close=True
    )  # a kept-alive connection would hold each server open on close
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for index, path in enumerate(files):
            document = load_document(path)
            if not document.valid or "capability" not in (document.data or {}):
                continue
            tally.files += 1
            await check_file(path, document, tally, session, catcher)
            if verbose and index % 100 == 99:
                print(
                    f"  … {index + 1}/{len(files)} files, {tally.callable}/{tally.operations} callable", file=sys.stderr
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=str(CORPUS))
    parser.add_argument("--sample", type=int, default=1, help="every Nth validate-accepted file (sorted by path)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files")
    parser.add_argument("--details", action="store_true", help="list every operation that is not callable")
    parser.add_argument("--json", help="write every finding to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if not Path(args.path).exists():
        print(f"corpus not found at {args.path}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    files = discover([args.path])
    reports = check_files(files, together=False)  # each file is its own deployment: the corpus is not one
    accepted = [f for f, r in zip(files, reports) if r.valid][:: args.sample]
    if args.limit is not None:
        accepted = accepted[: args.limit]
    tally = Tally()
    asyncio.run(run(accepted, tally, args.verbose))
    elapsed = time.perf_counter() - started

    share = 100 * tally.callable / tally.operations if tally.operations else 100.0
    print(
        f"corpus_callable: {len(files)} files, {sum(r.valid for r in reports)} accepted by validate; "
        f"looked at {tally.files} (every {args.sample}th{f', at most {args.limit}' if args.limit else ''}), "
        f"{tally.rest_files} with a REST exposure served"
    )
    print(f"callable operations:      {tally.callable} / {tally.operations} ({share:.2f} %)")
    print(f"invalid /openapi.json:    {len(tally.invalid_documents)} / {tally.documents}")
    print(f"accepted, refused by run: {len(tally.refused)}")
    print(f"tracebacks:               {len(tally.tracebacks)}")
    lost = len(tally.path_values_lost)
    print(
        f"path values in the upstream URL: {tally.path_values_in_url} / {tally.path_values} "
        f"(elsewhere in the request: {tally.path_values_elsewhere}, nowhere: {lost})"
    )
    print(f"time: {elapsed:.1f} s")
    if tally.failures:
        print("\nnot callable, by kind:")
        for kind, count in Counter(reason_kind(r) for _, _, r in tally.failures).most_common(15):
            print(f"  {count:5}  {kind}")
    for title, items in (("invalid /openapi.json", tally.invalid_documents), ("refused by run", tally.refused)):
        if items:
            print(f"\n{title}:")
            for file, why in items[:40]:
                print(f"  {file}: {why}")
    if tally.tracebacks:
        print("\ntracebacks:")
        for file, text in tally.tracebacks[:5]:
            print(f"  {file}:\n{text}")
    if args.details:
        print("\nnot callable:")
        for file, where, reason in tally.failures:
            print(f"  {file}: {where}: {reason}")
        for file, where, pname in tally.path_values_lost:
            print(f"  {file}: {where}: path value {pname!r} sent nowhere")
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in tally.__dict__.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

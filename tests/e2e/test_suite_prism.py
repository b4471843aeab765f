"""End to end: every Customer.io Track and Pipelines operation, through REST and MCP, against Prism.

For each Customer.io OpenAPI document, Prism mocks it with --errors (a request that violates the
document is answered 4xx/422, and logged as a violation) and `naftiko run` serves every capability
file in capabilities/ that consumes that API (found by the host of its consumes `baseUri`), each
consumed namespace pointed at Prism with --upstream, each exposure on its own free port.

The list of operations comes from `naftiko inspect --format json`, so a route or tool added to a
file is covered without editing this test. Each one is called once through REST and once through
MCP (streamable HTTP, raw JSON-RPC posts), with inputs taken from the OpenAPI document: the request
body's example(s) when one is valid, else a minimal body built from the schema's required fields
(checked locally against the schema first); path, query and header values from a small table of
plausible values or the parameter's own example. An operation we cannot build inputs for fails the
test by name.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_tools import REPO, node_tool
from processes import stop, wait_http
from support import SHARED, free_port

CAPABILITIES = REPO / "capabilities"
SPECS = SHARED / "upstreams" / "customer-io"
PROTOCOL = "2025-06-18"

SUITES = {
    # Track: the copy patched for Prism (it accepts /customers/{identifier}); Pipelines: verbatim.
    "track": "customer-io-track-api-openapi.prism.json",
    "pipelines": "customer-io-pipelines-api-openapi.json",
}

# Request bodies whose `oneOf` branches overlap, so that no instance matches exactly one of them
# and Prism answers 422 to anything, Customer.io's own examples included:
#   merge_customers primary/secondary: {"id"}/{"email"}/{"cio_id"} objects with nothing required;
#   metrics: the Email and Webhook branches accept the same metrics and fields;
#   Pipelines group: the Known/Anonymous User branches require nothing.
# The copy Prism serves reads them as `anyOf` (what the documentation means: "one of these
# shapes"); every other constraint of those bodies is still checked.
AMBIGUOUS_ONE_OF = {
    "track": {("post", "/api/v1/merge_customers"), ("post", "/api/v1/metrics")},
    "pipelines": {("post", "/group")},
}

# Values for path, query and header inputs, by name; then the parameter's own example.
PLAUSIBLE = {
    "identifier": "cust-42",
    "device_id": "device-7f3a9c",
    "segment_id": 7,
    "form_id": "contact-form",
    "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
    "id_type": "id",
}

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
VIOLATION = re.compile(r"did not pass the validation rules|violation", re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------------------------
# Example values from an OpenAPI 3.1 document


class Examples:
    """Valid example values for schemas of one OpenAPI 3.1 document (JSON Schema 2020-12)."""

    PER_NODE = 12

    def __init__(self, document: dict) -> None:
        from jsonschema import Draft202012Validator

        self.document = document
        self.root = Draft202012Validator(document)  # `$ref`s resolve against the whole document

    def valid(self, schema: dict, value: Any) -> bool:
        return self.root.evolve(schema=schema).is_valid(value)

    def resolve(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            target: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def body(self, request_body: dict) -> Any:
        """The first valid of: the media type's example(s), the schema's, a minimal built body."""
        content = self.resolve(request_body).get("content", {}).get("application/json")
        if content is None:
            raise LookupError("no application/json request body")
        schema = content.get("schema", {})
        given = [content["example"]] if "example" in content else []
        given += [self.resolve(example).get("value") for example in (content.get("examples") or {}).values()]
        for value in [*given, *islice(self.candidates(schema, 0), 400)]:
            if self.valid(schema, value):
                return value
        raise LookupError("neither its examples nor a body built from its required fields is valid")

    def parameter(self, parameter: dict) -> Any:
        schema = parameter.get("schema", {})
        given = [parameter["example"]] if "example" in parameter else []
        given += [self.resolve(example).get("value") for example in (parameter.get("examples") or {}).values()]
        for value in [*given, *islice(self.candidates(schema, 0), 50)]:
            if self.valid(schema, value):
                return value
        raise LookupError

    def candidates(self, schema: Any, depth: int) -> Iterator[Any]:
        """Values for `schema`, most plausible first: its examples, enums, then built ones."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or depth > 10:
            return
        if "const" in schema:
            yield schema["const"]
            return
        given = [schema["example"]] if "example" in schema else []
        given += schema["examples"] if isinstance(schema.get("examples"), list) else []
        given += schema.get("enum", []) + ([schema["default"]] if "default" in schema else [])
        yield from (value for value in given if self.valid(schema, value))
        if "enum" in schema:
            return
        rest = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf", "example", "examples", "default")}
        if "oneOf" in schema or "anyOf" in schema:
            for branch in schema.get("oneOf") or schema.get("anyOf"):
                narrowed = {**rest, "allOf": [branch, *rest.get("allOf", [])]}
                for value in islice(self.candidates(narrowed, depth + 1), self.PER_NODE):
                    if self.valid(schema, value):
                        yield value
            return
        if "allOf" in schema:
            parts = [{k: v for k, v in rest.items() if k != "allOf"}, *rest["allOf"]]
            yield from self._combine([list(islice(self.candidates(part, depth + 1), self.PER_NODE)) for part in parts])
            return
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None and "properties" not in schema and "required" not in schema:
            yield {}  # unconstrained; a typed sibling in an allOf takes precedence when merged
            return
        if kind in (None, "object"):
            properties = schema.get("properties", {})
            required = list(schema.get("required", []))
            if not required and schema.get("minProperties", 0) > 0 and properties:
                required = [next(iter(properties))]
            columns = [
                [{name: value} for value in islice(self.candidates(properties.get(name, {}), depth + 1), self.PER_NODE)]
                for name in required
            ]
            yield from self._combine(columns)
        elif kind == "array":
            for item in islice(self.candidates(schema.get("items", {}), depth + 1), self.PER_NODE):
                yield [item] * max(schema.get("minItems", 1), 1)
        elif kind == "string":
            formats = {
                "email": "ada@example.com",
                "date-time": "2024-01-15T10:00:00Z",
                "date": "2024-01-15",
                "uri": "https://example.com/",
                "uuid": "0b0c6f3e-7c1e-4c39-8d7e-2f9f5b1d2a10",
            }
            yield formats.get(schema.get("format"), "example".ljust(schema.get("minLength", 0), "x"))
        elif kind == "integer":
            yield int(schema.get("minimum", 1))
        elif kind == "number":
            yield schema.get("minimum", 1.5)
        elif kind == "boolean":
            yield True
        else:
            yield None

    @staticmethod
    def _combine(columns: list[list[Any]]) -> Iterator[Any]:
        """One value per column, merged (objects by key): all firsts, then one column varied at a time."""
        if any(not column for column in columns):
            return

        def merged(choice: list[Any]) -> Any:
            out: Any = None
            for value in choice:
                out = {**out, **value} if isinstance(out, dict) and isinstance(value, dict) else value
            return {} if out is None else out

        base = [column[0] for column in columns]
        yield merged(base)
        for index, column in enumerate(columns):
            for alternative in column[1:]:
                yield merged([*base[:index], alternative, *base[index + 1 :]])


def relax_one_of(schema: Any) -> Any:
    """The inline schema with every `oneOf` read as `anyOf` (`$ref`s are left alone)."""
    if isinstance(schema, dict):
        return {("anyOf" if key == "oneOf" else key): relax_one_of(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [relax_one_of(value) for value in schema]
    return schema


# --------------------------------------------------------------------------------------------
# The OpenAPI document, the capability files, the operations to call


@dataclass
class Consumed:
    namespace: str
    base_uri: str
    upstream_prefix: str  # the part of baseUri's path that is not in the document's server URL
    operations: dict[str, tuple[str, str]]  # operation name -> (method, path relative to the baseUri)


@dataclass
class Call:
    """One REST route or MCP tool, with the OpenAPI operation it reaches and the inputs to send."""

    kind: str  # "rest" | "mcp"
    name: str  # MCP tool name, or REST operation name
    label: str
    file: str
    namespace: str
    target: tuple[str, str]  # (method, OpenAPI path template)
    upstream_path: str = ""  # the path Prism should see (values substituted)
    path: str = ""  # REST route path
    method: str = ""  # REST method
    arguments: dict[str, Any] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def document_servers(document: dict) -> list[urllib.parse.SplitResult]:
    servers = list(document.get("servers", []))
    for item in document["paths"].values():
        servers += item.get("servers", [])
        servers += [server for method, op in item.items() if method in METHODS for server in op.get("servers", [])]
    return [urllib.parse.urlsplit(server["url"]) for server in servers]


def consumed_namespaces(capability: dict, servers: list[urllib.parse.SplitResult]) -> list[Consumed]:
    found = []
    for consumes in capability.get("capability", {}).get("consumes", []):
        base = urllib.parse.urlsplit(consumes.get("baseUri", ""))
        matches = [
            s
            for s in servers
            if (s.scheme, s.netloc) == (base.scheme, base.netloc) and base.path.startswith(s.path.rstrip("/"))
        ]
        if not matches:
            continue
        server_path = max((s.path.rstrip("/") for s in matches), key=len)
        operations = {
            op["name"]: (op["method"].lower(), resource["path"])
            for resource in consumes.get("resources", [])
            for op in resource.get("operations", [])
        }
        found.append(
            Consumed(consumes["namespace"], consumes["baseUri"], base.path.rstrip("/")[len(server_path) :], operations)
        )
    return found


def openapi_operation(document: dict, method: str, path: str) -> str | None:
    """The document's path template matching a concrete template like /api/v1/customers/{identifier}."""
    shape = re.sub(r"\{+[^}]+\}+", "{}", path)
    for template, item in document["paths"].items():
        if re.sub(r"\{[^}]+\}", "{}", template) == shape and method in item:
            return template
    return None


def inspect(files: list[Path]) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "inspect", "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def build_calls(document: dict, examples: Examples, files: list[Path]) -> tuple[list[Call], dict]:
    """Every REST route and MCP tool of `files`, with inputs; and the run configuration."""
    servers = document_servers(document)
    calls: list[Call] = []
    consumed: dict[str, Consumed] = {}
    exposures: dict[str, str] = {}  # namespace -> "rest" | "mcp"
    env: dict[str, str] = {}
    auth: dict[str, dict] = {}
    for path in files:
        capability = yaml.safe_load(path.read_text())
        for namespace in consumed_namespaces(capability, servers):
            consumed[namespace.namespace] = namespace
        for bind in capability.get("binds", []):
            if not bind.get("location"):
                env.update(
                    {
                        variable: f"test-{variable.lower().replace('_', '-')}"
                        for variable in bind.get("keys", {}).values()
                    }
                )
        for exposure in capability.get("capability", {}).get("exposes", []):
            exposures[exposure["namespace"]] = exposure["type"]
            if "authentication" in exposure:
                auth[exposure["namespace"]] = exposure["authentication"]
    for entry in inspect(files):
        file = Path(entry["file"]).name
        for route in entry["rest"]:
            calls.append(
                Call(
                    "rest",
                    route.get("name", ""),
                    f"REST {route['method']} {route['path']} ({file})",
                    file,
                    route["namespace"],
                    ("", ""),
                    path=route["path"],
                    method=route["method"],
                    locations={i["name"]: i["location"] for i in route["inputs"]},
                )
            )
            fill(calls[-1], route, consumed, document, examples)
        for tool in entry["tools"]:
            calls.append(
                Call("mcp", tool["name"], f"MCP tool {tool['name']} ({file})", file, tool["namespace"], ("", ""))
            )
            fill(calls[-1], tool, consumed, document, examples)
    return calls, {"consumed": consumed, "exposures": exposures, "env": env, "auth": auth}


def fill(call: Call, operation: dict, consumed: dict[str, Consumed], document: dict, examples: Examples) -> None:
    """Find the OpenAPI operation `operation` reaches and the values of its inputs."""
    namespace, _, name = operation["call"].partition(".")
    if namespace not in consumed or name not in consumed[namespace].operations:
        call.problems.append(f"calls {operation['call']}, not an operation of this API")
        return
    method, relative = consumed[namespace].operations[name]
    upstream = consumed[namespace].upstream_prefix + relative
    template = openapi_operation(document, method, upstream)
    if template is None:
        call.problems.append(f"{method.upper()} {upstream} is not in the OpenAPI document")
        return
    call.target = (method, template)
    item = document["paths"][template]
    op = item[method]
    parameters = {}
    for declared in [*item.get("parameters", []), *op.get("parameters", [])]:
        parameter = examples.resolve(declared)
        parameters[parameter["name"].lower()] = parameter
    for spec in operation["inputs"]:
        input_name = spec["name"]
        if input_name == "body" and spec.get("location", "body") == "body":  # tool arguments have no location
            if "requestBody" not in op:
                if spec["required"]:
                    call.problems.append("requires a body, but the OpenAPI operation takes none")
                continue
            try:
                call.arguments["body"] = examples.body(op["requestBody"])
            except LookupError as error:
                call.problems.append(f"no example body: {error}")
            continue
        parameter = parameters.get(input_name.lower())
        if input_name in PLAUSIBLE:
            value = PLAUSIBLE[input_name]
        elif parameter is not None:
            try:
                value = examples.parameter(parameter)
            except LookupError:
                value = None
        else:
            value = None
        if value is None:
            if spec["required"]:
                call.problems.append(f"no example value for the required input {input_name!r}")
            continue
        if spec.get("type") == "integer" and isinstance(value, str) and value.isdigit():
            value = int(value)
        elif spec.get("type") == "string" and not isinstance(value, str):
            value = str(value)
        call.arguments[input_name] = value
    # The path Prism will see: the OpenAPI template with the path values sent.
    call.upstream_path = re.sub(
        r"\{([^}]+)\}",
        lambda match: urllib.parse.quote(
            str(call.arguments.get(match.group(1), PLAUSIBLE.get(match.group(1), ""))), safe=""
        ),
        template,
    )


# --------------------------------------------------------------------------------------------
# Processes and clients


@contextmanager
def serving(
    command: list[str], ready_urls: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A subprocess logging to a file (a pipe nobody reads would fill up and stall it)."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        try:
            try:
                for url in ready_urls:
                    wait_http(url, process, timeout=60)
            except (RuntimeError, TimeoutError) as error:
                raise RuntimeError(f"{error}\n{command[:4]} log:\n{log.read_text()[-4000:]}") from None
            yield process
        finally:
            stop(process)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class McpSession:
    """Streamable HTTP MCP with raw JSON-RPC posts: answers may be JSON or one SSE stream."""

    def __init__(self, url: str) -> None:
        self.url, self.session, self.next_id = url, None, 0
        answer = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "test-suite-prism", "version": "1"},
            },
        )
        assert answer.get("result", {}).get("protocolVersion") == PROTOCOL, answer
        self.notify("notifications/initialized")

    def _post(self, payload: dict) -> tuple[int, dict, bytes]:
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROTOCOL}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
        status, response_headers, body = http("POST", self.url, payload, headers)
        session = {k.lower(): v for k, v in response_headers.items()}.get("mcp-session-id")
        self.session = self.session or session
        return status, response_headers, body

    def notify(self, method: str) -> None:
        status, _, body = self._post({"jsonrpc": "2.0", "method": method})
        assert status in (200, 202), (method, status, body)

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        status, headers, body = self._post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert status == 200, (method, status, body)
        kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if kind.startswith("text/event-stream"):
            for line in body.decode().splitlines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("id") == self.next_id:
                        return message
            raise AssertionError(f"no answer to {method} in the event stream: {body[:2000]!r}")
        return json.loads(body)


def basic_or_bearer(authentication: dict, env: dict[str, str]) -> dict[str, str]:
    def render(text: str) -> str:
        return re.sub(
            r"\{\{\s*(?:env\.)?([A-Za-z0-9_]+)\s*\}\}", lambda m: env.get(m.group(1), m.group(0)), str(text or "")
        )

    if authentication["type"] == "basic":
        token = base64.b64encode(
            f"{render(authentication['username'])}:{render(authentication['password'])}".encode()
        ).decode()
        return {"Authorization": f"Basic {token}"}
    if authentication["type"] == "bearer":
        return {"Authorization": f"Bearer {render(authentication['token'])}"}
    raise AssertionError(f"no client for exposure authentication {authentication['type']!r}")


def call_rest(call: Call, port: int, headers: dict[str, str]) -> tuple[int, bytes]:
    """The route called with its inputs where `naftiko inspect` says they go."""
    path, query, headers = call.path, {}, dict(headers)
    for name, value in call.arguments.items():
        location = call.locations.get(name)
        if location == "path":
            quoted = urllib.parse.quote(str(value), safe="")
            path = path.replace("{{" + name + "}}", quoted).replace("{" + name + "}", quoted)
        elif location == "query":
            query[name] = value
        elif location == "header":
            headers[name] = str(value)
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    status, _, body = http(call.method, url, call.arguments.get("body"), headers)
    return status, body


def prism_requests(log: str, probe_path: str) -> list[tuple[str, str, str]]:
    """(method, path, log block) for each request Prism received after the readiness probe(s)."""
    log = ANSI.sub("", log)
    starts = [m for m in re.finditer(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received", log)]
    blocks = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(log)
        blocks.append((match.group(1).lower(), match.group(2).split("?")[0], log[match.start() : end]))
    while blocks and blocks[0][1] == probe_path:
        blocks.pop(0)
    return blocks


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_operation_through_rest_and_mcp_passes_prism(suite: str, tmp_path: Path) -> None:
    prism = node_tool("prism")
    source = SPECS / SUITES[suite]
    if not source.exists():
        pytest.skip(f"{source} is not available (the ../shared reference folder is missing)")
    started_at = time.monotonic()

    document = json.loads(source.read_text())
    for method, template in AMBIGUOUS_ONE_OF[suite]:
        body = document["paths"][template][method]["requestBody"]["content"]["application/json"]
        body["schema"] = relax_one_of(Examples(document).resolve(body["schema"]))
    spec = tmp_path / source.name
    spec.write_text(json.dumps(document))
    examples = Examples(document)

    # The capability files consuming this API: a consumes baseUri on one of the document's servers.
    servers = document_servers(document)
    files = sorted(
        path for path in CAPABILITIES.glob("*.yaml") if consumed_namespaces(yaml.safe_load(path.read_text()), servers)
    )
    assert files, f"no file in {CAPABILITIES} consumes {source.name}"
    if suite == "track":
        assert {"track-customers.yaml", "customer-io-gateway.yaml"} <= {f.name for f in files}, files

    calls, config = build_calls(document, examples, files)
    unusable = [f"{call.label}: {problem}" for call in calls for problem in call.problems]
    assert not unusable, "operations without example inputs:\n" + "\n".join(unusable)

    # Every operation of the document is reached through REST and through MCP.
    operations = {(method, path) for path, item in document["paths"].items() for method in item if method in METHODS}
    for kind in ("rest", "mcp"):
        missing = operations - {call.target for call in calls if call.kind == kind}
        assert not missing, f"{suite} operations no {kind} operation reaches: {sorted(missing)}"

    prism_port = free_port()
    ports = {namespace: free_port() for namespace in config["exposures"]}
    command = [sys.executable, "-m", "naftiko.cli", "run", *map(str, files)]
    for namespace in config["consumed"].values():
        command += ["--upstream", f"{namespace.namespace}=http://127.0.0.1:{prism_port}{namespace.upstream_prefix}"]
    for namespace, port in ports.items():
        command += ["--port", f"{namespace}={port}"]
    probe_path = "/__ready"
    prism_log, naftiko_log = tmp_path / "prism.log", tmp_path / "naftiko.log"
    failures: list[str] = []
    with serving(
        [prism, "mock", "--errors", "-h", "127.0.0.1", "-p", str(prism_port), str(spec)],
        [f"http://127.0.0.1:{prism_port}{probe_path}"],
        prism_log,
    ) as mock:
        with serving(
            command, [f"http://127.0.0.1:{port}/health" for port in ports.values()], naftiko_log, env=config["env"]
        ):
            sessions: dict[str, McpSession] = {}
            for call in calls:
                port = ports[call.namespace]
                if call.kind == "rest":
                    auth = config["auth"].get(call.namespace)
                    status, body = call_rest(call, port, basic_or_bearer(auth, config["env"]) if auth else {})
                    if not 200 <= status < 300:
                        failures.append(f"{call.label}: HTTP {status} {body[:500]!r}")
                else:
                    session = sessions.get(call.namespace) or sessions.setdefault(
                        call.namespace, McpSession(f"http://127.0.0.1:{port}/mcp")
                    )
                    answer = session.request("tools/call", {"name": call.name, "arguments": call.arguments})
                    if "error" in answer or answer.get("result", {}).get("isError") is not False:
                        failures.append(f"{call.label}: {json.dumps(answer)[:500]}")
        mock.terminate()
        mock.wait(timeout=15)
    log = prism_log.read_text()
    received = prism_requests(log, probe_path)

    assert not failures, (
        f"{len(failures)} of {len(calls)} calls failed:\n"
        + "\n".join(failures)
        + "\n--- naftiko log tail:\n"
        + naftiko_log.read_text()[-3000:]
    )
    violations = [block for _, _, block in received if VIOLATION.search(block)]
    assert not violations, "Prism reported violations:\n" + "\n".join(violations)[-6000:]
    unchecked = [block for _, _, block in received if "passed the validation rules" not in block]
    assert not unchecked, "Prism did not validate:\n" + "\n".join(unchecked)[-6000:]
    seen = sorted((method, path) for method, path, _ in received)
    expected = sorted((call.target[0], call.upstream_path) for call in calls)
    assert seen == expected, f"Prism saw {seen}\nexpected {expected}"
    elapsed = time.monotonic() - started_at
    print(f"{suite}: {len(calls)} calls ({len(files)} files, {len(operations)} operations) in {elapsed:.1f} s")

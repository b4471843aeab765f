"""`naftiko run --gateway` over a folder of real corpus files that collide (the same ports, the
same routes, the same tool names): every exposure served under its namespace, REST at /NS/…,
MCP at /mcp/NS and /mcp, called with real clients (aiohttp, the official `mcp` SDK)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from gateway_corpus import copy_flat, corpus_files, exposure_namespaces, port_flags, request_for, value_of
from mcp import Client

from run_process import run_to_exit
from support import eventually, free_port, shared_path, status

FILES = 36
VALID_TOOL_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


UNSERVABLE = """naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: https://api.example.com
      resources:
        - name: things
          path: /things
          operations:
            - name: list
              method: GET
  exposes:
    - type: mcp
      namespace: prompt-mcp
      port: 9090
      tools:
        - name: list
          description: List things
          call: api.list
      prompts:
        - name: hello
          description: Say hello
          location: ./missing-prompt.md
"""


LONG_NAMESPACE = "long-namespace-" + "n" * 50 + "-mcp"
LONG_TOOL = "a-very-long-tool-name-" + "t" * 60  # with its namespace: 149 characters, over MCP's 128
LONG = f"""naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: long-api
      baseUri: https://api.example.com
      resources:
        - name: things
          path: /things
          operations:
            - name: list
              method: GET
  exposes:
    - type: mcp
      namespace: {LONG_NAMESPACE}
      port: 9090
      tools:
        - name: {LONG_TOOL}
          description: List things
          call: long-api.list
"""


@dataclass
class Gateway:
    process: subprocess.Popen
    log: Any
    folder: Path
    files: list[Path]
    rest: str
    mcp: str

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


def start(folder: Path, flags: list[str], rest_port: int, log: Any) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "naftiko.cli", "run", "--gateway", "--dry-run", *flags, str(folder)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while status(f"http://127.0.0.1:{rest_port}/health") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            raise AssertionError(f"the gateway did not start:\n{log.read()[-3000:]}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def corpus() -> list[Path]:
    files = corpus_files(shared_path("corpus", "alpha2"), FILES)
    assert len(files) == FILES
    return files


@pytest.fixture(scope="module")
def gateway(corpus: list[Path]) -> Iterator[Gateway]:
    with tempfile.TemporaryDirectory(prefix="gateway-") as tmp, tempfile.TemporaryFile("w+") as log:
        folder = Path(tmp)
        copies = copy_flat(corpus, folder)
        (folder / "zz-broken.yaml").write_text("naftiko: 1.0.0-alpha2\ncapability:\n  exposes: [\n")
        (folder / "zz-unservable.yaml").write_text(UNSERVABLE)  # valid, but its prompt file is missing
        (folder / "zz-long.yaml").write_text(LONG)
        rest_port, mcp_port = free_port(), free_port()
        flags = [*port_flags(copies, rest_port, mcp_port), "--port", f"{LONG_NAMESPACE}={mcp_port}"]
        process = start(folder, flags, rest_port, log)
        try:
            yield Gateway(process, log, folder, copies, f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{mcp_port}")
        finally:
            stop(process)


def test_the_folder_collides_without_the_gateway(corpus: list[Path]) -> None:
    """The point of the gateway: these files, served together as they are, refuse to start."""
    routes = Counter()
    tools = Counter()
    for path in corpus:
        capability = yaml.safe_load(path.read_text())["capability"]
        for exposure in capability["exposes"]:
            if exposure["type"] == "rest":
                for resource in exposure.get("resources") or []:
                    for operation in resource.get("operations") or []:
                        routes[(exposure.get("port"), operation.get("method"), resource.get("path"))] += 1
            else:
                tools.update((exposure.get("port"), t["name"]) for t in exposure.get("tools") or [])
    assert max(routes.values()) > 1 or max(tools.values()) > 1
    assert len({n for p in corpus for n in exposure_namespaces(p)}) == sum(len(exposure_namespaces(p)) for p in corpus)


def test_a_broken_file_is_reported_with_its_place_and_the_others_serve(gateway: Gateway) -> None:
    log = gateway.output()
    assert re.search(r"zz-broken\.yaml:\d+:\d+: error: ", log), log[-2000:]
    assert re.search(r"zz-unservable\.yaml:14:7: error: MCP prompt 'hello': cannot read ", log), log[-2000:]
    assert "Traceback" not in log
    assert f"{FILES + 3} files loaded" in log and f"{FILES + 1} served, 2 not served" in log


async def test_every_rest_operation_answers_under_its_prefix_only(gateway: Gateway) -> None:
    calls = 0
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.rest + "/openapi.json") as response:
            merged = await response.json()
        for path in gateway.files:
            for namespace, kind in exposure_namespaces(path).items():
                if kind != "rest":
                    continue
                async with session.get(f"{gateway.rest}/{namespace}/openapi.json") as response:
                    assert response.status == 200
                    document = await response.json()
                assert document["openapi"].startswith("3.1")
                assert document["servers"][0]["url"] == f"{gateway.rest}/{namespace}"
                assert {f"/{namespace}{p}" for p in document["paths"]} <= set(merged["paths"])
                for template, item in document["paths"].items():
                    for method, operation in item.items():
                        url, headers, body = request_for(template, operation)
                        async with session.request(
                            method.upper(), f"{gateway.rest}/{namespace}{url}", headers=headers, json=body
                        ) as response:
                            answer = await response.json(content_type=None)
                            assert response.status == 200, (path.name, method, template, answer)
                        assert answer["dryRun"] is True
                        calls += 1
                first = next(iter(document["paths"]))
                async with session.get(gateway.rest + first.replace("{", "x").replace("}", "")) as response:
                    assert response.status == 404  # the unprefixed path is not served
    assert calls >= 100
    assert merged["servers"][0]["url"] == gateway.rest
    assert all(p.split("/")[1] in {n for f in gateway.files for n in exposure_namespaces(f)} for p in merged["paths"])


async def test_health_and_metrics_stay_at_the_root(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        for base in (gateway.rest, gateway.mcp):
            async with session.get(base + "/health") as response:
                assert response.status == 200
            async with session.get(base + "/metrics") as response:
                assert response.status == 200 and "naftiko_requests_total" in await response.text()


def _tools_of(path: Path) -> tuple[str, list[str]]:
    for exposure in yaml.safe_load(path.read_text())["capability"]["exposes"]:
        if exposure["type"] == "mcp":
            return exposure["namespace"], [t["name"] for t in exposure.get("tools") or []]
    raise AssertionError(f"{path} has no MCP exposure")


async def test_each_namespace_is_a_complete_mcp_server_with_its_own_tool_names(gateway: Gateway) -> None:
    for path in gateway.files[:6]:
        namespace, declared = _tools_of(path)
        async with Client(f"{gateway.mcp}/mcp/{namespace}", mode="legacy") as client:
            assert client.server_info is not None and client.server_info.name == namespace
            tools = (await client.list_tools()).tools
            assert [t.name for t in tools] == declared
            tool = tools[0]
            result = await client.call_tool(tool.name, value_of(tool.input_schema))
            assert not result.is_error, result
            assert result.structured_content is not None and result.structured_content.get("url")
        async with Client(f"{gateway.mcp}/mcp/{namespace}") as client:  # the newest protocol, stateless
            assert [t.name for t in (await client.list_tools()).tools] == declared


async def test_the_union_lists_every_tool_as_namespace_dot_tool_paginated_and_calls_them(gateway: Gateway) -> None:
    expected = {f"{ns}.{name}" for ns, names in map(_tools_of, gateway.files) for name in names}
    listed: list[str] = []
    pages = 0
    async with Client(f"{gateway.mcp}/mcp", mode="legacy") as client:
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed += [t.name for t in page.tools]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages > 1
        assert all(VALID_TOOL_NAME.fullmatch(name) for name in listed)
        assert len(listed) == len(set(listed)) == len(expected) + 1
        plain = [n for n in expected if VALID_TOOL_NAME.fullmatch(n)]
        assert set(plain) <= set(listed)  # valid names are kept as they are
        (long,) = [n for n in listed if n.startswith(LONG_NAMESPACE)]
        assert len(long) == 128 and long.startswith(f"{LONG_NAMESPACE}.a-very-long-tool-name-ttt")
        result = await client.call_tool(long, {})
        assert not result.is_error and result.structured_content["url"] == "https://api.example.com/things"
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in list(tools)[:5]:
            result = await client.call_tool(name, value_of(tools[name].input_schema))
            assert not result.is_error, (name, result)


async def test_an_unknown_namespace_is_404_and_a_stateless_request_works_on_a_member(gateway: Gateway) -> None:
    namespace, declared = _tools_of(gateway.files[0])
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": ENVELOPE}}
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list", "Accept": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{gateway.mcp}/mcp/no-such-namespace", json=message, headers=headers) as response:
            assert response.status == 404
        async with session.post(f"{gateway.mcp}/mcp/{namespace}", json=message, headers=headers) as response:
            reply = await response.json()
        assert [t["name"] for t in reply["result"]["tools"]] == declared
        async with session.get(f"{gateway.rest}/no-such-namespace/v1") as response:
            assert response.status == 404


def test_inspect_gateway_shows_the_prefixed_routes_and_the_tool_names(gateway: Gateway) -> None:
    namespace, declared = _tools_of(gateway.files[0])
    result = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "inspect", "--gateway", "--format", "json", str(gateway.folder)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # the broken file is not served
    found = json.loads(result.stdout)
    assert any("zz-broken.yaml" in problem for problem in found["not_served"])
    assert any("zz-unservable.yaml:14:7: " in problem for problem in found["not_served"])
    mine = [t for t in found["tools"] if t["namespace"] == namespace]
    assert [t["name"] for t in mine] == declared
    assert [t["union"] for t in mine] == [f"{namespace}.{name}" for name in declared]
    assert all(t["endpoint"] == f"/mcp/{namespace}" for t in mine)
    rest_namespaces = {n for f in gateway.files for n, k in exposure_namespaces(f).items() if k == "rest"}
    assert {r["path"].split("/")[1] for r in found["rest"]} == rest_namespaces
    text = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "inspect", "--gateway", str(gateway.folder)],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert f"/mcp/{namespace}  {declared[0]}  /mcp: {namespace}.{declared[0]}" in text


def test_the_same_namespace_in_two_files_stops_the_gateway_naming_both(corpus: list[Path], tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_bytes(corpus[0].read_bytes())
    second.write_bytes(corpus[0].read_bytes())
    code, stderr = run_to_exit("--gateway", "--dry-run", str(tmp_path))
    assert code == 2
    assert str(first) in stderr and str(second) in stderr and "exposure namespace" in stderr
    assert "Traceback" not in stderr


def test_without_paths_gateway_is_a_usage_error() -> None:
    code, stderr = run_to_exit("--gateway")
    assert code == 2 and "--gateway" in stderr


async def test_one_file_reloads_in_a_large_folder_and_the_others_keep_answering(tmp_path: Path) -> None:
    files = corpus_files(shared_path("corpus", "alpha2"), 500)
    copies = copy_flat(files, tmp_path)
    rest_port, mcp_port = free_port(), free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = start(tmp_path, port_flags(copies, rest_port, mcp_port), rest_port, log)
        rest = f"http://127.0.0.1:{rest_port}"
        try:
            kept = [n for n, k in exposure_namespaces(copies[-1]).items() if k == "rest"][0]
            original = yaml.safe_load(copies[0].read_text())
            rest_name = next(e["namespace"] for e in original["capability"]["exposes"] if e["type"] == "rest")
            added = tmp_path / "zz-added.yaml"
            added.write_text(variant(original, "zz-", rest_port, mcp_port))
            assert eventually(lambda: status(f"{rest}/zz-{rest_name}/openapi.json") == 200)
            assert status(f"{rest}/{kept}/openapi.json") == 200
            mcp_name, tools = _tools_of(copies[0])
            mcp = f"http://127.0.0.1:{mcp_port}/mcp"
            async with Client(f"{mcp}/zz-{mcp_name}") as client:  # the new file's own MCP server
                assert [t.name for t in (await client.list_tools()).tools] == tools
            async with Client(mcp) as client:  # and its tools in the union, beside the others'
                listed = await _all_tools(client)
            assert {f"zz-{mcp_name}.{t}" for t in tools} | {f"{mcp_name}.{t}" for t in tools} <= listed
            added.write_text(variant(original, "zy-", rest_port, mcp_port))
            assert eventually(lambda: status(f"{rest}/zy-{rest_name}/openapi.json") == 200)
            assert status(f"{rest}/zz-{rest_name}/openapi.json") == 404
            added.write_text(variant(original, "", rest_port, mcp_port))  # namespaces another file serves
            assert eventually(lambda: "not served: exposure namespace" in _read(log))
            assert status(f"{rest}/{rest_name}/openapi.json") == 200  # the other file keeps them
            assert status(f"{rest}/zy-{rest_name}/openapi.json") == 200  # and the refused edit's previous version
            added.unlink()
            assert eventually(lambda: status(f"{rest}/zy-{rest_name}/openapi.json") == 404)
            assert status(f"{rest}/{rest_name}/openapi.json") == 200
            reloads = [line for line in _read(log).splitlines() if line.startswith("reloaded: ")]
            assert reloads and all(line == f"reloaded: {added}" for line in reloads), reloads
        finally:
            stop(process)


async def _all_tools(client: Client) -> set[str]:
    names: set[str] = set()
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        names |= {t.name for t in page.tools}
        cursor = page.next_cursor
        if cursor is None:
            return names


def variant(document: dict[str, Any], prefix: str, rest_port: int, mcp_port: int) -> str:
    """A copy of a capability file with its exposure namespaces prefixed and its ports ours."""
    document = json.loads(json.dumps(document))
    for exposure in document["capability"]["exposes"]:
        exposure["namespace"] = prefix + exposure["namespace"]
        exposure["port"] = rest_port if exposure["type"] == "rest" else mcp_port
    return yaml.safe_dump(document, sort_keys=False)


def _read(log: Any) -> str:
    log.flush()
    log.seek(0)
    return log.read()

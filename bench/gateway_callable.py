"""Issue #21's "done when": a folder of the first N valid corpus files served by ONE
`naftiko run --gateway --dry-run`, and the share of REST operations and MCP tools callable under
the prefixes.

REST: for every namespace, `/NS/openapi.json` is read and every operation (or every k-th with
--sample k) is called under `/NS` with values built from that document alone (the same values
as bench/corpus_callable.py); callable = 200. MCP: every tool (or every k-th) of `/mcp/NS` is
called there with arguments built from its input schema, and the same tool through the union
`/mcp` under its `NS.TOOL` name; callable = a result that is not `isError`.

Run:  python bench/gateway_callable.py [--files 500] [--sample 1] [--details]
Nothing is asserted: it prints the figures (tests/integration/test_gateway_mode.py holds the bars).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from corpus_callable import Tally, Values, call_operation, reason_kind
from gateway_scale import CORPUS, HOST, answers, copy_flat, corpus_files, wait_for

_SERVING = re.compile(r"serving (http://\S+) \(rest gateway")
MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


async def rest_figures(bases: list[str], sample: int, session: aiohttp.ClientSession) -> Tally:
    tally = Tally()
    seen = 0
    for base in bases:
        async with session.get(base + "/openapi.json") as response:
            merged = await response.json()
        for namespace in sorted({p.split("/")[1] for p in merged["paths"]}):
            async with session.get(f"{base}/{namespace}/openapi.json") as response:
                document = await response.json()
            tally.documents += 1
            for template, item in document["paths"].items():
                for method, operation in item.items():
                    seen += 1
                    if seen % sample:
                        continue
                    tally.operations += 1
                    await call_operation(
                        namespace, f"{base}/{namespace}", template, method.upper(), operation, tally, session
                    )
    return tally


async def post(session: aiohttp.ClientSession, url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": ENVELOPE}}
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method, "Accept": "application/json"}
    if "name" in params:
        headers["Mcp-Name"] = params["name"]
    async with session.post(url, json=message, headers=headers) as response:
        return await response.json(content_type=None)


async def list_tools(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor = None
    while True:
        reply = await post(session, url, "tools/list", {"cursor": cursor} if cursor else {})
        tools += reply["result"]["tools"]
        cursor = reply["result"].get("nextCursor")
        if cursor is None:
            return tools


async def mcp_figures(tools: list[dict[str, Any]], sample: int, session: aiohttp.ClientSession) -> dict[str, Any]:
    """`tools`: from `naftiko inspect --gateway --format json` (endpoint, name, union name, port)."""
    figures: dict[str, Any] = {"tools": 0, "member_ok": 0, "union_ok": 0, "failures": []}
    schemas: dict[tuple[int, str], dict[str, Any]] = {}
    for index, tool in enumerate(tools):
        if index % sample:
            continue
        base = f"http://{HOST}:{tool['port']}"
        if (tool["port"], tool["endpoint"]) not in schemas:
            listed = await list_tools(session, base + tool["endpoint"])
            schemas.update({(tool["port"], tool["endpoint"] + "/" + t["name"]): t for t in listed})
            schemas[(tool["port"], tool["endpoint"])] = {}
        arguments = Values().of(schemas[(tool["port"], tool["endpoint"] + "/" + tool["name"])]["inputSchema"])
        figures["tools"] += 1
        for key, url, called in (
            ("member_ok", base + tool["endpoint"], tool["name"]),
            ("union_ok", base + "/mcp", tool["union"]),
        ):
            reply = await post(session, url, "tools/call", {"name": called, "arguments": arguments})
            result = reply.get("result")
            if isinstance(result, dict) and result.get("isError") is False:
                figures[key] += 1
            else:
                figures["failures"].append((url, called, json.dumps(reply)[:200]))
    return figures


async def measure(bases: list[str], tools: list[dict[str, Any]], sample: int) -> tuple[Tally, dict[str, Any]]:
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Host": "localhost"}, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        return await rest_figures(bases, sample, session), await mcp_figures(tools, sample, session)


def _serving(log: Any) -> list[str]:
    """The REST ports' URLs the gateway's log names."""
    log.seek(0)
    return _SERVING.findall(log.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--sample", type=int, default=1, help="call every k-th operation and tool")
    parser.add_argument("--details", action="store_true", help="list what is not callable")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    files = corpus_files(CORPUS, args.files)
    with tempfile.TemporaryDirectory(prefix="gateway-callable-") as tmp, tempfile.TemporaryFile("w+") as log:
        copy_flat(files, Path(tmp))
        inspect = [sys.executable, "-m", "naftiko.cli", "inspect", "--gateway", "--format", "json", tmp]
        tools = json.loads(subprocess.run(inspect, capture_output=True, text=True, check=False).stdout)["tools"]
        command = [sys.executable, "-m", "naftiko.cli", "run", "--gateway", "--dry-run", "--host", HOST, tmp]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            ready = wait_for(lambda: _serving(log) and answers(_serving(log)[0] + "/health") == 200, 300)
            if ready is None:
                log.seek(0)
                print(f"the gateway did not get ready:\n{log.read()[-3000:]}", file=sys.stderr)
                return 1
            tally, mcp = asyncio.run(measure(_serving(log), tools, args.sample))
        finally:
            process.terminate()
            process.wait(30)
    rest_share = 100 * tally.callable / max(tally.operations, 1)
    member_share = 100 * mcp["member_ok"] / max(mcp["tools"], 1)
    union_share = 100 * mcp["union_ok"] / max(mcp["tools"], 1)
    print(f"gateway_callable: {len(files)} files, one gateway, every {args.sample} operation/tool")
    print(f"REST operations callable under /NS:  {tally.callable} / {tally.operations} ({rest_share:.2f} %)")
    print(f"MCP tools callable at /mcp/NS:       {mcp['member_ok']} / {mcp['tools']} ({member_share:.2f} %)")
    print(f"MCP tools callable at /mcp (NS.TOOL): {mcp['union_ok']} / {mcp['tools']} ({union_share:.2f} %)")
    if tally.failures:
        print("\nREST not callable, by kind:")
        for kind, count in Counter(reason_kind(r) for _, _, r in tally.failures).most_common(10):
            print(f"  {count:5}  {kind}")
    if args.details:
        for failure in tally.failures:
            print("  REST", *failure)
        for failure in mcp["failures"]:
            print("  MCP", *failure)
    return 0


if __name__ == "__main__":
    sys.exit(main())

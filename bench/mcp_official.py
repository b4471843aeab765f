"""Sequential tools/call through the official `mcp` Python SDK (ClientSession over streamable HTTP).

Run with a python that has `mcp` (the peers' venv does): python bench/mcp_official.py URL
Protocol on stdin/stdout, so the caller can read the server's CPU around each measured batch:
prints `READY` after initialize and a warm-up; then for each line `CALL TOOL N ARGS_JSON` it makes
N sequential calls and prints one JSON line {tool, calls, errors, wall, p50_ms, p99_ms}; `QUIT` ends.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def main(url: str) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    loop = asyncio.get_running_loop()
    async with streamable_http_client(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            print("READY " + json.dumps([t.name for t in tools.tools]), flush=True)
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
                if not line or line == "QUIT":
                    return
                _, tool, count, arguments = line.split(" ", 3)
                args = json.loads(arguments)
                latencies: list[float] = []
                errors = 0
                first_error = None
                started = time.perf_counter()
                for _ in range(int(count)):
                    t0 = time.perf_counter()
                    try:
                        result = await session.call_tool(tool, args)
                        if getattr(result, "is_error", getattr(result, "isError", False)):
                            raise RuntimeError(str(result.content)[:300])
                    except Exception as exc:  # noqa: BLE001 - reported to the caller
                        errors += 1
                        first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                        continue
                    latencies.append(time.perf_counter() - t0)
                wall = time.perf_counter() - started
                report = {
                    "tool": tool,
                    "calls": len(latencies),
                    "errors": errors,
                    "first_error": first_error,
                    "wall": wall,
                    "p50_ms": _percentile(latencies, 50) * 1000,
                    "p99_ms": _percentile(latencies, 99) * 1000,
                }
                print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

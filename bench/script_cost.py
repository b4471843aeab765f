"""What a script step costs: the latency and server CPU a trivial JavaScript step and a trivial
Python step add to a REST call, against the same call without a script, in the same run.

Run: python bench/script_cost.py [--calls 2000] [--repeats 5]

Starts the fake upstream (bench/fake_upstream.py) and one `naftiko run` of a capability with
three REST operations that each call the upstream once: `/without` maps the answer, `/with-js`
and `/with-py` pass it through a one-line script first (`result = {id: context.id, item:
context['get-item']}`). Batches of sequential calls alternate between the three routes; latency
is measured by the client per call, CPU is utime+stime of the server and its script workers from
/proc (bench/harness.py cpu_seconds). The medians over the repeats are printed, and the
difference to `/without` is what the script step adds. Workers are warmed before measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import Processes, cpu_seconds, free_port, http_answers, wait_until  # noqa: E402
from run_all import naftiko_argv  # noqa: E402

SCRIPTS = {"trivial.js": "result = { id: context.id, item: context['get-item'] };\n"}
SCRIPTS["trivial.py"] = 'result = {"id": context["id"], "item": context["get-item"]}\n'
ROUTES = ("without", "with-js", "with-py")


def capability(tmp: Path, port: int, upstream: str) -> Path:
    for name, text in SCRIPTS.items():
        (tmp / name).write_text(text)
    call = {"type": "call", "name": "get-item", "call": "items.get-item", "with": {"id": "{{id}}"}}
    inputs = [{"name": "id", "in": "query", "type": "integer", "description": "id"}]

    def operation(route: str) -> dict:
        steps = [call]
        if route != "without":
            language = "javascript" if route == "with-js" else "python"
            steps = [call, {"type": "script", "name": "shape", "language": language, "file": f"trivial.{route[-2:]}"}]
        source = "$.get-item" if route == "without" else "$.shape"
        return {
            "path": f"/{route}",
            "name": route,
            "operations": [
                {
                    "method": "GET",
                    "name": route,
                    "inputParameters": inputs,
                    "steps": steps,
                    "mappings": [{"targetName": "answer", "value": source}],
                }
            ],
        }

    document = {
        "naftiko": "1.0.0-alpha2",
        "info": {"label": "script cost", "description": "bench/script_cost.py"},
        "capability": {
            "exposes": [
                {
                    "type": "control",
                    "port": free_port(),
                    "management": {"scripting": {"defaultLocation": tmp.as_uri()}},
                },
                {"type": "rest", "port": port, "namespace": "bench", "resources": [operation(r) for r in ROUTES]},
            ],
            "consumes": [
                {
                    "type": "http",
                    "namespace": "items",
                    "baseUri": upstream,
                    "resources": [
                        {
                            "path": "/items/{{id}}",
                            "name": "items",
                            "operations": [{"method": "GET", "name": "get-item"}],
                        }
                    ],
                }
            ],
        },
    }
    path = tmp / "script-cost.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def batch(session: aiohttp.ClientSession, url: str, calls: int) -> list[float]:
    """Seconds per call, `calls` sequential calls."""
    times = []
    for i in range(calls):
        started = time.perf_counter()
        async with session.get(url, params={"id": str(i)}) as answer:
            await answer.read()
            assert answer.status == 200, answer.status
        times.append(time.perf_counter() - started)
    return times


async def measure(base: str, pid: int, calls: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Per route: (median latency ms, median server CPU ms per call)."""
    latency: dict[str, list[float]] = {r: [] for r in ROUTES}
    cpu: dict[str, list[float]] = {r: [] for r in ROUTES}
    async with aiohttp.ClientSession() as session:
        for route in ROUTES:
            await batch(session, f"{base}/{route}", 200)  # warm: workers started, code paths hot
        for _ in range(repeats):
            for route in ROUTES:
                before = cpu_seconds(pid)
                times = await batch(session, f"{base}/{route}", calls)
                cpu[route].append((cpu_seconds(pid) - before) / calls * 1000)
                latency[route].append(statistics.median(times) * 1000)
    return {r: (statistics.median(latency[r]), statistics.median(cpu[r])) for r in ROUTES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per batch (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="batches per route; medians reported (default 5)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-script-cost-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with Processes(tmp) as procs:
        upstream_port, port = free_port(), free_port()
        upstream = procs.start(
            "upstream", [sys.executable, str(BENCH / "fake_upstream.py"), str(upstream_port)], env=env
        )
        wait_until(http_answers(f"http://127.0.0.1:{upstream_port}/__bench/stats"), 30, upstream)
        file = capability(tmp, port, f"http://127.0.0.1:{upstream_port}")
        server = procs.start("naftiko", [*naftiko_argv(), "run", str(file)], env=env)
        wait_until(http_answers(f"http://127.0.0.1:{port}/without", ok=lambda status: status < 500), 60, server)
        results = asyncio.run(measure(f"http://127.0.0.1:{port}", server.pid, args.calls, args.repeats))
    base_latency, base_cpu = results["without"]
    print(f"{args.calls} sequential calls per batch, {args.repeats} batches per route, medians")
    print(f"{'route':10} {'latency ms':>11} {'added':>8} {'server CPU ms/call':>19} {'added':>8}")
    for route, (latency, cpu) in results.items():
        print(f"{route:10} {latency:11.3f} {latency - base_latency:+8.3f} {cpu:19.3f} {cpu - base_cpu:+8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What tracing costs: server CPU per MCP `tools/call` with tracing on (sampling 1.0, OTLP export
to a local receiver) and off, in the same run (DESIGN §6: ≤ +25 %).

Run: python bench/tracing_cost.py [--calls 3000] [--concurrency 16] [--repeats 9] [--sampling 1.0]

Starts the fake upstream (bench/fake_upstream.py), an OTLP/HTTP receiver that parses every
export and counts its spans (tests/otlp_receiver.py, in its own process), and two `naftiko run` of
capabilities/track-customers.yaml: one as it is, one with a control exposure whose
`observability` block samples every trace and exports to the receiver. Batches alternate
between the two servers (N sequential then N concurrent `delete-customer` calls each, per
repeat, in turns off-first and on-first: harness.alternate_on_off), so a noisy moment of the
shared machine hits both; CPU is the scheduler's run time of every thread around each batch
(bench/harness.py), the export thread included. Prints the median CPU per call of each, the
cost as the median on/off ratio of the pairs with the middle half of them, and the spans the
receiver got (two per call: SERVER and CLIENT).

At 16 concurrent calls a server's CPU per call depends on how many requests each wake-up of its
loop finds (the load generator shares the machine), so batches a second apart can differ by
half. The last line drives both servers at once (`--concurrency` sessions each, both pinned to
the same CPU): every moment of the machine hits both alike, and the ratio varies by a point or
two from run to run; it is the figure to quote for the concurrent case.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import (  # noqa: E402
    Processes,
    alternate_on_off,
    cost_of,
    cost_parser,
    free_port,
    http_answers,
    pin_servers,
    wait_for_quiet,
    wait_until,
)
from run_all import SECRETS, TRACK_CAPABILITY, mcp_load, naftiko_argv, track_tools  # noqa: E402

RECEIVER = BENCH.parent / "tests" / "otlp_receiver.py"


def traced_copy(tmp: Path, receiver_url: str, control_port: int, sampling: float = 1.0) -> Path:
    document = yaml.safe_load(TRACK_CAPABILITY.read_text(encoding="utf-8"))
    document["capability"]["exposes"].append(
        {
            "type": "control",
            "port": control_port,
            "observability": {
                "traces": {"sampling": sampling, "propagation": "w3c", "local": {"buffer-size": 100}},
                "exporters": {"otlp": {"endpoint": receiver_url}},
            },
        }
    )
    path = tmp / "track-customers-traced.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


async def receiver_count(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/count") as response:
        return await response.json()


def main() -> int:
    parser = cost_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sampling",
        type=float,
        default=1.0,
        help="traces.sampling of the traced server (default 1.0, the DESIGN bar's)",
    )
    args = parser.parse_args()
    server_cpus = pin_servers(args.no_pin)
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-tracing-cost-"))
    env = {**os.environ, **SECRETS, "PYTHONUNBUFFERED": "1"}
    with Processes(tmp) as procs:
        upstream_port, receiver_port = free_port(), free_port()
        upstream = procs.start(
            "upstream", [sys.executable, str(BENCH / "fake_upstream.py"), str(upstream_port)], env=env
        )
        receiver = procs.start("receiver", [sys.executable, str(RECEIVER), str(receiver_port)], env=env)
        upstream_url, receiver_url = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{receiver_port}"
        wait_until(http_answers(f"{upstream_url}/__bench/stats"), 30, upstream)
        wait_until(http_answers(f"{receiver_url}/count"), 30, receiver)
        files = {"off": TRACK_CAPABILITY, "on": traced_copy(tmp, receiver_url, free_port(), args.sampling)}
        servers, urls = {}, {}
        for name, file in files.items():
            mcp_port, rest_port = free_port(), free_port()
            argv = naftiko_argv() + [
                "run", "--upstream", f"track-customers={upstream_url}/api/v1",
                "--port", f"track-customers-mcp={mcp_port}", "--port", f"track-customers-rest={rest_port}", str(file),
            ]  # fmt: skip
            servers[name] = procs.start(f"naftiko-{name}", argv, env=env, cpus=server_cpus)
            wait_until(http_answers(f"http://127.0.0.1:{mcp_port}/health"), 60, servers[name])
            urls[name] = f"http://127.0.0.1:{mcp_port}/mcp"
        tool, args_for = track_tools()["delete"]
        for name in files:
            asyncio.run(mcp_load(urls[name], {}, tool, args_for, args.warmup, 4, 60))
        time.sleep(1.5)  # the warm-up's spans exported
        spans_before = asyncio.run(receiver_count(receiver_url))["spans"]
        calls_on = 0

        def batch(name: str, concurrency: int) -> tuple[Any, dict[str, float]]:
            nonlocal calls_on
            result = asyncio.run(
                mcp_load(urls[name], {}, tool, args_for, args.calls, concurrency, 120, (servers[name], upstream))
            )
            calls_on += result[0].calls if name == "on" else 0
            return result

        costs = alternate_on_off(batch, args.concurrency, args.repeats)

        async def both_at_once() -> dict[str, float]:
            loads = [
                mcp_load(urls[name], {}, tool, args_for, args.calls, args.concurrency, 120, (servers[name], upstream))
                for name in files
            ]
            done = await asyncio.gather(*loads)
            return {name: readings["server"] / result.calls * 1000 for name, (result, readings) in zip(files, done)}

        together = []
        for _ in range(args.repeats):
            wait_for_quiet()
            together.append(asyncio.run(both_at_once()))
            calls_on += args.calls
        time.sleep(2.0)  # the last batches exported (schedule delay 1 s)
        spans = asyncio.run(receiver_count(receiver_url))["spans"] - spans_before
    print(
        f"tracing cost, server CPU per MCP tools/call ({tool}, sampling {args.sampling:g}, {args.calls} calls per batch, {args.repeats} pairs):"
    )
    print(costs.line("seq", "sequential", "traced"))
    print(costs.line("conc", f"concurrent (c{args.concurrency})", "traced"))
    print(
        f"  {'both at once':<18} off {statistics.median(run['off'] for run in together):.3f} ms"
        f"  traced {statistics.median(run['on'] for run in together):.3f} ms"
        f"  {cost_of([run['on'] / run['off'] for run in together], 'runs')} (c{args.concurrency} on each server, same moments)"
    )
    print(
        f"  spans received: {spans} for {calls_on} calls to the traced server ({spans / max(calls_on, 1):.2f} per call; {2 * args.sampling:.2g} expected)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the shared rate limit costs: a limited REST call with `--redis` (one EVALSHA round trip
to a local redis-server per call) against the same call limited per process, and unlimited,
in the same run (README "Fleet").

Run: python bench/redis_rate_cost.py [--calls 3000] [--concurrency 8] [--repeats 3]

Starts the fake upstream (bench/fake_upstream.py), a redis-server on a free port
(tests/redis_server.py) and three `naftiko run` of capabilities/track-customers.yaml: without a
limit, with `--rate-limit track-customers=1000000` (a limit never reached, so every call is
checked and sent), and the same with `--redis`. Batches of `PUT /v1/customers/{id}` alternate
between the three (sequential, then `--concurrency` at once, per repeat), so a noisy moment of
the shared machine hits all. Prints, per mode, the median over repeats of: client latency p50
per call, naftiko CPU per call, and redis-server CPU per call (utime+stime from /proc/PID/stat).
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

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from harness import Processes, cpu_seconds, free_port, http_answers, percentile, wait_for_quiet, wait_until  # noqa: E402
from redis_server import RedisServer, redis_binary  # noqa: E402
from run_all import SECRETS, TRACK_CAPABILITY, naftiko_argv  # noqa: E402

SERVERS = {
    "unlimited": [],
    "local limit": ["--rate-limit", "track-customers=1000000"],
    "redis limit": ["--rate-limit", "track-customers=1000000", "--redis"],  # the URL is appended
}


async def batch(base: str, calls: int, concurrency: int) -> list[float]:
    """`calls` PUTs over `concurrency` connections; the latency of each, all answered 200."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def worker(first: int) -> None:
            for index in range(first, calls, concurrency):
                started = time.perf_counter()
                async with http.put(f"{base}/v1/customers/c{index % 1000}", json={}) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise SystemExit(f"{base}: call {index} answered {answer.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per batch (default 3000)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections of the concurrent batches")
    parser.add_argument("--repeats", type=int, default=3, help="batches of each mode per server; medians reported")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="naftiko-redis-cost-"))
    env = {**os.environ, **SECRETS, "PYTHONUNBUFFERED": "1"}
    with Processes(tmp) as procs, RedisServer(redis_binary()) as redis:
        upstream_port = free_port()
        upstream = procs.start(
            "upstream", [sys.executable, str(BENCH / "fake_upstream.py"), str(upstream_port)], env=env
        )
        wait_until(http_answers(f"http://127.0.0.1:{upstream_port}/__bench/stats"), 30, upstream)
        servers, bases = {}, {}
        for name, flags in SERVERS.items():
            rest_port = free_port()
            argv = naftiko_argv() + [
                "run", *flags, *([redis.url] if "--redis" in flags else []),
                "--upstream", f"track-customers=http://127.0.0.1:{upstream_port}/api/v1",
                "--port", f"track-customers-rest={rest_port}", "--port", f"track-customers-mcp={free_port()}",
                str(TRACK_CAPABILITY),
            ]  # fmt: skip
            servers[name] = procs.start(name.replace(" ", "-"), argv, env=env)
            bases[name] = f"http://127.0.0.1:{rest_port}"
            wait_until(http_answers(f"{bases[name]}/health"), 60, servers[name])
        for name in SERVERS:
            asyncio.run(batch(bases[name], 300, 4))  # warm-up
        figures: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for _ in range(args.repeats):
            for mode, concurrency in (("sequential", 1), (f"concurrent (c{args.concurrency})", args.concurrency)):
                for name in SERVERS:
                    wait_for_quiet()
                    server_before, redis_before = cpu_seconds(servers[name].pid), cpu_seconds(redis.process.pid)
                    latencies = asyncio.run(batch(bases[name], args.calls, concurrency))
                    server_cpu = (cpu_seconds(servers[name].pid) - server_before) / args.calls * 1e6
                    redis_cpu = (cpu_seconds(redis.process.pid) - redis_before) / args.calls * 1e6
                    figures.setdefault((mode, name), []).append(
                        (percentile(latencies, 50) * 1e6, server_cpu, redis_cpu)
                    )
    print(f"rate-limit check cost per REST call ({args.calls} calls per batch, median of {args.repeats}; µs):")
    for mode in dict.fromkeys(m for m, _ in figures):
        print(f"  {mode}")
        base = None
        for name in SERVERS:
            p50, server, redis_cpu = (statistics.median(f[i] for f in figures[(mode, name)]) for i in range(3))
            base = base if base is not None else (p50, server)
            print(
                f"    {name:<12} p50 {p50:7.0f} ({p50 - base[0]:+5.0f})   naftiko CPU {server:6.0f} ({server - base[1]:+5.0f})"
                f"   redis-server CPU {redis_cpu:5.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every benchmark against the peers, in one run, on this machine: `python bench/run_all.py`.

See bench/README.md. Prints the tables and writes bench/RESULTS.md (--no-write to skip). Raw
figures go to a JSON file in the run's temp directory (printed at the end). Every process it
starts listens on 127.0.0.1 only and is stopped when the run ends, failure or not.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    LoadResult,
    McpSession,
    Proc,
    Processes,
    connector,
    cpu_seconds,
    foreign_cpu_seconds,
    free_port,
    http_answers,
    percentile,
    rss_mb,
    run_workers,
    wait_for_quiet,
    wait_until,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED = Path(os.environ.get("NAFTIKO_SHARED") or ROOT.parent / "shared")
VENV = BENCH / ".venv-peers"
PEER_PY = VENV / "bin" / "python"
TRACK_SPEC = SHARED / "upstreams" / "customer-io" / "customer-io-track-api-openapi.json"
APP_SPEC = SHARED / "upstreams" / "customer-io" / "customer-io-app-api-openapi.json"
CAPABILITIES = ROOT / "capabilities"
TRACK_CAPABILITY = CAPABILITIES / "track-customers.yaml"
CORPUS_TRACK = sorted((SHARED / "corpus" / "alpha2" / "api-evangelist__customer-io").glob("capabilities__track-*.yaml"))
IDENTIFY_BODY = {"email": "ada@example.com", "created_at": 1700000000}
SECRETS = {
    "CUSTOMER_IO_USER": "bench-site",
    "CUSTOMER_IO_PASS": "bench-key",
    "CUSTOMER_IO_API_KEY": "bench-key",
    "CUSTOMER_IO_APP_TOKEN": "bench-token",
}
BARS = {  # DESIGN §6: ratios against a peer of the same run (this VM's speed moves by up to 30 %)
    "fastmcp_ratio": 10.0,  # MCP tools/call server CPU: at least this many times under FastMCP's
    "nginx_ratio": 3.0,  # REST server CPU: at most this many times nginx proxy_pass's
    "startup_ratio": 3.0,  # start-up to ready: at least this many times faster than FastMCP
    "track_tools_list_kb": 30.0,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- configuration


class Config:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.seq = args.seq_calls
        self.conc_calls = args.conc_calls
        self.concurrency = args.concurrency
        self.time_cap = args.time_cap
        self.warmup = args.warmup
        self.official = args.official_calls
        self.rest_duration = args.rest_duration
        self.repeats = max(args.repeats, 1)
        ncpu = os.cpu_count() or 1
        self.pin = not args.no_pin and ncpu >= 2
        self.server_cpus = {ncpu - 1} if self.pin else None
        self.client_cpus = set(range(ncpu - 1)) if self.pin else None
        self.tmp = Path(tempfile.mkdtemp(prefix="naftiko-bench-"))

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(SECRETS)
        env.update(extra)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def naftiko_argv() -> list[str]:
    """The `naftiko` console script beside this python (not a pyenv shim: a shim's bash would add
    its own start-up to the start-up figures and hide the python process from py-spy)."""
    exe = Path(sys.executable).parent / "naftiko"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "naftiko.cli"]


# ---------------------------------------------------------------- MCP targets


class Target:
    """One MCP server under test: how to start it and how to call its two tools."""

    name = ""
    path = "/mcp"
    headers: Mapping[str, str] = MappingProxyType({})

    def argv(self, upstream: str, port: int) -> list[str]:
        raise NotImplementedError

    def ready_check(self, port: int) -> Callable[[], bool]:
        return http_answers(
            f"http://127.0.0.1:{port}{self.path}",
            ok=lambda status: True,
            headers=self.headers,
        )

    def resolve(self, tools: list[dict[str, Any]]) -> dict[str, tuple[str, Callable[[int], dict[str, Any]]]]:
        """{'delete': (tool name, arguments for call i), 'identify': (…)} from the tools/list answer."""
        raise NotImplementedError


class Ours(Target):
    name = "naftiko (ours)"

    def __init__(self, rest_port: int):
        self.rest_port = rest_port

    def argv(self, upstream: str, port: int) -> list[str]:
        return naftiko_argv() + [
            "run",
            "--upstream",
            f"track-customers={upstream}/api/v1",
            "--port",
            f"track-customers-mcp={port}",
            "--port",
            f"track-customers-rest={self.rest_port}",
            str(TRACK_CAPABILITY),
        ]

    def ready_check(self, port: int) -> Callable[[], bool]:
        return http_answers(f"http://127.0.0.1:{port}/health")

    def resolve(self, tools):
        names = {t["name"] for t in tools}
        missing = {"delete-customer", "identify-customer"} - names
        if missing:
            raise RuntimeError(f"tools/list lacks {sorted(missing)}")
        return track_tools()


def track_tools():
    """Ours and the floors name the Track tools alike: what each benchmarked call sends."""
    return {
        "delete": ("delete-customer", lambda i: {"identifier": f"cust-{i % 1000}"}),
        "identify": (
            "identify-customer",
            lambda i: {"identifier": f"cust-{i % 1000}", "body": IDENTIFY_BODY},
        ),
    }


class BareAiohttp(Target):
    """aiohttp's floor: bench/aiohttp_proxy.py (minimal JSON-RPC, no checks, no log)."""

    name = "bare aiohttp JSON-RPC (floor)"

    def argv(self, upstream: str, port: int) -> list[str]:
        return [sys.executable, str(BENCH / "aiohttp_proxy.py"), str(port), upstream]

    def ready_check(self, port: int) -> Callable[[], bool]:
        return http_answers(f"http://127.0.0.1:{port}/health")

    def resolve(self, tools):
        return track_tools()


class StackFloor(BareAiohttp):
    """Our stack's floor: bench/stack_floor.py, the same JSON-RPC on naftiko.http and its client."""

    name = "bare naftiko.http JSON-RPC (our stack's floor)"

    def argv(self, upstream: str, port: int) -> list[str]:
        return [sys.executable, str(BENCH / "stack_floor.py"), str(port), upstream]


class FastMcp(Target):
    name = "FastMCP from_openapi"

    def __init__(self, spec: Path = TRACK_SPEC):
        self.spec = spec

    def argv(self, upstream: str, port: int) -> list[str]:
        return [
            str(PEER_PY),
            str(BENCH / "peer_fastmcp.py"),
            str(self.spec),
            upstream,
            str(port),
        ]

    def resolve(self, tools):
        spec = json.loads(TRACK_SPEC.read_text())
        operation = spec["paths"]["/api/v1/customers/{identifier}"]
        wanted = {
            "delete": operation["delete"]["operationId"],
            "identify": operation["put"]["operationId"],
        }
        names = {t["name"] for t in tools}
        if not set(wanted.values()) <= names:
            raise RuntimeError(f"FastMCP tools/list lacks {wanted}")
        return {
            "delete": (wanted["delete"], lambda i: {"identifier": f"cust-{i % 1000}"}),
            "identify": (
                wanted["identify"],
                lambda i: {"identifier": f"cust-{i % 1000}", **IDENTIFY_BODY},
            ),
        }


class Arcade(Target):
    name = "Arcade toolkit"
    headers = MappingProxyType({"Authorization": "Bearer bench-token"})  # see peer_arcade.py: front-door auth

    def argv(self, upstream: str, port: int) -> list[str]:
        return [str(PEER_PY), str(BENCH / "peer_arcade.py"), upstream, str(port)]

    def resolve(self, tools):
        by_suffix = {}
        for tool in tools:
            for suffix in ("DeleteCustomer", "UpdateOrAddPerson"):
                if tool["name"].endswith(suffix):
                    by_suffix[suffix] = tool["name"]
        if len(by_suffix) != 2:
            raise RuntimeError(
                f"Arcade tools/list lacks DeleteCustomer/UpdateOrAddPerson: {sorted(t['name'] for t in tools)}"
            )
        body = json.dumps(IDENTIFY_BODY)
        return {
            "delete": (
                by_suffix["DeleteCustomer"],
                lambda i: {"customer_identifier": f"cust-{i % 1000}"},
            ),
            "identify": (
                by_suffix["UpdateOrAddPerson"],
                lambda i: {
                    "mode": "execute",
                    "person_identifier": f"cust-{i % 1000}",
                    "request_body": body,
                },
            ),
        }


async def upstream_hits(upstream: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{upstream}/__bench/stats") as response,
    ):
        return sum((await response.json()).values())


async def mcp_load(
    url: str,
    headers: Mapping[str, str],
    tool: str,
    args_for: Callable[[int], dict[str, Any]],
    calls: int,
    concurrency: int,
    cap: float,
    watch: tuple[Proc, Proc] | None = None,
) -> tuple[LoadResult, dict[str, float]]:
    """`calls` tools/call over `concurrency` sessions; CPU read around the calls only (not the initialize)."""
    async with aiohttp.ClientSession(connector=connector(concurrency), timeout=aiohttp.ClientTimeout(total=60)) as http:
        sessions = [McpSession(http, url, headers) for _ in range(concurrency)]
        await asyncio.gather(*(s.initialize() for s in sessions))

        def worker(session: McpSession):
            async def call(index: int) -> None:
                await session.call_tool(tool, args_for(index))

            return call

        if watch is None:
            return await run_workers([worker(s) for s in sessions], calls, cap), {}
        server, upstream = watch
        before = Readings(server, upstream)
        result = await run_workers([worker(s) for s in sessions], calls, cap)
        return result, before.delta()


class Readings:
    """CPU seconds of the server, the upstream, this client (and its reaped children, e.g. wrk; plus
    `extra` pids), and of every process that is none of ours (other people's work on a shared
    machine), which shows as `foreign_cores` over the window."""

    def __init__(self, server: Proc, upstream: Proc, extra: tuple[int, ...] = ()):
        self.server, self.upstream, self.extra = server, upstream, extra
        self.values = self.read()

    def read(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": cpu_seconds(self.server.pid),
            "upstream": cpu_seconds(self.upstream.pid) if self.upstream is not self.server else 0.0,
            "client": time.process_time()
            + children.ru_utime
            + children.ru_stime
            + sum(cpu_seconds(pid) for pid in self.extra),
            "foreign": foreign_cpu_seconds(),
            "wall": time.perf_counter(),
        }

    def delta(self) -> dict[str, float]:
        now = self.read()
        out = {key: now[key] - self.values[key] for key in now}
        out["foreign_cores"] = out["foreign"] / out["wall"] if out["wall"] > 0 else 0.0
        return out


def measured(
    server: Proc, upstream: Proc, run: Callable[[], Any], extra: tuple[int, ...] = ()
) -> tuple[Any, dict[str, float]]:
    """Run `run()` and read the CPU seconds of the server, the upstream and this client around it."""
    before = Readings(server, upstream, extra)
    result = run()
    return result, before.delta()


BUSY_NOTES: list[str] = []


def quiet(what: str) -> None:
    """Wait for the machine to be idle before a measured batch; note it when it never was."""
    busy = wait_for_quiet()
    if busy >= 0.25:
        BUSY_NOTES.append(
            f"{what}: other processes still used {busy:.2f} cores after waiting 20 s for the machine to be quiet"
        )


def bench_mcp_target(
    cfg: Config, procs: Processes, upstream: Proc, upstream_url: str, target: Target
) -> dict[str, Any]:
    port = free_port()
    out: dict[str, Any] = {"server": target.name}
    started = time.perf_counter()
    server = procs.start(
        target.name.split()[0].lower(),
        target.argv(upstream_url, port),
        env=cfg.env(),
        cpus=cfg.server_cpus,
    )
    try:
        wait_until(target.ready_check(port), 120, server)
        out["startup_s"] = time.perf_counter() - started
        out["rss_ready_mb"] = rss_mb(server.pid)
        url = f"http://127.0.0.1:{port}{target.path}"

        async def probe() -> tuple[int, list[dict[str, Any]]]:
            async with aiohttp.ClientSession() as http:
                session = McpSession(http, url, target.headers)
                await session.initialize()
                tools, size, _ = await session.list_tools()
                return size, tools

        size, tools = asyncio.run(probe())
        out["tools_list_bytes"], out["tools"] = size, len(tools)
        plan = target.resolve(tools)
        out["tool_names"] = {k: v[0] for k, v in plan.items()}
        # smoke: one call of each tool must succeed and reach the upstream
        before = asyncio.run(upstream_hits(upstream_url))
        for tool, args_for in plan.values():
            smoke, _ = asyncio.run(mcp_load(url, target.headers, tool, args_for, 1, 1, 30))
            if smoke.errors:
                raise RuntimeError(f"{tool}: {smoke.first_error}")
        if asyncio.run(upstream_hits(upstream_url)) - before < 2:
            raise RuntimeError("the calls did not reach the fake upstream")
        for tool, args_for in plan.values():
            asyncio.run(mcp_load(url, target.headers, tool, args_for, cfg.warmup, 4, cfg.time_cap))
        out["calls_total"] = 2 + 2 * cfg.warmup
        runs: dict[str, list[tuple[LoadResult, dict[str, float], int]]] = {}
        for repeat in range(cfg.repeats):  # repeats interleaved, so a noisy moment hits one run of each, not all of one
            for key, (tool, args_for) in plan.items():
                for mode, calls, concurrency in (
                    ("seq", cfg.seq, 1),
                    ("conc", cfg.conc_calls, cfg.concurrency),
                ):
                    quiet(f"{target.name} {tool} {mode} run {repeat + 1}")
                    hits0 = asyncio.run(upstream_hits(upstream_url))
                    result, cpu = asyncio.run(
                        mcp_load(
                            url,
                            target.headers,
                            tool,
                            args_for,
                            calls,
                            concurrency,
                            cfg.time_cap,
                            (server, upstream),
                        )
                    )
                    hits = asyncio.run(upstream_hits(upstream_url)) - hits0
                    out["calls_total"] += result.calls + result.errors
                    runs.setdefault(f"{key}_{mode}", []).append((result, cpu, hits))
        for name, batches in runs.items():
            out[name] = aggregate(batches)
            row = out[name]
            log(
                f"  {target.name} {out['tool_names'][name.split('_')[0]]} {name.split('_')[1]}: {row['rate']:.0f}/s p50 {row['p50_ms']:.2f} ms p99 {row['p99_ms']:.2f} ms, "
                f"CPU {row['cpu_ms']:.3f} ms/call (runs {', '.join(f'{c:.3f}' for c in row['cpu_ms_runs'])}), errors {row['errors']}"
            )
        if isinstance(target, Ours):
            out["official_client"] = official_client(cfg, server, upstream, url, plan)
            out["calls_total"] += sum(v.get("calls", 0) for v in out["official_client"].values() if isinstance(v, dict))
            remaining = 10_000 - out["calls_total"]
            if remaining > 0:
                tool, args_for = plan["delete"]
                extra, _ = asyncio.run(
                    mcp_load(
                        url,
                        target.headers,
                        tool,
                        args_for,
                        remaining,
                        cfg.concurrency,
                        300,
                    )
                )
                out["calls_total"] += extra.calls + extra.errors
            out["rss_after_mb"] = rss_mb(server.pid)
        return out
    except Exception as exc:  # noqa: BLE001 - one server failing must not lose the others' figures
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  {target.name} FAILED: {out['error']}\n{server.tail()}")
        return out
    finally:
        procs.stop(server)


def aggregate(
    batches: list[tuple[LoadResult, dict[str, float], int]],
) -> dict[str, Any]:
    """Median of the runs for rates and CPU per call; percentiles over every latency of every run."""
    latencies = [x for result, _, _ in batches for x in result.latencies]
    cpu_runs = [cpu["server"] / max(r.calls + r.errors, 1) * 1000 for r, cpu, _ in batches]
    first_error = next((r.first_error for r, _, _ in batches if r.first_error), None)
    return {
        "calls": sum(r.calls for r, _, _ in batches),
        "errors": sum(r.errors for r, _, _ in batches),
        "first_error": first_error,
        "upstream_hits": sum(h for _, _, h in batches),
        "rate": statistics.median(r.rate for r, _, _ in batches),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "cpu_ms": statistics.median(cpu_runs),
        "cpu_ms_runs": cpu_runs,
        "upstream_cpu_ms": statistics.median(
            cpu["upstream"] / max(r.calls + r.errors, 1) * 1000 for r, cpu, _ in batches
        ),
        "client_core_busy": max((cpu["client"] + cpu["upstream"]) / r.wall if r.wall else 0.0 for r, cpu, _ in batches),
        "foreign_cores": max(cpu["foreign_cores"] for _, cpu, _ in batches),
    }


def pin_client(cfg: Config) -> Callable[[], None] | None:
    return (lambda: os.sched_setaffinity(0, cfg.client_cpus)) if cfg.client_cpus else None


def official_client(cfg: Config, server: Proc, upstream: Proc, url: str, plan) -> dict[str, Any]:
    """The official `mcp` SDK's ClientSession, sequential, for ours (run with the peers' venv)."""
    python = str(PEER_PY) if PEER_PY.exists() else sys.executable
    out: dict[str, Any] = {"python": python}
    child = subprocess.Popen(
        [python, str(BENCH / "mcp_official.py"), url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=open(cfg.tmp / "official-client.log", "ab"),  # noqa: SIM115 - the child keeps it
        text=True,
        preexec_fn=pin_client(cfg),  # noqa: PLW1509 - CPU affinity only; no threads here
    )
    try:
        line = child.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"official client did not start: {line!r}; see {cfg.tmp / 'official-client.log'}")
        for key, (tool, args_for) in plan.items():
            child.stdin.write(f"CALL {tool} {max(cfg.official // 10, 1)} {json.dumps(args_for(0))}\n")  # warm-up
            child.stdin.flush()
            child.stdout.readline()

            def batch(tool: str = tool, args_for: Callable[[int], dict[str, Any]] = args_for) -> dict[str, Any]:
                child.stdin.write(f"CALL {tool} {cfg.official} {json.dumps(args_for(1))}\n")
                child.stdin.flush()
                return json.loads(child.stdout.readline())

            quiet(f"official client {tool}")
            report, cpu = measured(server, upstream, batch, extra=(child.pid,))
            report["foreign_cores"] = cpu["foreign_cores"]
            done = max(report["calls"] + report["errors"], 1)
            report["rate"] = report["calls"] / report["wall"] if report["wall"] else float("nan")
            report["cpu_ms"] = cpu["server"] / done * 1000
            out[key] = report
            log(
                f"  official mcp client {tool}: {report['rate']:.0f}/s p50 {report['p50_ms']:.2f} ms, CPU {report['cpu_ms']:.3f} ms/call, errors {report['errors']}"
            )
        child.stdin.write("QUIT\n")
        child.stdin.flush()
        child.wait(30)
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  official client FAILED: {out['error']}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return out


# ---------------------------------------------------------------- REST


WRK_LINE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$")


def wrk(cfg: Config, url: str, method: str, body: str | None, duration: float) -> dict[str, Any]:
    script = cfg.tmp / f"wrk-{method.lower()}.lua"
    lines = [
        f'wrk.method = "{method}"',
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if body is not None:
        lines.append(f"wrk.body = '{body}'")
    script.write_text("\n".join(lines) + "\n")
    argv = [
        "wrk",
        "-t1",
        f"-c{cfg.concurrency}",
        f"-d{max(int(duration), 1)}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    run = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=duration + 60,
        preexec_fn=(lambda: os.sched_setaffinity(0, cfg.client_cpus)) if cfg.client_cpus else None,
    )
    text = run.stdout
    out: dict[str, Any] = {"tool": "wrk"}
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for line in text.splitlines():
        match = WRK_LINE.match(line)
        if match:
            out[f"p{match.group(1)}_ms"] = float(match.group(2)) * scale[match.group(3)]
        if line.startswith("Requests/sec:"):
            out["rate"] = float(line.split()[1])
        match = re.match(r"\s*(\d+) requests in", line)
        if match:
            out["calls"] = int(match.group(1))
        if "Non-2xx or 3xx responses" in line:
            out["errors"] = int(line.split(":")[1])
        if line.strip().startswith("Socket errors"):
            out["socket_errors"] = line.strip()
    out.setdefault("errors", 0)
    if "calls" not in out:
        raise RuntimeError(f"wrk failed: {run.stderr or text}")
    return out


async def aiohttp_rest(url: str, method: str, body: str | None, concurrency: int, duration: float) -> LoadResult:
    async with aiohttp.ClientSession(connector=connector(concurrency)) as http:
        data = body.encode() if body is not None else None

        async def call(index: int) -> None:
            async with http.request(method, url, data=data, headers={"Content-Type": "application/json"}) as response:
                await response.read()
                if response.status >= 400:
                    raise RuntimeError(f"HTTP {response.status}")

        return await run_workers([call] * concurrency, 10**9, duration)


def nginx_config(cfg: Config, port: int, upstream_port: int) -> Path:
    root = cfg.tmp / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream fake {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location /v1/ {{
            proxy_pass http://fake/api/v1/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    return conf


def bench_rest(cfg: Config, procs: Processes, upstream: Proc, upstream_port: int) -> dict[str, Any]:
    out: dict[str, Any] = {"targets": {}}
    have_wrk = shutil.which("wrk") is not None
    out["load_tool"] = "wrk" if have_wrk else "aiohttp (wrk not installed)"
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    targets: list[tuple[str, Proc, str]] = [
        ("upstream direct (floor)", upstream, f"{upstream_url}/api/v1/customers/cust-1")
    ]
    rest_port, mcp_port = free_port(), free_port()
    ours = procs.start(
        "naftiko-rest",
        naftiko_argv()
        + [
            "run",
            "--upstream",
            f"track-customers={upstream_url}/api/v1",
            "--port",
            f"track-customers-mcp={mcp_port}",
            "--port",
            f"track-customers-rest={rest_port}",
            str(TRACK_CAPABILITY),
        ],
        env=cfg.env(),
        cpus=cfg.server_cpus,
    )
    try:
        wait_until(http_answers(f"http://127.0.0.1:{rest_port}/health"), 60, ours)
        targets.append(
            (
                "naftiko REST (ours)",
                ours,
                f"http://127.0.0.1:{rest_port}/v1/customers/cust-1",
            )
        )
    except RuntimeError as exc:
        out["targets"]["naftiko REST (ours)"] = {"error": str(exc)}
    bare_port = free_port()
    bare = procs.start(
        "aiohttp-proxy",
        [sys.executable, str(BENCH / "aiohttp_proxy.py"), str(bare_port), upstream_url],
        cpus=cfg.server_cpus,
    )
    try:
        wait_until(http_answers(f"http://127.0.0.1:{bare_port}/v1/customers/x"), 30, bare)
        targets.append(
            (
                "bare aiohttp proxy (aiohttp floor)",
                bare,
                f"http://127.0.0.1:{bare_port}/v1/customers/cust-1",
            )
        )
    except RuntimeError as exc:
        out["targets"]["bare aiohttp proxy (aiohttp floor)"] = {"error": str(exc)}
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        port = free_port()
        conf = nginx_config(cfg, port, upstream_port)
        proc = procs.start(
            "nginx",
            [nginx, "-c", str(conf), "-p", str(conf.parent)],
            cpus=cfg.server_cpus,
        )
        try:
            wait_until(http_answers(f"http://127.0.0.1:{port}/v1/customers/x"), 30, proc)
            targets.append(
                (
                    "nginx proxy_pass",
                    proc,
                    f"http://127.0.0.1:{port}/v1/customers/cust-1",
                )
            )
        except RuntimeError as exc:
            out["targets"]["nginx proxy_pass"] = {"error": str(exc)}
    else:
        out["targets"]["nginx proxy_pass"] = {"error": "nginx not installed (bench/setup_peers.sh installs it)"}
    body = json.dumps(IDENTIFY_BODY)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failed: dict[tuple[str, str], str] = {}
    for repeat in range(cfg.repeats):  # interleaved: target × method inside each repeat
        for name, proc, url in targets:
            for method, payload in (("PUT", body), ("DELETE", None)):
                if (name, method) in failed:
                    continue
                try:
                    quiet(f"REST {name} {method} run {repeat + 1}")
                    if have_wrk:
                        if repeat == 0:
                            wrk(cfg, url, method, payload, 1)  # warm-up
                        result, cpu = measured(
                            proc,
                            upstream,
                            lambda url=url, method=method, payload=payload: wrk(
                                cfg, url, method, payload, cfg.rest_duration
                            ),
                        )
                    else:
                        if repeat == 0:
                            asyncio.run(aiohttp_rest(url, method, payload, cfg.concurrency, 1))
                        load, cpu = measured(
                            proc,
                            upstream,
                            lambda url=url, method=method, payload=payload: asyncio.run(
                                aiohttp_rest(
                                    url,
                                    method,
                                    payload,
                                    cfg.concurrency,
                                    cfg.rest_duration,
                                )
                            ),
                        )
                        result = {
                            "calls": load.calls,
                            "errors": load.errors,
                            "rate": load.rate,
                            "p50_ms": load.p(50),
                            "p99_ms": load.p(99),
                        }
                    done = max(result["calls"], 1)
                    result["cpu_ms"] = cpu["server"] / done * 1000
                    result["foreign_cores"] = cpu["foreign_cores"]
                    if proc is not upstream:
                        result["upstream_cpu_ms"] = cpu["upstream"] / done * 1000
                    runs.setdefault((name, method), []).append(result)
                except Exception as exc:  # noqa: BLE001
                    failed[(name, method)] = f"{type(exc).__name__}: {exc}"
                    log(f"  REST {name} {method} FAILED: {exc}")
    for name, _, _ in targets:
        rows: dict[str, Any] = {}
        for method in ("PUT", "DELETE"):
            if (name, method) in failed:
                rows[method] = {"error": failed[(name, method)]}
                continue
            batch = runs.get((name, method), [])
            if not batch:
                continue
            row = {
                "calls": sum(r["calls"] for r in batch),
                "errors": sum(r.get("errors", 0) for r in batch),
                "foreign_cores": max(r["foreign_cores"] for r in batch),
                "cpu_ms_runs": [r["cpu_ms"] for r in batch],
            }
            for key in ("rate", "p50_ms", "p99_ms", "cpu_ms", "upstream_cpu_ms"):
                values = [r[key] for r in batch if r.get(key) is not None]
                if values:
                    row[key] = statistics.median(values)
            rows[method] = row
            log(
                f"  REST {name} {method}: {row['rate']:.0f}/s p50 {row.get('p50_ms', float('nan')):.2f} ms, CPU {row['cpu_ms']:.3f} ms/req (runs {', '.join(f'{c:.3f}' for c in row['cpu_ms_runs'])}), errors {row['errors']}"
            )
        out["targets"][name] = rows
    for proc in (ours, bare):
        procs.stop(proc)
    return out


# ---------------------------------------------------------------- start-up and sizes


def exposure_ports(files: list[Path]) -> dict[str, int]:
    """{namespace: free port} for every HTTP exposure; exposures that share a port in the files
    (merged onto one server by `naftiko run`) share the new one too."""
    ports: dict[str, int] = {}
    moved: dict[Any, int] = {}
    for file in files:
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for exposure in (document.get("capability") or {}).get("exposes") or []:
            if (
                exposure.get("type") in ("rest", "mcp")
                and exposure.get("transport") != "stdio"
                and exposure.get("namespace")
            ):
                original = exposure.get("port")
                if original is None:
                    ports[exposure["namespace"]] = free_port()
                else:
                    ports[exposure["namespace"]] = moved.setdefault(original, free_port())
    return ports


def env_for(files: list[Path]) -> dict[str, str]:
    names = set()
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        names |= set(re.findall(r"env\.([A-Za-z_][A-Za-z0-9_]*)", text))
        names |= set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):\s*[A-Z][A-Z0-9_]+\s*$", text, re.MULTILINE))
    return {name: "bench-value" for name in names}


def operation_count(file: Path) -> int:
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return 0
    return sum(
        len(r.get("operations") or [])
        for c in (document.get("capability") or {}).get("consumes") or []
        for r in c.get("resources") or []
    )


def time_naftiko_start(
    cfg: Config,
    procs: Processes,
    paths: list[Path],
    files: list[Path],
    upstream_url: str,
    name: str,
) -> tuple[float, dict[str, int], Proc]:
    ports = exposure_ports(files)
    argv = naftiko_argv() + ["run"]
    for namespace, port in ports.items():
        argv += ["--port", f"{namespace}={port}"]
    argv += [str(p) for p in paths]
    checks = [http_answers(f"http://127.0.0.1:{port}/health") for port in set(ports.values())]
    started = time.perf_counter()
    proc = procs.start(name, argv, env=cfg.env(**env_for(files)), cpus=cfg.server_cpus)
    wait_until(lambda: all(check() for check in checks), 60, proc, interval=0.002)
    return time.perf_counter() - started, ports, proc


async def tools_list_size(url: str, headers: Mapping[str, str] = {}) -> tuple[int, int]:
    async with aiohttp.ClientSession() as http:
        session = McpSession(http, url, headers)
        await session.initialize()
        tools, size, _ = await session.list_tools()
        return size, len(tools)


def bench_startup(cfg: Config, procs: Processes, upstream_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    files = sorted(p for p in CAPABILITIES.rglob("*.y*ml"))
    biggest = max(files, key=operation_count, default=None)
    if biggest is not None and operation_count(biggest) >= 100:
        app, note = (
            biggest,
            f"{biggest.relative_to(ROOT)} ({operation_count(biggest)} operations)",
        )
        out["app_source"] = str(biggest.relative_to(ROOT))
    else:
        app = cfg.tmp / "customer-io-app.yaml"
        subprocess.run(
            [sys.executable, str(BENCH / "gen_app_capability.py"), str(app)],
            check=True,
            capture_output=True,
        )
        note = f"generated by bench/gen_app_capability.py into the run's temp dir ({operation_count(app)} operations; capabilities/ has no large App capability)"
        out["app_source"] = "generated by bench/gen_app_capability.py"
    out["app_capability"] = note
    for key, paths, scan in (
        ("app", [app], [app]),
        ("capabilities_dir", [CAPABILITIES], files),
    ):
        samples = []
        for attempt in range(cfg.args.startup_runs):
            quiet(f"start-up {key} run {attempt + 1}")
            try:
                seconds, ports, proc = time_naftiko_start(cfg, procs, paths, scan, upstream_url, f"startup-{key}")
            except RuntimeError as exc:
                out[key] = {"error": str(exc)}
                break
            samples.append(seconds)
            if attempt == 0 and key == "app":
                mcp = [port for ns, port in ports.items() if ns.endswith("mcp")]
                if mcp:
                    try:
                        out["app_tools_list_bytes"], out["app_tools"] = asyncio.run(
                            tools_list_size(f"http://127.0.0.1:{mcp[0]}/mcp")
                        )
                    except Exception as exc:  # noqa: BLE001
                        out["app_tools_list_error"] = str(exc)
            procs.stop(proc)
        if samples:
            out[key] = {
                "median_s": statistics.median(samples),
                "min_s": min(samples),
                "max_s": max(samples),
                "runs": len(samples),
            }
            log(f"  start-up {key}: median {out[key]['median_s']:.3f} s over {len(samples)} runs")
    out["capabilities_dir_files"] = len(files)
    if PEER_PY.exists() and not cfg.args.skip_peers:
        samples = []
        target = FastMcp(APP_SPEC)
        for attempt in range(max(cfg.args.startup_runs // 2, 1)):
            quiet(f"start-up FastMCP App run {attempt + 1}")
            port = free_port()
            started = time.perf_counter()
            proc = procs.start(
                "fastmcp-app",
                target.argv(upstream_url, port),
                env=cfg.env(),
                cpus=cfg.server_cpus,
            )
            try:
                wait_until(target.ready_check(port), 120, proc)
                samples.append(time.perf_counter() - started)
                if attempt == 0:
                    out["fastmcp_app_tools_list_bytes"], out["fastmcp_app_tools"] = asyncio.run(
                        tools_list_size(f"http://127.0.0.1:{port}/mcp")
                    )
            except Exception as exc:  # noqa: BLE001
                out["fastmcp_app"] = {"error": str(exc)}
                break
            finally:
                procs.stop(proc)
        if samples:
            out["fastmcp_app"] = {
                "median_s": statistics.median(samples),
                "min_s": min(samples),
                "max_s": max(samples),
                "runs": len(samples),
            }
            log(f"  start-up FastMCP App spec: median {out['fastmcp_app']['median_s']:.3f} s")
    return out


def bench_full_track(cfg: Config, procs: Processes, upstream_url: str) -> dict[str, Any]:
    """tools/list of every Track capability served on one MCP port (the whole Track surface):
    capabilities/track-*.yaml when there are several, else the corpus's Track files."""
    files = sorted(CAPABILITIES.glob("track-*.y*ml"))
    source = "capabilities/track-*.yaml"
    if len(files) < 2:
        files, source = CORPUS_TRACK, "the corpus's Track capabilities"
    if not files:
        return {"error": "no Track capabilities found"}
    mcp_port = free_port()
    ports = exposure_ports(files)
    mcp_namespaces = set()
    for file in files:
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        mcp_namespaces |= {
            e.get("namespace")
            for e in (document.get("capability") or {}).get("exposes") or []
            if e.get("type") == "mcp"
        }
    argv = naftiko_argv() + ["run"]
    for namespace, port in ports.items():
        argv += [
            "--port",
            f"{namespace}={mcp_port if namespace in mcp_namespaces else port}",
        ]
    argv += [str(p) for p in files]
    proc = procs.start("naftiko-track-all", argv, env=cfg.env(**env_for(files)), cpus=cfg.server_cpus)
    try:
        wait_until(http_answers(f"http://127.0.0.1:{mcp_port}/health"), 60, proc)
        size, tools = asyncio.run(tools_list_size(f"http://127.0.0.1:{mcp_port}/mcp"))
        return {"bytes": size, "tools": tools, "files": len(files), "source": source}
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        procs.stop(proc)


# ---------------------------------------------------------------- report


def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def one_line(text: str, limit: int = 160) -> str:
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return first[:limit].replace("|", "/")


def foreign(row: Mapping[str, Any]) -> str:
    return " ⁽ᵇ⁾" if row.get("foreign_cores", 0) > 0.25 else ""


def ratio(peer: Any, ours: Any) -> str:
    try:
        return f"{peer / ours:.1f}×"
    except (TypeError, ZeroDivisionError):
        return "–"


def report(results: dict[str, Any], cfg: Config, command: str) -> str:
    lines: list[str] = []
    mcp = results.get("mcp", {})
    ours = mcp.get("ours", {})
    lines.append(
        f"### MCP `tools/call` (fake upstream; per tool, {cfg.repeats} runs of {cfg.seq} sequential calls and of {cfg.conc_calls} calls over {cfg.concurrency} concurrent sessions; "
        f"calls/s and CPU: median of the runs; p50/p99 over all calls)\n"
    )
    lines.append(
        "| server | tool | seq calls/s | seq p50 / p99 ms | seq CPU ms/call | c16 calls/s | c16 p50 / p99 ms | c16 CPU ms/call | CPU ÷ ours (seq / c16) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for key in ("ours", "stack", "bare", "fastmcp", "arcade"):
        row = mcp.get(key)
        if not row:
            continue
        if "error" in row and "delete_seq" not in row:
            lines.append(f"| {row['server']} | – | failed: {one_line(row['error'])} | | | | | | |")
            continue
        for tool in ("delete", "identify"):
            seq, conc = row.get(f"{tool}_seq", {}), row.get(f"{tool}_conc", {})
            ours_seq, ours_conc = (
                ours.get(f"{tool}_seq", {}),
                ours.get(f"{tool}_conc", {}),
            )
            ratios = (
                "–"
                if key == "ours"
                else f"{ratio(seq.get('cpu_ms'), ours_seq.get('cpu_ms'))} / {ratio(conc.get('cpu_ms'), ours_conc.get('cpu_ms'))}"
            )
            errors = sum(x.get("errors", 0) for x in (seq, conc))
            name = row["tool_names"].get(tool, tool) + (f" ({errors} errors)" if errors else "")
            busy = " ⁽ᶜ⁾" if conc.get("client_core_busy", 0) > 0.9 else ""
            lines.append(
                f"| {row['server']} | `{name}` | {fmt(seq.get('rate'), 0)}{foreign(seq)} | {fmt(seq.get('p50_ms'))} / {fmt(seq.get('p99_ms'))} | {fmt(seq.get('cpu_ms'), 3)} "
                f"| {fmt(conc.get('rate'), 0)}{busy}{foreign(conc)} | {fmt(conc.get('p50_ms'))} / {fmt(conc.get('p99_ms'))} | {fmt(conc.get('cpu_ms'), 3)} | {ratios} |"
            )
    floor_notes = []
    for key, label in (("stack", "our stack's floor"), ("bare", "the bare aiohttp floor")):
        floor = mcp.get(key, {})
        if not (floor.get("delete_conc") and ours.get("delete_conc")):
            continue
        parts = []
        for tool in ("delete", "identify"):
            for mode, mode_label in (("seq", "seq"), ("conc", "c16")):
                a, b = (
                    ours.get(f"{tool}_{mode}", {}).get("cpu_ms"),
                    floor.get(f"{tool}_{mode}", {}).get("cpu_ms"),
                )
                if a and b:
                    parts.append(f"{ours['tool_names'][tool]} {mode_label} {a - b:+.3f} ms ({a / b:.2f}×)")
        floor_notes.append(f"Ours over {label}, CPU per call: " + "; ".join(parts) + ".")
    floor_note = "\n\n".join(floor_notes)
    official = ours.get("official_client", {})
    for tool in ("delete", "identify"):
        row = official.get(tool)
        if row:
            lines.append(
                f"| ours via official `mcp` ClientSession | `{ours['tool_names'][tool]}` | {fmt(row['rate'], 0)}{foreign(row)} | {fmt(row['p50_ms'])} / {fmt(row['p99_ms'])} | {fmt(row['cpu_ms'], 3)} | | | | |"
            )
    if "error" in official:
        lines.append(
            f"| ours via official `mcp` ClientSession | – | failed: {one_line(official['error'])} | | | | | | |"
        )
    lines.append(
        "\n⁽ᶜ⁾ the client core (load generator + fake upstream) was > 90 % busy: calls/s there is bound by the client side, not the server; CPU per call is unaffected."
        "\n⁽ᵇ⁾ other processes on the machine used > 0.25 cores during that batch: its figures are suspect.\n"
    )
    if floor_note:
        lines.append(floor_note + "\n")

    rest = results.get("rest", {})
    if rest:
        lines.append(
            f"### REST, {cfg.concurrency} connections ({rest.get('load_tool')}; {cfg.repeats} runs of {cfg.rest_duration:.0f} s per row, medians; p50/p99 as wrk reports them)\n"
        )
        lines.append("| target | method | req/s | p50 / p99 ms | server CPU ms/req | ÷ floor CPU |")
        lines.append("|---|---|---|---|---|---|")
        floor = rest["targets"].get("upstream direct (floor)", {})
        for name, rows in rest["targets"].items():
            if "error" in rows:
                lines.append(f"| {name} | – | failed: {one_line(rows['error'])} | | | |")
                continue
            for method, row in rows.items():
                if "error" in row:
                    lines.append(f"| {name} | {method} | failed: {one_line(row['error'])} | | | |")
                    continue
                errors = f" ({row['errors']} non-2xx)" if row.get("errors") else ""
                lines.append(
                    f"| {name} | {method}{errors} | {fmt(row['rate'], 0)}{foreign(row)} | {fmt(row.get('p50_ms'))} / {fmt(row.get('p99_ms'))} | {fmt(row['cpu_ms'], 3)} | {ratio(row['cpu_ms'], floor.get(method, {}).get('cpu_ms'))} |"
                )
        lines.append("")

    startup = results.get("startup", {})
    if startup:
        lines.append(
            "### Start-up to ready (process start → every port's `/health` answers; FastMCP: → `/mcp` answers)\n"
        )
        lines.append("| what | median s | min s | max s | runs |")
        lines.append("|---|---|---|---|---|")
        for key, label in (
            (
                "app",
                f"ours, Customer.io App capability: {startup.get('app_capability')}",
            ),
            (
                "capabilities_dir",
                f"ours, `capabilities/` as a whole ({startup.get('capabilities_dir_files')} files)",
            ),
            ("fastmcp_app", "FastMCP from_openapi, App OpenAPI (115 operations)"),
        ):
            row = startup.get(key)
            if not row:
                continue
            if "error" in row:
                lines.append(f"| {label} | failed: {one_line(row['error'])} | | | |")
            else:
                lines.append(
                    f"| {label} | {fmt(row['median_s'], 3)} | {fmt(row['min_s'], 3)} | {fmt(row['max_s'], 3)} | {row['runs']} |"
                )
        for key in ("ours", "fastmcp", "arcade"):
            row = mcp.get(key)
            if row and "startup_s" in row:
                lines.append(
                    f"| {row['server']}, Track (MCP benchmark's start, 1 run) | {fmt(row['startup_s'], 3)} | | | 1 |"
                )
        lines.append("")

    lines.append("### `tools/list` size (the JSON-RPC message, bytes)\n")
    lines.append("| server | tools | bytes | bytes/tool |")
    lines.append("|---|---|---|---|")
    sizes = []
    full = results.get("full_track", {})
    if full and "bytes" in full:
        sizes.append(
            (
                f"ours, {full['source']} ({full['files']} files) on one port",
                full["tools"],
                full["bytes"],
            )
        )
    elif full.get("error"):
        lines.append(f"| ours, corpus Track capabilities | failed: {one_line(full['error'])} | | |")
    for key in ("ours", "fastmcp", "arcade"):
        row = mcp.get(key)
        if row and "tools_list_bytes" in row:
            label = {
                "ours": "ours, capabilities/track-customers.yaml",
                "fastmcp": "FastMCP, Track OpenAPI",
                "arcade": "Arcade, Track toolkit",
            }[key]
            sizes.append((label, row["tools"], row["tools_list_bytes"]))
    if "app_tools_list_bytes" in startup:
        sizes.append(
            (
                f"ours, App capability ({startup.get('app_source', 'generated')})",
                startup["app_tools"],
                startup["app_tools_list_bytes"],
            )
        )
    if "fastmcp_app_tools_list_bytes" in startup:
        sizes.append(
            (
                "FastMCP, App OpenAPI",
                startup["fastmcp_app_tools"],
                startup["fastmcp_app_tools_list_bytes"],
            )
        )
    for label, tools, size in sizes:
        lines.append(f"| {label} | {tools} | {size:,} | {size / max(tools, 1):,.0f} |")
    lines.append("")
    if ours.get("rss_after_mb"):
        lines.append(
            f"RSS of our MCP server: {ours['rss_ready_mb']:.1f} MB when ready, {ours['rss_after_mb']:.1f} MB after {ours['calls_total']:,} tools/call.\n"
        )

    lines.append("### DESIGN §6 bars\n")
    lines.append("| bar | measured | verdict |")
    lines.append("|---|---|---|")
    for label, value, bar, ok in bar_rows(results):
        lines.append(
            f"| {label} | {value} | {'PASS' if ok else ('FAIL' if ok is not None else 'not measured')} (bar {bar}) |"
        )
    return "\n".join(lines)


def bar_rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    rows = []
    mcp = results.get("mcp", {})
    ours, fast = mcp.get("ours", {}), mcp.get("fastmcp", {})
    for mode, label in (("seq", "sequential"), ("conc", "16 concurrent")):
        ratios = []
        for t in ("delete", "identify"):
            a, b = (
                fast.get(f"{t}_{mode}", {}).get("cpu_ms"),
                ours.get(f"{t}_{mode}", {}).get("cpu_ms"),
            )
            if a and b:
                ratios.append(a / b)
        low = min(ratios) if ratios else None
        rows.append(
            (
                f"MCP tools/call server CPU, FastMCP's ÷ ours, {label} (lowest of 2 tools)",
                f"{low:.1f}×" if low else "–",
                f"≥ {BARS['fastmcp_ratio']:.0f}×",
                low >= BARS["fastmcp_ratio"] if low else None,
            )
        )
    targets = results.get("rest", {}).get("targets", {})
    ratio = _worst_ratio(targets.get("naftiko REST (ours)", {}), targets.get("nginx proxy_pass", {}))
    rows.append(
        (
            "REST server CPU per request, ours ÷ nginx proxy_pass (worst of PUT/DELETE)",
            f"{ratio:.2f}×" if ratio else "–",
            f"≤ {BARS['nginx_ratio']:.0f}×",
            ratio <= BARS["nginx_ratio"] if ratio else None,
        )
    )
    startup = results.get("startup", {})
    app, fast_app = startup.get("app", {}), startup.get("fastmcp_app", {})
    faster = fast_app["median_s"] / app["median_s"] if "median_s" in app and "median_s" in fast_app else None
    rows.append(
        (
            "start-up to ready, App capability (median), FastMCP's ÷ ours",
            f"{faster:.1f}×" if faster else "–",
            f"≥ {BARS['startup_ratio']:.0f}×",
            faster >= BARS["startup_ratio"] if faster else None,
        )
    )
    full = results.get("full_track", {})
    size = full.get("bytes") or ours.get("tools_list_bytes")
    label = f"Track tools/list ({full['source']})" if full.get("bytes") else "Track tools/list (track-customers.yaml)"
    rows.append(
        (
            label,
            f"{size / 1024:.1f} KB" if size else "–",
            f"≤ {BARS['track_tools_list_kb']:.0f} KB",
            size / 1024 <= BARS["track_tools_list_kb"] if size else None,
        )
    )
    return rows


def _worst_ratio(ours: dict[str, Any], peer: dict[str, Any]) -> float | None:
    """max over the methods both measured of ours' CPU per request ÷ the peer's."""
    ratios = [
        mine["cpu_ms"] / theirs["cpu_ms"]
        for method, mine in ours.items()
        if isinstance(mine, dict)
        and isinstance(theirs := peer.get(method), dict)
        and mine.get("cpu_ms")
        and theirs.get("cpu_ms")
    ]
    return max(ratios) if ratios else None


def machine_notes() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    notes = [
        f"`nproc`: {os.cpu_count()}",
        f"CPU: {model}",
        f"Python: {platform.python_version()} ({sys.executable})",
        f"kernel: {platform.release()}",
    ]
    versions = []
    try:
        import importlib.metadata as md

        versions.append(f"aiohttp {md.version('aiohttp')}")
    except Exception:  # noqa: BLE001, S110 - a missing version is no reason to fail the report
        pass
    if PEER_PY.exists():
        probe = subprocess.run(
            [
                str(PEER_PY),
                "-c",
                "import importlib.metadata as m\nfor n in ('fastmcp','mcp','arcade-mcp-server','arcade-customerio-track-api','uvicorn','httpx'):\n  try: print(n, m.version(n))\n  except Exception: pass",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        versions += [line for line in probe.stdout.splitlines() if line]
    for tool, flag in (("nginx", "-v"), ("wrk", "-v")):
        exe = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
        if exe:
            run = subprocess.run([exe, flag], capture_output=True, text=True, check=False)
            text = (run.stdout + run.stderr).strip().splitlines()
            versions.append(text[0] if text else tool)
    notes.append("versions: " + ", ".join(versions))
    return notes


def write_results(path: Path, table: str, cfg: Config, command: str, results: dict[str, Any]) -> None:
    pin = (
        f"server under test pinned to CPU {sorted(cfg.server_cpus)}, load generator + fake upstream + wrk on CPU {sorted(cfg.client_cpus)}"
        if cfg.pin
        else "no CPU pinning"
    )
    notes = "\n".join(f"- {n}" for n in machine_notes() + [pin])
    problems = results.get("problems") or []
    problem_text = "\n".join(f"- {one_line(p, 300)}" for p in problems) if problems else "- none"
    path.write_text(
        f"""# Benchmark results

Latest run: {dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}

Command (from the repository root): `{command}`

Machine:
{notes}

{table}

Problems during the run:
{problem_text}

How each figure is taken: bench/README.md. Raw figures of this run: `{cfg.tmp / "results.json"}` (temp, not kept).
"""
    )


# ---------------------------------------------------------------- main


def ensure_peers(cfg: Config) -> None:
    if PEER_PY.exists() or cfg.args.skip_peers or cfg.args.no_setup:
        return
    log("bench/.venv-peers missing: running bench/setup_peers.sh")
    subprocess.run(["bash", str(BENCH / "setup_peers.sh")], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small counts (a smoke run; figures are noisier)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="measured runs of each batch; the median is reported (default 3)",
    )
    parser.add_argument(
        "--seq-calls",
        type=int,
        default=3000,
        help="sequential calls per tool per run (default 3000: CPU time is read in 10 ms ticks, so ours needs ~60 of them)",
    )
    parser.add_argument(
        "--conc-calls",
        type=int,
        default=5000,
        help="calls per tool per run at --concurrency (default 5000)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="warm-up calls per tool before measuring",
    )
    parser.add_argument(
        "--official-calls",
        type=int,
        default=500,
        help="sequential calls per tool through the official mcp client",
    )
    parser.add_argument(
        "--time-cap",
        type=float,
        default=45.0,
        help="seconds at most per measured batch",
    )
    parser.add_argument(
        "--rest-duration",
        type=float,
        default=4.0,
        help="seconds of wrk per REST run (--repeats runs per row)",
    )
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--skip-peers", action="store_true", help="ours only (no FastMCP/Arcade)")
    parser.add_argument(
        "--servers",
        default="ours,stack,bare,fastmcp,arcade",
        help="MCP servers to measure (comma-separated; default all: ours,stack,bare,fastmcp,arcade)",
    )
    parser.add_argument("--skip-rest", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server and the client to separate CPUs",
    )
    parser.add_argument(
        "--no-setup",
        action="store_true",
        help="do not run bench/setup_peers.sh when the peers' venv is missing",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"))
    args = parser.parse_args()
    if args.quick:
        args.seq_calls, args.conc_calls, args.warmup, args.official_calls = (
            200,
            500,
            50,
            100,
        )
        args.rest_duration, args.startup_runs, args.time_cap = 2.0, 3, 20.0
    command = "python bench/run_all.py" + "".join(f" {a}" for a in sys.argv[1:])
    cfg = Config(args)
    if cfg.client_cpus:
        os.sched_setaffinity(0, cfg.client_cpus)
    ensure_peers(cfg)
    results: dict[str, Any] = {"command": command, "problems": []}
    with Processes(cfg.tmp) as procs:
        upstream_port = free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        upstream = procs.start(
            "fake-upstream",
            [sys.executable, str(BENCH / "fake_upstream.py"), str(upstream_port)],
            cpus=cfg.client_cpus,
        )
        wait_until(http_answers(f"{upstream_url}/__bench/stats"), 30, upstream)
        log(f"fake upstream on {upstream_url}; logs in {cfg.tmp}")
        targets: list[tuple[str, Target]] = [
            ("ours", Ours(free_port())),
            ("stack", StackFloor()),
            ("bare", BareAiohttp()),
        ]
        if args.skip_peers:
            pass
        elif not PEER_PY.exists():
            results["problems"].append(
                "peers' venv missing (bash bench/setup_peers.sh): FastMCP and Arcade not measured"
            )
        else:
            targets += [("fastmcp", FastMcp()), ("arcade", Arcade())]
        wanted = {name.strip() for name in args.servers.split(",")}
        targets = [(key, target) for key, target in targets if key in wanted]
        results["mcp"] = {}
        for key, target in targets:
            log(f"MCP: {target.name}")
            try:
                results["mcp"][key] = bench_mcp_target(cfg, procs, upstream, upstream_url, target)
            except Exception as exc:  # noqa: BLE001
                results["mcp"][key] = {
                    "server": target.name,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            if "error" in results["mcp"][key]:
                results["problems"].append(f"MCP {target.name}: {results['mcp'][key]['error']}")
        for name, step in (
            (
                "rest",
                None if args.skip_rest else lambda: bench_rest(cfg, procs, upstream, upstream_port),
            ),
            (
                "startup",
                None if args.skip_startup else lambda: bench_startup(cfg, procs, upstream_url),
            ),
            ("full_track", lambda: bench_full_track(cfg, procs, upstream_url)),
        ):
            if step is None:
                continue
            log(f"{name}")
            try:
                results[name] = step()
            except Exception as exc:  # noqa: BLE001
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                results["problems"].append(f"{name}: {exc}")
                traceback.print_exc()
    results["problems"] += BUSY_NOTES
    (cfg.tmp / "results.json").write_text(json.dumps(results, indent=2, default=str))
    table = report(results, cfg, command)
    print(table)
    if not args.no_write:
        write_results(Path(args.results), table, cfg, command, results)
        log(f"wrote {args.results}")
    log(f"raw figures: {cfg.tmp / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

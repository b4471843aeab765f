"""Profile our MCP server's hot path under tools/call load with py-spy (from bench/.venv-peers).

Run: python bench/profile_mcp.py [--seconds 20] [--concurrency 16] [--tool delete-customer|identify-customer|both] [--traced]
Starts the fake upstream and `naftiko run` on capabilities/track-customers.yaml (with `--traced`,
its copy that samples every trace and exports to a local OTLP receiver, as bench/tracing_cost.py), drives tools/call
while `py-spy record` samples the server, then prints the functions with the most samples
(self and inclusive) and writes the raw collapsed stacks and a flame graph to /tmp.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Processes, cpu_seconds, free_port, http_answers, wait_until
from run_all import (
    IDENTIFY_BODY,
    PEER_PY,
    SECRETS,
    TRACK_CAPABILITY,
    mcp_load,
    naftiko_argv,
)

PY_SPY = PEER_PY.parent / "py-spy"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    for marker in ("/runtime/naftiko/", "/site-packages/", "/lib/python3."):
        if marker in file:
            file = file.split(marker, 1)[1]
            if marker == "/lib/python3.":
                file = "stdlib/" + file.split("/", 1)[-1]
            elif marker == "/runtime/naftiko/":
                file = "naftiko/" + file
            break
    return f"{file}:{match.group('func')}"


def analyse(raw: Path, top: int) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [
            short(f) for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        total += n
        self_counts[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "", f"top {top} by self samples:"]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in self_counts.most_common(top)]
    lines += ["", f"top {top} naftiko functions by inclusive samples:"]
    ours = [(name, c) for name, c in inclusive.most_common() if name.startswith("naftiko/")][:top]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in ours]
    lines += ["", f"top {top} library functions by inclusive samples:"]
    libs = [
        (name, c)
        for name, c in inclusive.most_common()
        if not name.startswith("naftiko/") and "run_forever" not in name and "<module>" not in name
    ][:top]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in libs]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--tool",
        default="both",
        choices=["delete-customer", "identify-customer", "both"],
    )
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default="/tmp/naftiko-mcp-profile")
    parser.add_argument("--traced", action="store_true", help="trace every call, export to a local OTLP receiver")
    args = parser.parse_args()
    if not PY_SPY.exists():
        print("py-spy missing: bash bench/setup_peers.sh", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-profile-"))
    ncpu = os.cpu_count() or 1
    server_cpus, client_cpus = ({ncpu - 1}, set(range(ncpu - 1))) if ncpu >= 2 else (None, None)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    with Processes(tmp) as procs:
        up_port, mcp_port, rest_port = free_port(), free_port(), free_port()
        upstream = procs.start(
            "fake-upstream",
            [
                sys.executable,
                str(Path(__file__).parent / "fake_upstream.py"),
                str(up_port),
            ],
            cpus=client_cpus,
        )
        wait_until(http_answers(f"http://127.0.0.1:{up_port}/__bench/stats"), 30, upstream)
        env = {**os.environ, **SECRETS}
        capability = TRACK_CAPABILITY
        if args.traced:
            from tracing_cost import RECEIVER, traced_copy

            receiver_port = free_port()
            receiver = procs.start("receiver", [sys.executable, str(RECEIVER), str(receiver_port)], cpus=client_cpus)
            wait_until(http_answers(f"http://127.0.0.1:{receiver_port}/count"), 30, receiver)
            capability = traced_copy(tmp, f"http://127.0.0.1:{receiver_port}", free_port())
        argv = naftiko_argv() + [
            "run",
            "--upstream",
            f"track-customers=http://127.0.0.1:{up_port}/api/v1",
            "--port",
            f"track-customers-mcp={mcp_port}",
            "--port",
            f"track-customers-rest={rest_port}",
            str(capability),
        ]
        server = procs.start("naftiko", argv, env=env, cpus=server_cpus)
        wait_until(http_answers(f"http://127.0.0.1:{mcp_port}/health"), 30, server)
        url = f"http://127.0.0.1:{mcp_port}/mcp"
        tools = {
            "delete-customer": lambda i: {"identifier": f"cust-{i % 1000}"},
            "identify-customer": lambda i: {
                "identifier": f"cust-{i % 1000}",
                "body": IDENTIFY_BODY,
            },
        }
        chosen = list(tools) if args.tool == "both" else [args.tool]
        for tool in chosen:  # warm-up
            asyncio.run(mcp_load(url, {}, tool, tools[tool], 300, 4, 30))
        outputs = {}
        for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg")):
            out = Path(f"{args.out}.{suffix}")
            spy = subprocess.Popen(
                [
                    str(PY_SPY),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(int(args.seconds)),
                    "--format",
                    fmt,
                    "--output",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp / f"py-spy-{fmt}.log", "ab"),  # noqa: SIM115 - the child keeps it
            )
            time.sleep(1.0)
            calls = 0
            c0 = cpu_seconds(server.pid)
            deadline = time.perf_counter() + args.seconds - 1.5
            while time.perf_counter() < deadline:
                for tool in chosen:
                    result, _ = asyncio.run(
                        mcp_load(
                            url,
                            {},
                            tool,
                            tools[tool],
                            10**9,
                            args.concurrency,
                            min(3.0, max(deadline - time.perf_counter(), 0.1)),
                        )
                    )
                    calls += result.calls
            cpu = cpu_seconds(server.pid) - c0
            spy.wait(args.seconds + 60)
            outputs[fmt] = (out, calls, cpu)
        raw, calls, cpu = outputs["raw"]
        print(
            f"profiled {calls} tools/call ({', '.join(chosen)}), c{args.concurrency}; server CPU {1000 * cpu / max(calls, 1):.3f} ms/call while sampled (py-spy adds overhead)"
        )
        print(f"raw collapsed stacks: {raw}\nflame graph: {outputs['flamegraph'][0]}\n")
        print(analyse(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

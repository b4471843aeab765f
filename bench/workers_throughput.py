"""Requests per second of one REST route with `naftiko run` (one process) and `--workers 2`, same run.

Run: python bench/workers_throughput.py [--seconds 10] [--connections 64] [--threads 1] [--repeats 3]

Last, what a worker adds per request for the fleet's `/metrics` (supervisors/fleet_metrics.py):
the local `Metrics.observe` against `FleetMetrics.observe`, 100,000 calls each, timed in a
process of its own with prometheus-client's multiprocess folder set.

The route calls a local upstream: nginx answering `{}` from memory when nginx is installed (it
costs the machine least), else bench/fake_upstream.py. The load comes from `wrk` (C, epoll, its
own process); wrk is required. Each repeat starts a fresh server of each kind, one after the
other (1 worker, then 2), warms it up, then lets wrk run `--seconds`; every answer must be 200.
Prints, per run and as medians: requests/s, the cores the server used (its whole process tree,
utime+stime), its CPU per request, and how busy the whole machine was: the load generator and
the upstream share the cores with the workers, so on a 2-core box a second worker can only
use what they and other programs leave.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import (  # noqa: E402
    Processes,
    cpu_seconds,
    free_port,
    http_answers,
    system_busy_seconds,
    wait_for_quiet,
    wait_until,
)
from run_all import naftiko_argv  # noqa: E402

CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: items-api
      baseUri: http://127.0.0.1:{upstream}
      resources:
        - name: items
          path: /items/{{{{id}}}}
          operations:
            - name: get-item
              method: GET
  exposes:
    - type: rest
      namespace: items-rest
      port: {port}
      resources:
        - path: /items/{{{{id}}}}
          operations:
            - method: GET
              name: get-item
              call: items-api.get-item
"""

NGINX = """\
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/nginx-error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp};
  server {{
    listen 127.0.0.1:{port};
    keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{{}}'; }}
  }}
}}
"""


def start_upstream(processes: Processes, tmp: Path) -> tuple[int, str]:
    port = free_port()
    nginx = shutil.which("nginx")
    if nginx:
        (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, port=port))
        proc = processes.start("upstream", [nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)])
        kind = "nginx"
    else:
        proc = processes.start("upstream", [sys.executable, str(BENCH / "fake_upstream.py"), str(port)])
        kind = "bench/fake_upstream.py (aiohttp)"
    wait_until(http_answers(f"http://127.0.0.1:{port}/items/1"), 30, proc)
    return port, kind


@dataclass
class Run:
    rate: float  # requests/s
    cores: float  # CPU the server used, in cores
    busy: float  # CPU the whole machine used, in cores

    @property
    def cpu_per_request_us(self) -> float:
        return self.cores / self.rate * 1e6


def wrk(url: str, args: argparse.Namespace, seconds: float) -> tuple[float, int]:
    """(requests/s, answers that were not 2xx/3xx, socket errors included) of one wrk run."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", url]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return rate, bad + (sum(map(int, errors.groups())) if errors else 0)


def measure(processes: Processes, tmp: Path, upstream: int, workers: int, args: argparse.Namespace) -> Run:
    port = free_port()
    capability = tmp / f"items-{workers}.yaml"
    capability.write_text(CAPABILITY.format(upstream=upstream, port=port))
    flags = ["--workers", str(workers)] if workers > 1 else []  # 1: the plain `naftiko run`
    server = processes.start(f"naftiko-{workers}", [*naftiko_argv(), "run", *flags, str(capability)])
    url = f"http://127.0.0.1:{port}/items/1"
    try:
        if workers > 1:
            wait_until(lambda: "workers serving" in server.log.read_text(), 120, server)
        wait_until(http_answers(url), 60, server)
        wrk(url, args, 2)  # warm-up: connections pooled upstream, code paths hot
        cpu, machine, started = cpu_seconds(server.pid), system_busy_seconds(), time.perf_counter()
        rate, bad = wrk(url, args, args.seconds)
        wall = time.perf_counter() - started
        run = Run(rate, (cpu_seconds(server.pid) - cpu) / wall, (system_busy_seconds() - machine) / wall)
    finally:
        processes.stop(server, timeout=40)
    if bad:
        raise SystemExit(f"--workers {workers}: {bad} answers were not 200 or failed:\n{server.tail()}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    runs: dict[int, list[Run]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="naftiko-workers-bench-") as folder, Processes(Path(folder)) as processes:
        tmp = Path(folder)
        upstream, kind = start_upstream(processes, tmp)
        load = f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"
        print(f"upstream: {kind}; load: {load}; {args.repeats} repeats; {os.cpu_count()} CPUs")
        for repeat in range(args.repeats):
            for workers in (1, 2):
                wait_for_quiet()
                run = measure(processes, tmp, upstream, workers, args)
                runs[workers].append(run)
                print(f"  repeat {repeat + 1}: --workers {workers}: {describe(run)}")
    medians = {
        w: Run(*(statistics.median(getattr(r, f) for r in runs[w]) for f in ("rate", "cores", "busy"))) for w in runs
    }
    for workers, run in medians.items():
        print(f"median --workers {workers}: {describe(run)}")
    print(f"requests/s ratio (--workers 2 / 1): x{medians[2].rate / medians[1].rate:.2f}")
    print(observe_cost())


OBSERVE_COST = """
import time
from naftiko.exposes.metrics import Metrics
from naftiko.supervisors.fleet_metrics import FleetFigures
for name, metrics in (("local", Metrics()), ("fleet", FleetFigures().metrics("rest", 8080))):
    started = time.perf_counter()
    for _ in range(100_000):
        metrics.observe("GET", "/items/{id}", 200, 0.001, None)
    print(f"{name} {(time.perf_counter() - started) * 10:.2f}")
"""


def observe_cost() -> str:
    """One request's bookkeeping, local and fleet (µs), in a process of its own."""
    with tempfile.TemporaryDirectory(prefix="naftiko-observe-") as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        output = subprocess.run(
            [sys.executable, "-c", OBSERVE_COST], capture_output=True, text=True, env=env, check=True
        )
    costs = dict(line.split() for line in output.stdout.splitlines())
    return f"metrics per request: local {costs['local']} µs, with the fleet's counters {costs['fleet']} µs"


def describe(run: Run) -> str:
    return (
        f"{run.rate:,.0f} requests/s, server {run.cores:.2f} cores ({run.cpu_per_request_us:.0f} µs CPU per request),"
        f" machine busy {run.busy:.2f} cores"
    )


if __name__ == "__main__":
    main()

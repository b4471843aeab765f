"""CPU per upstream call of `NamespaceClient.send`, against the fake upstream in its own process.

Run from the repository root: python bench/client_cpu.py [--calls 20000] [--uvloop]
Starts `bench/fake_upstream.py` on a free port, sends CALLS sequential DELETEs and CALLS PUTs
with a small JSON body, and prints the client process's CPU time (`time.process_time`) per call.
The client's transport is the `ConnectionPool` the engine builds when no proxy or upstream TLS
option is set (compile.py:_Compiler._client).
With two CPUs or more, the client is pinned to the first and the upstream to the second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from naftiko.consumes.client import ClientSettings, NamespaceClient
from naftiko.consumes.connections import ConnectionPool
from naftiko.consumes.request import OutgoingRequest

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the fake upstream did not start at {url}")


async def measure(base: str, calls: int) -> dict[str, float]:
    settings = ClientSettings()
    transport = ConnectionPool(settings.connect_timeout, settings.max_body_bytes, None, None)
    client = NamespaceClient("bench", None, settings, transport)
    requests = {
        "DELETE": lambda: OutgoingRequest("DELETE", f"{base}/api/v1/customers/42"),
        "PUT": lambda: OutgoingRequest(
            "PUT",
            f"{base}/api/v1/customers/42",
            headers={"Content-Type": "application/json"},
            body=b'{"email":"a@example.com","created_at":1700000000}',
        ),
    }
    out = {}
    try:
        for name, build in requests.items():
            for _ in range(200):  # warm up: connection opened, caches filled
                await client.send(build())
            start = time.process_time()
            for _ in range(calls):
                response = await client.send(build())
                assert response.status == 200, response.status
            out[name] = (time.process_time() - start) / calls * 1e6
    finally:
        await client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop")
    args = parser.parse_args()
    port = free_port()
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    if pinned:
        os.sched_setaffinity(0, {cpus[0]})
    upstream = subprocess.Popen(
        ["taskset", "-c", str(cpus[1]), sys.executable, str(HERE / "fake_upstream.py"), str(port)]
        if pinned
        else [sys.executable, str(HERE / "fake_upstream.py"), str(port)],
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/__bench/stats")
        if args.uvloop:
            import uvloop

            results = uvloop.run(measure(base, args.calls))
        else:
            results = asyncio.run(measure(base, args.calls))
    finally:
        os.killpg(upstream.pid, signal.SIGTERM)
        upstream.wait(10)
    loop = "uvloop" if args.uvloop else "asyncio"
    for name, micros in results.items():
        print(f"{name:6} {micros:7.1f} µs CPU/call  ({args.calls} sequential calls, {loop})")


if __name__ == "__main__":
    main()

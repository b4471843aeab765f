"""The official customerio SDK → naftiko gateway → a loopback stand-in for Customer.io."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import customerio

GATEWAY = Path(__file__).resolve().parents[2] / "capabilities" / "customer-io-gateway.yaml"


class StandIn(BaseHTTPRequestHandler):
    """Answers 200 to everything and prints what arrived, as Customer.io would see it."""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print(
            f"  upstream got {self.command} {self.path} auth={self.headers['Authorization'][:14]}… body={body.decode() or '-'}"
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        "CUSTOMER_IO_USER": "real-site-id",
        "CUSTOMER_IO_PASS": "real-api-key",
        "GATEWAY_SITE_ID": "team-a",
        "GATEWAY_API_KEY": "team-a-key",
    }
    command = [
        sys.executable,
        "-m",
        "naftiko.cli",
        "run",
        str(GATEWAY),
        "--upstream",
        f"customer-io-track=http://127.0.0.1:{upstream.server_port}",
        "--port",
        f"customer-io-gateway={port}",
    ]
    runtime = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        cio = customerio.CustomerIO("team-a", "team-a-key")
        cio.base_url = f"http://127.0.0.1:{port}/api/v1"
        print("SDK → gateway → Customer.io stand-in (the gateway swaps team-a's credentials for the real ones):")
        cio.identify(id="cust-42", email="ada@example.com", plan="pro")
        cio.track(customer_id="cust-42", name="purchase", data={"amount": 99})
        cio.suppress(customer_id="cust-42")
        cio.delete(customer_id="cust-42")
    finally:
        runtime.terminate()
        runtime.wait(timeout=30)
        upstream.shutdown()


if __name__ == "__main__":
    main()

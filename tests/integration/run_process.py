"""`naftiko run` as a subprocess for end-to-end network tests, and the raw-socket tools they use:
a recording upstream in its own thread, a minimal HTTP/1.1 answer reader, RSS and access-log probes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from support import free_port

REST = "track-customers-rest"
MCP = "track-customers-mcp"
CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMER_IO")}
    return {**base, **(extra or {})}


def run_to_exit(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    """Run `naftiko run ARGS` expecting it to stop by itself (a refused start); (exit code, stderr)."""
    process = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "run", *args],
        capture_output=True, text=True, env=_environment(env), timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return process.returncode, process.stderr


class Naftiko:
    """`naftiko run` on the embedded seed with its REST and MCP exposures on free ports.

    stderr goes to a file (never a pipe: thousands of access-log lines would fill a pipe and block
    the server), so `log()` can read the access log at any time."""

    def __init__(self, *flags: str, dry_run: bool = True, env: dict[str, str] | None = None):
        self.rest_port, self.mcp_port = free_port(), free_port()
        self._stderr = tempfile.NamedTemporaryFile(prefix="naftiko-run-", suffix=".log", delete=False)  # noqa: SIM115
        self.stderr_path = Path(self._stderr.name)
        args = [
            *(["--dry-run"] if dry_run else []),
            "--port",
            f"{REST}={self.rest_port}",
            "--port",
            f"{MCP}={self.mcp_port}",
            *flags,
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "naftiko.cli", "run", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr, env=_environment(env),
        )  # fmt: skip
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 30
        for port in (self.rest_port, self.mcp_port):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"naftiko run exited with {self.process.returncode}: {self.stderr()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"port {port} never listened: {self.stderr()[-2000:]}") from None
                    time.sleep(0.02)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log(self) -> list[dict[str, Any]]:
        """The JSON lines of stderr (access log and JSON-formatted records)."""
        entries = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    pass
        return entries

    def wait_log(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The first access-log entry for which `predicate(entry)` holds (the log flushes every 50 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [entry for entry in self.log() if predicate(entry)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no such access-log line in: {self.stderr()[-3000:]}")
            time.sleep(0.05)

    def rss_kb(self) -> int:
        """The server's resident set size (VmRSS) in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._stderr.close()
        self.stderr_path.unlink(missing_ok=True)

    def __enter__(self) -> Naftiko:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a recording upstream ----------------------------------------------------------------------


@dataclass
class Upstream:
    """An aiohttp app on 127.0.0.1 in its own thread and loop: records every request, answers
    `{"ok": true}` after `delay` seconds, and keeps the highest number of requests in flight."""

    delay: float = 0.0
    port: int = field(default_factory=free_port)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests.append((request.method, request.path, dict(request.headers)))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self._runner.setup())
        self.loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Upstream:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# -- raw HTTP/1.1 ------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Answers:
    """Parses answers (Content-Length framed, as our server writes them) from bytes fed in pieces."""

    def __init__(self, head_only: bool = False) -> None:
        self.buffer = bytearray()
        self.done: list[Answer] = []
        self.head_only = head_only

    def feed(self, data: bytes) -> list[Answer]:
        self.buffer += data
        found = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
            length = 0 if self.head_only or status in (100, 204, 304) else int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                break
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            if status == 100:
                continue
            answer = Answer(status, headers, body)
            found.append(answer)
            self.done.append(answer)
        return found


def connect(port: int, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        return tls.wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def read_answer(sock: socket.socket, parser: Answers | None = None) -> Answer:
    """Read exactly one answer; raises ConnectionError on EOF before it is whole."""
    parser = parser or Answers()
    while not parser.done:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a whole answer ({len(parser.buffer)} bytes read)")
        parser.feed(data)
    return parser.done.pop(0)


def head(
    method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"", host: str | None = None
) -> bytes:
    """A request's bytes; `host=None` sends `Host: 127.0.0.1:PORT`, `host=""` sends no Host."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host is None:
        host = f"127.0.0.1:{port}"
    if host:
        lines.append(f"Host: {host}")
    sent = dict(headers or {})
    if body or method in ("POST", "PUT", "PATCH"):
        sent.setdefault("Content-Length", str(len(body)))
    lines += [f"{name}: {value}" for name, value in sent.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str | None = None,
    raw: bytes | None = None,
) -> Answer:
    """One request on a fresh connection, its answer read whole."""
    with connect(port) as sock:
        sock.sendall(raw if raw is not None else head(method, path, port, headers, body, host))
        return read_answer(sock, Answers(head_only=method == "HEAD"))


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the peer closes (EOF or reset) or `seconds` pass; (closed, what was read)."""
    deadline = time.monotonic() + seconds
    received = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(received)
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return False, bytes(received)
        except (ConnectionResetError, ssl.SSLError):
            return True, bytes(received)
        if not data:
            return True, bytes(received)
        received += data


MCP_INIT = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
).encode()
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

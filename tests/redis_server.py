"""A real `redis-server` on a free loopback port, for the shared-state tests and bench: no
persistence (a restart comes back empty, as a crashed cache would), killable and restartable on
the same port. Tests skip with a reason when the binary is absent (.ci/run installs it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from support import free_port


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    return binary


class RedisServer:
    def __init__(self, binary: str):
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.command(b"PING") != b"+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: the way a crashed or partitioned Redis goes away (nothing saved)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def command(self, *words: bytes) -> bytes | None:
        """One inline command's first reply line, or None when nothing answers."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b" ".join(words) + b"\r\n")
                return sock.recv(65536).split(b"\r\n")[0]
        except OSError:
            return None

    def keys(self, pattern: str) -> list[str]:
        """The keys matching `pattern` (KEYS, fine for a test's handful)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"KEYS " + pattern.encode() + b"\r\n")
            time.sleep(0.05)
            lines = sock.recv(1 << 20).split(b"\r\n")
        return [line.decode() for line in lines[2::2] if line]

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

"""Processes for end-to-end tests: `naftiko run` and Prism, started on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered:\n{output(process)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: any status will do
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def started(command: Sequence[str], ready_url: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A subprocess whose output goes to a temporary file (`output(process)` reads it): a pipe
    nobody reads fills up after 64 KB of access-log lines and stalls the process."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        process.log = log  # type: ignore[attr-defined]
        try:
            wait_http(ready_url, process)
            yield process
        finally:
            stop(process)


def output(process: subprocess.Popen) -> str:
    """What a process from `started` has written so far."""
    log = getattr(process, "log", None)
    if log is None:
        return process.stdout.read() if process.stdout else ""
    log.flush()
    log.seek(0)
    return log.read()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

"""Worker processes of one language, seen from the server: start, ask, kill, replace.

A worker answers one call at a time; the pool keeps `size` of them and hands an idle one to
each call. A call that passes its deadline (1.5 times the step timeout: the worker
itself stops a script at the timeout, unless it is stuck in native code) kills its worker (SIGKILL, the whole process group) and the next call starts a
fresh one. Answers are bounded (MAX_ANSWER bytes per line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from typing import Any

import orjson

from .settings import ScriptingSettings

MAX_ANSWER = 16 << 20
START_TIMEOUT = 30.0  # seconds for a worker to import its engine and compile the programs


class ScriptFailure(Exception):
    """A script call that produced no result; `kind` is timeout, memory, statements, result or error."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


def worker_command(language: str) -> list[str]:
    return [sys.executable, "-I", "-m", "naftiko.scripting.worker", language]


class Worker:
    def __init__(self, language: str, setup: bytes):
        self.language = language
        self.setup = setup
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *worker_command(self.language),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={},
            cwd="/",
            start_new_session=True,
            limit=MAX_ANSWER,
        )
        try:
            ready = await asyncio.wait_for(self._ask(self.setup), START_TIMEOUT)
        except (TimeoutError, ScriptFailure):
            await self.kill()
            raise ScriptFailure(f"the {self.language} script worker did not start") from None
        if "error" in ready:
            await self.kill()
            raise ScriptFailure(str(ready["error"]))

    async def _ask(self, line: bytes) -> dict[str, Any]:
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(line)
            await process.stdin.drain()
            answer = await process.stdout.readline()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError) as exc:
            await self.kill()
            raise ScriptFailure(f"the script's answer could not be read ({exc})") from None
        if not answer:
            await self.kill()
            raise ScriptFailure("ran out of memory or crashed (its worker process ended)", "memory")
        return orjson.loads(answer)

    async def call(self, key: str, context: Any, deadline: float) -> Any:
        if self.process is None:
            await self.start()
        try:
            request = orjson.dumps({"key": key, "context": context}, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError as exc:
            raise ScriptFailure(f"its context cannot be given as JSON ({exc})") from None
        try:
            answer = await asyncio.wait_for(self._ask(request), deadline)
        except TimeoutError:
            await self.kill()
            raise ScriptFailure("timed out", "timeout") from None
        except asyncio.CancelledError:  # the caller went away: its answer must not reach the next call
            self._kill_now()
            raise
        if "ok" in answer:
            return answer["ok"]
        kind = str(answer.get("kind", "error"))
        if kind == "memory":  # a fresh process for the next call, rather than one that hit its limit
            await self.kill()
        raise ScriptFailure(str(answer.get("error")), kind)

    def _kill_now(self) -> asyncio.subprocess.Process | None:
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        return process

    async def kill(self) -> None:
        process = self._kill_now()
        if process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)


class Pool:
    def __init__(self, language: str, programs: Mapping[str, list[list[str]]], settings: ScriptingSettings, size: int):
        timeout_ms = settings.timeout_ms
        setup = json.dumps(
            {"programs": programs, "timeout_ms": timeout_ms, "statement_limit": settings.statement_limit}
        )
        self.workers = [Worker(language, setup.encode() + b"\n") for _ in range(size)]
        self.deadline = timeout_ms / 1000 * 1.5  # the worker stops scripts at the timeout; killed here if it cannot
        self.idle: asyncio.Queue[Worker] | None = None

    async def call(self, key: str, context: Any) -> Any:
        if self.idle is None:
            self.idle = asyncio.Queue()
            for worker in self.workers:
                self.idle.put_nowait(worker)
        worker = await self.idle.get()
        try:
            return await worker.call(key, context, self.deadline)
        finally:
            self.idle.put_nowait(worker)

    async def close(self) -> None:
        for worker in self.workers:
            await worker.kill()

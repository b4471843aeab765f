"""The script engines of one capability: the programs compiled at load, and a pool of worker
processes per language, started on the first call of a script of that language."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .pool import Pool, ScriptFailure, worker_command
from .py_sandbox import compile_files
from .settings import ScriptingSettings
from .sources import ScriptFile

POOL_SIZE = 1  # workers per language and capability: a trivial call takes well under a millisecond
CHECK_TIMEOUT = 30.0


class ScriptRuntime:
    def __init__(self, settings: ScriptingSettings):
        self.settings = settings
        self.programs: dict[str, dict[str, list[list[str]]]] = {"javascript": {}, "python": {}}
        self.pools: dict[str, Pool] = {}
        self.counts = {"executions": 0, "failures": 0, "timeouts": 0}

    def add(self, language: str, key: str, files: list[ScriptFile]) -> None:
        self.programs[language][key] = [[f.name, f.text] for f in files]

    async def run(self, language: str, key: str, context: Any) -> Any:
        """The script's `result`; raises pool.ScriptFailure."""
        pool = self.pools.get(language)
        if pool is None:
            pool = self.pools[language] = Pool(language, self.programs[language], self.settings, POOL_SIZE)
        self.counts["executions"] += 1
        try:
            return await pool.call(key, context)
        except ScriptFailure as failure:
            self.counts["timeouts" if failure.kind == "timeout" else "failures"] += 1
            raise

    def stats(self) -> dict[str, int]:
        return dict(self.counts)

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()


def syntax_errors(language: str, files: list[ScriptFile]) -> list[str]:
    """`name line N: message` for each file that does not compile, checked at load."""
    pairs = [[f.name, f.text] for f in files]
    if language == "python":
        return compile_files(pairs)[1]
    try:
        checked = subprocess.run(
            worker_command("check-javascript"),
            input=json.dumps({"files": pairs}).encode() + b"\n",
            capture_output=True,
            env={},
            timeout=CHECK_TIMEOUT,
            check=False,
        )
        return list(json.loads(checked.stdout)["errors"])
    except (subprocess.TimeoutExpired, ValueError, KeyError):
        return [f"{' + '.join(f.name for f in files)}: the JavaScript syntax check did not answer"]

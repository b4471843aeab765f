"""The worker process of one script language: `python -I -m naftiko.scripting.worker LANGUAGE`.

Started by pool.py with an empty environment. Protocol, one JSON object per line:
1. the parent sends `{"programs": {key: [[file name, text], ...]}, "timeout_ms": n,
   "statement_limit": n}`; the worker compiles them, lowers its limits, and answers
   `{"ready": true}` (or `{"error": …}`);
2. then for each call the parent sends `{"key": …, "context": …}` and the worker answers
   `{"ok": result}` or `{"error": message, "kind": timeout|memory|statements|result|error}`.

Limits, set once everything the worker needs is loaded: the data segment may grow by
DATA_BUDGET bytes (Python raises MemoryError; V8 array buffers fail, a V8 heap past its own
limit ends the process and the parent starts another), no file may be written (RLIMIT_FSIZE
0), few descriptors, no core dumps, and for Python no new processes or threads.

`check-javascript` mode reads one `{"files": …}` line and answers `{"errors": […]}`: V8's
syntax check at load, in a process of its own so the server never loads V8.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

DATA_BUDGET = {"javascript": 160 << 20, "python": 128 << 20}
_OUT_OF_MEMORY = b'{"error":"ran out of memory"'


def _data_in_use() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit(language: str) -> None:
    data = _data_in_use() + DATA_BUDGET[language]
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    if language == "python":
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.buffer.write(json.dumps(data).encode() + b"\n")
    sys.stdout.buffer.flush()


def _serve(language: str, sandbox: Any) -> None:
    """Answer calls until stdin ends; `sandbox` has `errors` (from compiling) and `answer(request)`."""
    if sandbox.errors:
        _reply({"error": "; ".join(sandbox.errors)})
        return
    _limit(language)
    _reply({"ready": True})
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        answer = sandbox.answer(json.loads(line))
        out.write(answer)
        out.flush()
        if answer.startswith(_OUT_OF_MEMORY):
            return  # a fresh process for the next call


def main() -> None:
    os.environ.clear()
    language = sys.argv[1]
    setup = json.loads(sys.stdin.buffer.readline() or b"{}")
    if language == "check-javascript":
        from .js_sandbox import syntax_errors

        _reply({"errors": syntax_errors(setup.get("files", []))})
    elif language == "javascript":
        from .js_sandbox import Isolate

        _serve(language, Isolate(setup["programs"], setup["timeout_ms"], setup["statement_limit"]))
    elif language == "python":
        from .py_sandbox import Sandbox

        _serve(language, Sandbox(setup["programs"], setup["statement_limit"], setup["timeout_ms"]))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # V8's threads would keep a finished interpreter from exiting

"""Python script steps, inside the worker process: RestrictedPython code with guarded builtins.

RestrictedPython refuses at compile time every name and attribute starting with `_` (so no
`().__class__.__base__.__subclasses__()`, no `__globals__`, no `__import__`), and turns
attribute reads, item access, iteration and writes into calls of the guards given here.
`import` reaches only ALLOWED_MODULES, each seen through a read-only copy holding its public
functions, classes and constants (never a module: `datetime.sys` would lead to `os`). There is
no `open`, `eval`, `exec`, `compile`, `globals`, `vars`, `getattr` or `type`. The process
itself has an empty environment and kernel limits (worker.py).
"""

from __future__ import annotations

import json
import operator
import signal
import sys
import types
from collections.abc import Mapping
from typing import Any

from RestrictedPython import compile_restricted_exec, limited_builtins, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector

ALLOWED_MODULES = ("math", "statistics", "json", "datetime", "re")
_EXTRA_BUILTINS = {
    "range": range,  # limited_builtins caps it at 1000 elements; the worker's memory limit bounds it instead
    "tuple": tuple,
    "sum": sum,
    "min": min,
    "max": max,
    "sorted": sorted,
    "any": any,
    "all": all,
    "enumerate": enumerate,
    "zip": zip,
    "map": map,
    "filter": filter,
    "reversed": reversed,
    "dict": dict,
    "list": list,
    "set": set,
    "frozenset": frozenset,
    "iter": iter,
    "next": next,
}
_REFUSED_BUILTINS = ("__build_class__", "setattr", "delattr")
_INPLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "|=": operator.ior,
    "&=": operator.iand,
    "^=": operator.ixor,
}


class ScriptStopped(BaseException):
    """Raised into a script that passed its timeout or statement limit (a BaseException, so
    `except Exception` in the script does not swallow it)."""


def compile_files(files: list[list[str]]) -> tuple[list[types.CodeType], list[str]]:
    """Each file's code, or the errors (`name line N: ...`) when one does not compile."""
    codes, errors = [], []
    for name, text in files:
        compiled = compile_restricted_exec(text, filename=f"<script {name}>")
        if compiled.errors:
            errors.extend(f"{name} {_line_first(e)}" for e in compiled.errors)
        else:
            codes.append(compiled.code)
    return codes, errors


def _line_first(error: str) -> str:
    """RestrictedPython's `Line 3: SyntaxError: …` as `line 3: SyntaxError: …`."""
    return "line" + error[4:] if error.startswith("Line ") else error


def _module_view(name: str) -> types.SimpleNamespace:
    module = __import__(name)
    public = {
        key: value
        for key, value in vars(module).items()
        if not key.startswith("_") and not isinstance(value, types.ModuleType)
    }
    return types.SimpleNamespace(**public)


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    function = _INPLACE.get(op)
    if function is None:
        raise SyntaxError(f"operator {op} is not supported in scripts")
    return function(x, y)


class Sandbox:
    """The compiled programs of one worker and what every run of them is given."""

    def __init__(self, programs: Mapping[str, list[list[str]]], statement_limit: int, timeout_ms: int):
        self.programs: dict[str, list[types.CodeType]] = {}
        self.errors: list[str] = []
        for key, files in programs.items():
            codes, errors = compile_files(files)
            self.programs[key] = codes
            self.errors.extend(errors)
        self.statement_limit = statement_limit
        self.timeout = timeout_ms / 1000
        self.modules = {name: _module_view(name) for name in ALLOWED_MODULES}
        builtins = {k: v for k, v in {**safe_builtins, **limited_builtins}.items() if k not in _REFUSED_BUILTINS}
        builtins.update(_EXTRA_BUILTINS)
        builtins["__import__"] = self._import
        self.builtins = builtins
        self.statements = 0
        signal.signal(signal.SIGALRM, self._alarm)

    def _import(self, name: str, globals=None, locals=None, fromlist=(), level=0) -> Any:
        view = self.modules.get(name)
        if view is None or level:
            raise ImportError(f"import of {name!r} is not allowed in scripts (allowed: {', '.join(ALLOWED_MODULES)})")
        return view

    def _alarm(self, signum: int, frame: Any) -> None:
        raise ScriptStopped("timeout")

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        if not frame.f_code.co_filename.startswith("<script "):
            return None
        return self._count

    def _count(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.statements += 1
            if self.statements > self.statement_limit:
                raise ScriptStopped("statements")
        return self._count

    def answer(self, request: dict[str, Any]) -> bytes:
        return dumps_result(self.run(request["key"], request["context"]))

    def run(self, key: str, context: Any) -> dict[str, Any]:
        """`{"ok": result}` or `{"error": message, "kind": ...}`."""
        scope: dict[str, Any] = {
            "__builtins__": self.builtins,
            "__name__": "script",
            "_getattr_": safer_getattr,
            "_getitem_": default_guarded_getitem,
            "_getiter_": default_guarded_getiter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": full_write_guard,
            "_inplacevar_": _inplacevar,
            "_print_": PrintCollector,
            "context": context,
        }
        self.statements = 0
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        sys.settrace(self._trace)
        try:
            for code in self.programs[key]:
                exec(code, scope)
        except ScriptStopped as stop:
            if str(stop) == "timeout":
                return {"error": "timed out", "kind": "timeout"}
            return {"error": f"passed the statement limit ({self.statement_limit})", "kind": "statements"}
        except MemoryError:
            return {"error": "ran out of memory", "kind": "memory"}
        except RecursionError:
            return {"error": "RecursionError: maximum recursion depth exceeded", "kind": "error"}
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}{_where(exc)}", "kind": "error"}
        finally:
            sys.settrace(None)
            signal.setitimer(signal.ITIMER_REAL, 0)
        if "result" not in scope:
            return {"error": "the script assigned nothing to `result`", "kind": "result"}
        return {"ok": scope["result"]}


def _where(exc: BaseException) -> str:
    """` (analyze-readings.py line 4)`: the innermost line of a script in the traceback."""
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<script "):
            found = f" ({filename[8:-1]} line {tb.tb_lineno})"
        tb = tb.tb_next
    return found


def dumps_result(reply: dict[str, Any]) -> bytes:
    """The reply as one JSON line; a result JSON cannot carry becomes an error naming why."""
    try:
        return json.dumps(reply, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    except (TypeError, ValueError) as exc:
        message = {"error": f"the result is not JSON: {exc}", "kind": "result"}
        return json.dumps(message).encode() + b"\n"

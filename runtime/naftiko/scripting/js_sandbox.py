"""JavaScript script steps, inside the worker process: one V8 isolate (mini-racer, no Node).

At start, each program (dependencies then file, one function scope, strict mode) is compiled
into a function of a registry; then every global the embedding adds (timers; `console` becomes
one whose output is discarded) and
the ones no data shaping needs (`WebAssembly`, `SharedArrayBuffer`, `Atomics`, weak refs) are
deleted, and every object reachable from `globalThis` (intrinsics and their prototypes, the
global object itself) is frozen; a prototype's methods become accessors so that a script can
still give its own objects a `constructor` or `toString` key. A call therefore starts from the same state as the one
before it: its variables live in its own function scope, and it cannot change a global or a
prototype. The answer is built in JavaScript (`JSON.stringify` with a check for functions,
symbols and non-finite numbers), so the worker forwards one string.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from py_mini_racer import JSOOMException, JSParseException, JSTimeoutException, MiniRacer

from .js_statements import instrument

HEAP_LIMIT = 64 << 20  # bytes of V8 heap per isolate; array buffers are bounded by the process limit

_LOCKDOWN = r"""
(function () {
  "use strict";
  const steps = globalThis.__naftiko_steps;
  for (const name of ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "__timer_manager",
                      "console", "WebAssembly", "SharedArrayBuffer", "Atomics", "FinalizationRegistry",
                      "WeakRef", "__naftiko_steps"]) {
    const d = Object.getOwnPropertyDescriptor(globalThis, name);
    if (d === undefined) continue;
    if (d.configurable) delete globalThis[name]; else globalThis[name] = undefined;  // mini-racer's timers
  }
  const discard = function () {};  // console output goes nowhere, as Python's print does
  globalThis.console = {log: discard, info: discard, warn: discard, error: discard, debug: discard};
  const check = function (key, value) {
    const at = key === "" ? "" : " at key " + JSON.stringify(key);
    if (typeof value === "function") throw new TypeError("it holds a function" + at);
    if (typeof value === "symbol") throw new TypeError("it holds a symbol" + at);
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("it holds " + value + at);
    return value;
  };
  const describe = function (e) {
    const stack = e && typeof e.stack === "string" ? e.stack : "";
    const text = e instanceof Error ? e.name + ": " + e.message : "uncaught " + String(e);
    return JSON.stringify({error: text, kind: "error", stack: stack});
  };
  globalThis.__naftiko_run = function (key, context) {
    let value;
    try {
      value = steps[key](context);
    } catch (e) {
      return describe(e);
    }
    if (value === undefined) {
      return JSON.stringify({error: "the script assigned nothing to `result`", kind: "result"});
    }
    try {
      return JSON.stringify({ok: value}, check);
    } catch (e) {
      return JSON.stringify({error: "the result is not JSON: " + (e && e.message), kind: "result"});
    }
  };
  // A frozen prototype's data property would make `obj.constructor = x` or `counts["toString"] = 1`
  // throw (the "override mistake"); as in SES, it becomes an accessor whose setter gives the
  // object written to an own property instead.
  const tame = function (proto, key, value) {
    Object.defineProperty(proto, key, {
      get: function () { return value; },
      set: function (v) {
        if (this === proto) throw new TypeError("Cannot assign to read only property " + String(key));
        Object.defineProperty(this, key, {value: v, writable: true, enumerable: true, configurable: true});
      },
    });
  };
  const seen = new Set();
  const freeze = function (o, isPrototype) {
    if ((typeof o !== "object" && typeof o !== "function") || o === null || seen.has(o)) return;
    seen.add(o);
    for (const k of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k);
      if (d === undefined) continue;
      if ("value" in d) {
        freeze(d.value, k === "prototype");
        if (isPrototype && d.writable && d.configurable) tame(o, k, d.value);
      } else { freeze(d.get, false); freeze(d.set, false); }
    }
    freeze(Object.getPrototypeOf(o), true);
    Object.freeze(o);
  };
  freeze(globalThis, false);
})();
"""

_HEADER = (
    '(function (context) {\n"use strict";\nvar result; let counted = 0; const TICK = function () {'
    ' if (++counted > LIMIT) throw new RangeError("passed the statement limit (LIMIT)"); };\nreturn (function () {\n'
)
_FOOTER = "\nreturn result;\n})();\n})"
_AT_LINE = re.compile(r"<anonymous>:(\d+):\d+")


def program_source(files: list[list[str]], statement_limit: int) -> tuple[str, list[tuple[int, str]]]:
    """The function of one step, its statements counted, and the first line of each file in
    it (for error messages). The counter's name is one no script can know."""
    tick = f"__naftiko_tick_{secrets.token_hex(6)}"
    header = _HEADER.replace("TICK", tick).replace("LIMIT", str(statement_limit))
    parts, starts, line = [header], [], header.count("\n") + 1
    for name, text in files:
        starts.append((line, name))
        parts.append(instrument(text, tick) + "\n;\n")
        line += text.count("\n") + 2
    parts.append(_FOOTER)
    return "".join(parts), starts


def syntax_errors(files: list[list[str]]) -> list[str]:
    """`name line N: SyntaxError: …` for each file V8 will not parse (checked on its own, in
    strict mode, as it will run). Nothing in the files is executed."""
    racer = MiniRacer()
    errors = []
    try:
        for name, text in files:
            try:
                racer.eval('(function () {"use strict";' + text + "\n})")
            except JSParseException as exc:
                first = str(exc).split("\n")[0]  # "<anonymous>:3: SyntaxError: Unexpected token ';'"
                match = re.match(r"<anonymous>:(\d+): (.*)", first)
                errors.append(f"{name} line {match.group(1)}: {match.group(2)}" if match else f"{name}: {first}")
    finally:
        racer.close()
    return errors


class Isolate:
    def __init__(self, programs: Mapping[str, list[list[str]]], timeout_ms: int, statement_limit: int):
        self.timeout_ms = timeout_ms
        self.racer = MiniRacer()
        self.racer.set_hard_memory_limit(HEAP_LIMIT)
        self.starts: dict[str, list[tuple[int, str]]] = {}
        self.errors: list[str] = []
        self.racer.eval("globalThis.__naftiko_steps = Object.create(null);")
        for key, files in programs.items():
            source, self.starts[key] = program_source(files, statement_limit)
            try:
                self.racer.eval(f"__naftiko_steps[{json.dumps(key)}] = {source};")
            except JSParseException as exc:
                self.errors.append(f"{' + '.join(n for n, _ in files)}: {str(exc).splitlines()[0]}")
        self.racer.eval(_LOCKDOWN)

    def answer(self, request: dict[str, Any]) -> bytes:
        return self.run(request["key"], json.dumps(request["context"]))

    def run(self, key: str, context_json: str) -> bytes:
        """The reply line: `{"ok": …}` or `{"error": …, "kind": …}`."""
        try:
            reply = self.racer.eval(f"__naftiko_run({json.dumps(key)}, {context_json})", timeout=self.timeout_ms)
        except JSTimeoutException:
            return b'{"error":"timed out","kind":"timeout"}\n'
        except JSOOMException:
            return b'{"error":"ran out of memory","kind":"memory"}\n'
        if '"stack":' in reply:
            reply = self._located(key, reply)
        return reply.encode() + b"\n"

    def _located(self, key: str, reply: str) -> str:
        """The error with the script file and line it came from, without V8's stack."""
        failure: dict[str, Any] = json.loads(reply)
        if failure["error"].startswith("RangeError: passed the statement limit"):
            failure["kind"] = "statements"
        match = _AT_LINE.search(failure.pop("stack", ""))
        if match:
            line = int(match.group(1))
            for start, name in reversed(self.starts[key]):
                if line >= start:
                    failure["error"] += f" ({name} line {line - start + 1})"
                    break
        return json.dumps(failure)

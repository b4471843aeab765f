"""JavaScript statement counting (scripting/js_statements.py): the rewritten program computes
what the original did, counts what runs, and keeps every line where it was."""

from __future__ import annotations

import json

from py_mini_racer import MiniRacer

from naftiko.scripting.js_statements import instrument

PROGRAM = """function f(a) { for (let i = 0; i < 3; i++) a++; if (a) b(); else c(); return a }
function b() {} function c() {}
var x = 3, ks = [1];
switch (x) { case 1: b(); break; default: c() }
const g = (v) => v * 2; do x--; while (x > 0)
label: for (const k of ks) { continue label }
while (x < 5) x++
for (; x < 10;) x++;
var r = [1, 2].map((v) => ({ v }))
result = [f(1), g(2), x, r]
"""


def run(source: str) -> tuple[object, int]:
    racer = MiniRacer()
    try:
        wrapped = f"(function () {{ var n = 0; function T() {{ n++ }}; var result;\n{source}\n; return JSON.stringify([result, n]) }})()"
        return tuple(json.loads(racer.eval(wrapped, timeout=5000)))  # type: ignore[return-value]
    finally:
        racer.close()


def test_the_rewritten_program_answers_the_same_and_counts_statements() -> None:
    original, uncounted = run(PROGRAM)
    rewritten, counted = run(instrument(PROGRAM, "T"))
    assert uncounted == 0 and rewritten == original == [4, 4, 10, [{"v": 1}, {"v": 2}]]
    assert counted > 30  # every statement, loop turn and arrow call that ran


def test_lines_are_kept() -> None:
    assert instrument(PROGRAM, "T").count("\n") == PROGRAM.count("\n")


def test_an_empty_loop_body_still_counts() -> None:
    source = "var i = 0; for (; i < 1000; i++) {} while (i < 2000) i++; result = i"
    assert run(instrument(source, "T")) == (2000, 1000 + 1000 + 4)  # both loops turn 1000 times, 4 statements

"""The worker pool (scripting/pool.py): a call given up by its caller does not leave its answer
for the next call, and a context JSON cannot carry is a clear failure."""

from __future__ import annotations

import asyncio

import pytest

from naftiko.scripting.pool import ScriptFailure
from naftiko.scripting.runtime import ScriptRuntime
from naftiko.scripting.settings import ScriptingSettings
from naftiko.scripting.sources import ScriptFile


def runtime(language: str, slow: str, quick: str) -> ScriptRuntime:
    scripts = ScriptRuntime(ScriptingSettings(timeout_ms=5000))
    scripts.add(language, "slow", [ScriptFile("slow", None, slow)])  # type: ignore[arg-type]
    scripts.add(language, "quick", [ScriptFile("quick", None, quick)])  # type: ignore[arg-type]
    return scripts


@pytest.mark.parametrize(
    ("language", "slow", "quick"),
    [
        ("javascript", 'result = /^(a+)+$/.test("a".repeat(28) + "b") ? "slow" : "slow";', "result = context.n;"),
        (
            "python",
            'import re\nresult = "slow" if re.match(r"^(a+)+$", "a" * 27 + "b") else "slow"',
            'result = context["n"]',
        ),
    ],
)
async def test_a_cancelled_call_does_not_answer_the_next_one(language: str, slow: str, quick: str) -> None:
    scripts = runtime(language, slow, quick)
    try:
        assert await scripts.run(language, "quick", {"n": 1}) == 1  # the worker is up
        pending = asyncio.create_task(scripts.run(language, "slow", {}))
        await asyncio.sleep(0.2)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert await scripts.run(language, "quick", {"n": 2}) == 2
    finally:
        await scripts.close()


async def test_a_context_json_cannot_carry_is_a_clear_failure() -> None:
    scripts = runtime("python", "result = 1", "result = 1")
    try:
        with pytest.raises(ScriptFailure, match="cannot be given as JSON"):
            await scripts.run("python", "quick", {"raw": object()})
    finally:
        await scripts.close()

"""The `script` step kind (semantics §6.6): JavaScript or Python over the call so far.

The script sees one variable, `context`: the call's parameters, every earlier step's output
under its step name (`context['list-members']`), and the step's own `with`; what it assigns
to `result` is the step's output. The script runs in a worker process (naftiko/scripting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..scripting.pool import ScriptFailure
from ..scripting.runtime import ScriptRuntime
from .plans import StepHost, StepState
from .results import Result, ScriptFailed

if TYPE_CHECKING:
    from .capability import Target


@dataclass(frozen=True, slots=True)
class ScriptStep:
    name: str
    language: str
    key: str  # the program's key in the runtime (one per step of the capability)
    target: Target  # kind "step", no operation: the step's `with`
    runtime: ScriptRuntime
    refusal: str | None  # why governance refuses it (scripting disabled, language not allowed)

    @property
    def summary(self) -> str:
        return f"{self.language} script {self.name}"

    async def run(self, host: StepHost, state: StepState) -> Result | None:
        if self.refusal is not None:
            return ScriptFailed(self.name, f"script step {self.name!r} refused: {self.refusal}")
        context = {**state.params, **state.context, **host.wire(self.target, state.params)}
        try:
            result = await self.runtime.run(self.language, self.key, context)
        except ScriptFailure as failure:
            if failure.kind == "timeout":
                timeout = self.runtime.settings.timeout_ms
                return ScriptFailed(
                    self.name,
                    f"script step {self.name!r} timed out after {timeout} ms (management.scripting.timeout)",
                    timed_out=True,
                )
            return ScriptFailed(self.name, f"script step {self.name!r} failed: {failure}")
        state.store(self.name, result)
        if host.dry_run:
            state.described.append({"step": self.name, "result": result})
        return None

"""The `call` and `lookup` step kinds (semantics §6.2, §6.3; choices that differ from the
reference are listed in plans.py). Each runs itself against the plan's `StepHost`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..templates import Template
from .jsonpath import JsonPath
from .plans import NOTHING, Lookup, StepHost, StepState, evaluate
from .results import Result, Success

if TYPE_CHECKING:
    from .capability import Target


@dataclass(frozen=True, slots=True)
class ConsumedOutput:
    """A consumed operation's named output parameter (`{name, value: $.path}`), used by steps."""

    name: str
    path: JsonPath


def step_output(raw: Any, outputs: tuple[ConsumedOutput, ...]) -> Any:
    """Semantics §6.2 step 5: raw JSON, each array element augmented, or `{name: extracted}`."""
    if not outputs:
        return raw
    if isinstance(raw, list):
        augmented = []
        for element in raw:
            element = dict(element) if isinstance(element, dict) else {}
            for output in outputs:
                element[output.name] = output.path.select(element)
            augmented.append(element)
        return augmented
    extracted = {output.name: output.path.select(raw) for output in outputs}
    return extracted if any(v is not None for v in extracted.values()) else raw


@dataclass(frozen=True, slots=True)
class CallStep:
    name: str
    target: Target  # kind "step": the consumed operation and the step's `with`
    outputs: tuple[ConsumedOutput, ...]

    @property
    def summary(self) -> str:
        return self.target.operation.key

    async def run(self, host: StepHost, state: StepState) -> Result | None:
        if host.dry_run:
            described = await host.describe(self.target, state.params)
            if not isinstance(described, dict):
                return described
            state.described.append({"step": self.name, **described})
            state.store(self.name, described)  # later steps (scripts) run on the would-be request
            return None
        result = await host.send(self.target, state.params)
        if not isinstance(result, Success):
            return result
        state.store(self.name, step_output(result.body, self.outputs))
        state.last = result
        return None


@dataclass(frozen=True, slots=True)
class LookupStep:
    name: str
    index: str
    match: str
    value: JsonPath | Template
    fields: tuple[str, ...]

    @property
    def summary(self) -> str:
        return f"lookup {self.index}"

    async def run(self, host: StepHost, state: StepState) -> Result | None:
        found = self.find(state.context, host.lookup(state.target, state.params, {}))
        if found is not NOTHING:
            state.store(self.name, found)
        return None

    def find(self, context: Mapping[str, Any], lookup: Lookup) -> Any:
        """The listed fields of the matching entry (one per value when the value is an array),
        or NOTHING when nothing matches."""
        data = context.get(self.index)
        wanted = evaluate(self.value, context, lookup)
        if isinstance(wanted, list):
            found = [m for w in wanted if (m := self._one(data, w)) is not NOTHING]
            return found if found else NOTHING
        if wanted is None:
            return NOTHING
        return self._one(data, wanted)

    def _one(self, data: Any, wanted: Any) -> Any:
        text = _text(wanted)
        candidates = data if isinstance(data, list) else [data]
        for entry in candidates:
            if isinstance(entry, dict) and self.match in entry and _text(entry[self.match]) == text:
                return {field: entry.get(field) for field in self.fields}
        return NOTHING


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)

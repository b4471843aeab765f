"""Executable plans of targets that are not a single consumed call: mocks and steps.

A `Target` with `plan=None` is the single-call case (the hot path). Otherwise its plan says
what `Capability.invoke` runs, compiled once at load like everything else:

- `MockPlan`: no upstream; the outputs' `value`s (constants, or templates over the inputs and
  binds) build the answer (semantics §4.4).
- `StepsPlan`: steps run in order, then `mappings` build the answer (semantics §6.1–6.4,
  §6.6). Each step kind is a class that runs itself against a `StepHost` (the `Capability`,
  which sends and describes consumed calls): `call` and `lookup` in steps.py, `script` in
  steps_script.py. The plan never imports the capability, so there is no import circle.

Choices that differ from the reference engine (semantics §12), and why:

- Mock values keep a JSON type: a template that is exactly one placeholder (`"{{count}}"`)
  keeps the input's type, and a rendered text is converted to the declared `number`,
  `integer` or `boolean` when it parses as one (the reference always answers strings, which
  contradicts the declared type and the MCP `outputSchema` we publish). A value that is
  exactly one input the caller did not send is left out rather than rendered as "". A mock
  that builds nothing answers `{}` with status 200 (the reference's 204 has no MCP equivalent).
- A call step whose upstream answers 4xx/5xx, or cannot be reached, stops the steps and that
  failure is the result (the reference carries on and may answer 200 with mappings over a
  failed call, which hides the failure from the caller).
- A lookup step's result is stored under its name for mappings **and** for later steps'
  templates (`{{resolve-crew.role}}`); the reference keeps it from later steps for no stated
  reason (§6.3, decision 11), and a later call that needs a looked-up value is the obvious use.
- Mapping values are JSONPaths over the step outputs by name (`$.get-ship.dimensions.length`),
  so indexes and wildcards work too; a value that is not a path is a template over the inputs
  and step outputs (the documentation's `"{{…}}"` form, which the reference ignores).
- Step outputs of any response format are stored (the reference stores JSON bodies only).
- Dry run: each call step is described, not sent, and the description is that step's output
  (later steps, scripts included, run on it); the result lists every request that would be
  sent and every script result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..templates import MISSING, Template
from .jsonpath import JsonPath
from .progress import step_finished
from .results import DryRun, Failed, Result, Success

if TYPE_CHECKING:  # types only: the capability imports this module, never the reverse at run time
    from .capability import Target

Lookup = Callable[[str], Any]
NOTHING = object()
_JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


# -- mock outputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MockField:
    name: str
    type: str
    value: Template | Any  # NOTHING when the field carries no value of its own
    properties: tuple[MockField, ...] | None
    items: MockField | None

    def build(self, lookup: Lookup) -> Any:
        if self.value is not NOTHING:
            if not isinstance(self.value, Template):
                return self.value
            sole = self.value.sole_variable
            if sole is not None:
                found = lookup(sole)
                return NOTHING if found is MISSING or found is None else _coerce(found, self.type)
            return _coerce(self.value.render(lookup), self.type)
        if self.properties is not None:
            built = {p.name: v for p in self.properties if (v := p.build(lookup)) is not NOTHING}
            return built if built else NOTHING
        if self.type == "array":
            if self.items is None:
                return NOTHING
            item = self.items.build(lookup)
            return [] if item is NOTHING else [item]
        return NOTHING

    def variables(self) -> set[str]:
        found = set(self.value.variables) if isinstance(self.value, Template) else set()
        for child in (*(self.properties or ()), *((self.items,) if self.items else ())):
            found |= child.variables()
        return found

    @property
    def has_value(self) -> bool:
        if self.value is not NOTHING:
            return True
        return any(p.has_value for p in self.properties or ()) or (self.items is not None and self.items.has_value)

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {}
        if self.type in _JSON_TYPES:
            templated = isinstance(self.value, Template) and self.type in ("number", "integer", "boolean")
            schema["type"] = [self.type, "string"] if templated else self.type  # text that does not parse stays text
        if self.properties is not None:
            schema["properties"] = {p.name: p.json_schema() for p in self.properties}
        if self.items is not None:
            schema["items"] = self.items.json_schema()
        return schema


def _coerce(value: Any, declared: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if declared == "integer":
            return int(text)
        if declared == "number":
            number = float(text)
            return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    except ValueError:
        return value
    if declared == "boolean" and text in ("true", "false"):
        return text == "true"
    return value


def compile_mock_field(spec: Mapping[str, Any], name: str | None = None) -> MockField:
    value = spec.get("value", NOTHING)
    if isinstance(value, str):
        value = Template.compile(value)
    properties = spec.get("properties")
    items = spec.get("items")
    return MockField(
        name=str(name if name is not None else spec.get("name") or "value"),
        type=str(spec.get("type", "string")),
        value=value,
        properties=tuple(compile_mock_field(v, k) for k, v in properties.items() if isinstance(v, dict))
        if isinstance(properties, dict)
        else None,
        items=compile_mock_field(items) if isinstance(items, dict) else None,
    )


@dataclass(frozen=True, slots=True)
class MockOutputs:
    """Outputs built from `value`s: an object keyed by each output's name (`value` when unnamed).

    Duck-types `OutputShape` (`passthrough`, `apply`, `json_schema`) for the adapters."""

    fields: tuple[MockField, ...]
    passthrough = False

    def variables(self) -> set[str]:
        """Template variables of the values: the inputs (or binds) the mock reads."""
        return set().union(*(f.variables() for f in self.fields))

    def build(self, lookup: Lookup) -> dict[str, Any]:
        return {f.name: v for f in self.fields if (v := f.build(lookup)) is not NOTHING}

    def apply(self, body: Any, lookup: Lookup) -> Any:
        return self.build(lookup)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {f.name: f.json_schema() for f in self.fields}}


def compile_mock(specs: Any) -> MockOutputs | None:
    """The mock outputs of a declaration, or None when no output carries a `value`."""
    if not isinstance(specs, list):
        return None
    fields = tuple(compile_mock_field(s) for s in specs if isinstance(s, dict))
    return MockOutputs(fields) if any(f.has_value for f in fields) else None


@dataclass(frozen=True, slots=True)
class MockPlan:
    outputs: MockOutputs

    async def run(self, host: StepHost, target: Target, inputs: Mapping[str, Any]) -> Result:
        return Success(200, self.outputs.build(host.lookup(target, inputs, host.wire(target, inputs))))


# -- steps --------------------------------------------------------------------------------------


class StepHost(Protocol):
    """What steps need from the capability: its lookups, and sending or describing a consumed call."""

    dry_run: bool

    def lookup(self, target: Target, inputs: Mapping[str, Any], wired: Mapping[str, Any]) -> Lookup: ...

    def wire(self, target: Target, inputs: Mapping[str, Any]) -> dict[str, Any]: ...

    async def send(self, target: Target, params: Mapping[str, Any]) -> Result: ...

    async def describe(self, target: Target, params: Mapping[str, Any]) -> dict[str, Any] | Result: ...


@dataclass(slots=True)
class StepState:
    """One call's progress through its steps."""

    target: Target  # the exposed target whose steps run
    params: dict[str, Any]  # runtime parameters: inputs, `with`, and each step's output by name
    context: dict[str, Any] = field(default_factory=dict)  # step name → output (mappings, lookups)
    last: Success | None = None  # the last call step's answer (the fallback when no mapping resolves)
    described: list[dict[str, Any]] = field(default_factory=list)  # dry run: what each step did

    def store(self, name: str, output: Any) -> None:
        self.context[name] = self.params[name] = output


class Step(Protocol):
    name: str

    @property
    def summary(self) -> str:
        """What the step does, for people (`naftiko inspect`)."""
        ...

    async def run(self, host: StepHost, state: StepState) -> Result | None:
        """Run once: store the output in `state` and answer None to go on, or a Result that ends the call."""
        ...


def evaluate(value: JsonPath | Template, context: Mapping[str, Any], lookup: Lookup) -> Any:
    """A JSONPath over the step outputs, or a template (a sole placeholder keeps its type); None when absent."""
    if isinstance(value, JsonPath):
        return value.select(context)
    sole = value.sole_variable
    result = lookup(sole) if sole is not None else value.render(lookup)
    return None if result is MISSING else result


@dataclass(frozen=True, slots=True)
class StepMapping:
    target: tuple[str, ...]  # `route.from` nests
    value: JsonPath | Template


@dataclass(frozen=True, slots=True)
class StepsPlan:
    steps: tuple[Step, ...]
    mappings: tuple[StepMapping, ...]
    mock: MockOutputs | None = None  # answer when no mapping resolves and no call step ran

    async def run(self, host: StepHost, target: Target, inputs: Mapping[str, Any]) -> Result:
        state = StepState(target, {**inputs, **host.wire(target, inputs)})
        total = len(self.steps)
        for done, step in enumerate(self.steps, 1):
            stopped = await step.run(host, state)
            if stopped is not None:
                return stopped
            step_finished(step.name, done, total)
        if host.dry_run:
            return DryRun({"steps": state.described})
        lookup = host.lookup(target, state.params, {})
        mapped = self.map(state.context, lookup)
        if mapped is not None:
            return Success(200, mapped)
        if state.last is not None:
            if target.outputs.passthrough:
                return state.last
            return Success(state.last.status, target.outputs.apply(state.last.body, lookup))
        if self.mock is not None:
            return Success(200, self.mock.build(lookup))
        return Failed(f"{target.name}: the steps produced no result (no mapping resolved and no call step ran)")

    def map(self, context: Mapping[str, Any], lookup: Lookup) -> dict[str, Any] | None:
        """The mappings object, or None when no mapping resolved."""
        result: dict[str, Any] = {}
        resolved = False
        for mapping in self.mappings:
            value = evaluate(mapping.value, context, lookup)
            if value is None:
                continue
            node = result
            for key in mapping.target[:-1]:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = node[key] = {}
                node = child
            node[mapping.target[-1]] = value
            resolved = True
        return result if resolved else None

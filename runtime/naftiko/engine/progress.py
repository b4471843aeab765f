"""Step progress, for callers that report it (MCP `notifications/progress`).

A caller that wants to hear about steps sets an observer around its `Capability.invoke`; the
step loop reports each finished step. A context variable rather than an `invoke` parameter so
that REST, `call` and the single-call hot path pass nothing and pay nothing but one lookup per
step of a multi-step call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

StepObserver = Callable[[str, int, int], None]
"""Called with (step name, steps finished so far, total steps) after each step."""

_OBSERVER: ContextVar[StepObserver | None] = ContextVar("naftiko_step_observer", default=None)


@contextmanager
def observing_steps(observer: StepObserver) -> Iterator[None]:
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def step_finished(name: str, done: int, total: int) -> None:
    observer = _OBSERVER.get()
    if observer is not None:
        observer(name, done, total)

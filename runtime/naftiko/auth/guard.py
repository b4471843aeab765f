"""The one place callers are checked, for REST routes, forward resources, MCP, skill and control
ports alike (STYLE.md d: starlette's async authentication backend).

A check answers a refusal (`Response`) or None. The static schemes answer at once, so `guard`
adds no coroutine for them (the answer stays a plain `Response` or the handler's own
awaitable); an OAuth check needs I/O (keys, a refresh) and answers an awaitable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from ..http import Request, Response

Verdict = Response | None | Awaitable[Response | None]
Inner = TypeVar("Inner", bound=Callable[..., Any])


class CallerAuth(Protocol):
    """An exposure's authentication. `secrets`: values the log masker must hide."""

    @property
    def secrets(self) -> tuple[str, ...]: ...

    def check(self, request: Request) -> Verdict:
        """A refusal (401, 403, 503) or None when the caller may go on."""
        ...


def guard(auth: CallerAuth | None, inner: Inner) -> Inner:
    """`inner(request, *args)` behind `auth`; `inner` itself when there is none (costs nothing)."""
    if auth is None:
        return inner
    check = auth.check

    def guarded(request: Request, *args: Any) -> Any:
        verdict = check(request)
        if verdict is None:
            return inner(request, *args)
        if isinstance(verdict, Response):
            return verdict
        return _after(verdict, inner, request, args)

    return guarded  # type: ignore[return-value]


async def _after(verdict: Awaitable[Response | None], inner: Callable[..., Any], request: Request, args: tuple) -> Any:
    refusal = await verdict
    if refusal is not None:
        return refusal
    answer = inner(request, *args)
    return answer if isinstance(answer, Response) else await answer


class _Every:
    """Several exposures sharing a port that each declare authentication: a caller must pass all."""

    def __init__(self, auths: Sequence[CallerAuth]):
        self.auths = tuple(auths)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for auth in self.auths for s in auth.secrets)

    async def check(self, request: Request) -> Response | None:
        for auth in self.auths:
            verdict = auth.check(request)
            if verdict is not None and not isinstance(verdict, Response):
                verdict = await verdict
            if verdict is not None:
                return verdict
        return None


def every(auths: Sequence[CallerAuth | None]) -> CallerAuth | None:
    """One check for all of `auths` (None when there is none; the check itself when one)."""
    present = list({id(a): a for a in auths if a is not None}.values())
    if not present:
        return None
    return present[0] if len(present) == 1 else _Every(present)

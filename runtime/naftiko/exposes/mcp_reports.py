"""What a `tools/call` tells the client while it runs (DESIGN §4.7): `notifications/progress`
when the request carried `_meta.progressToken`, `notifications/message` when the client asked
for log messages (`logging/setLevel` on its session, or 2026-07-28's `_meta` logLevel).

A call that asked for neither never builds a `CallReport`: the tools/call hot path pays one
lookup in `_meta` and one on the session. The transport gives the `Notify` that carries each
notification: the POST's SSE stream on HTTP, stdout on stdio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Notify = Callable[[dict[str, Any]], None]

LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
# RFC 5424 severities, least severe first: a client at `warning` hears warning and above.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
LOGGER = "naftiko"


def progress_token(meta: Any) -> Any:
    """The request's progress token (a string or an integer), or None."""
    token = meta.get("progressToken") if isinstance(meta, Mapping) else None
    return token if isinstance(token, (str, int)) and not isinstance(token, bool) else None


def request_log_level(meta: Any) -> str | None:
    """2026-07-28: the level a request asks log messages at, in `_meta`; None when it sets none."""
    level = meta.get(LOG_LEVEL_KEY) if isinstance(meta, Mapping) else None
    return level if level in _RANK else None


class CallReport:
    """The notifications of one running tool call: start, each finished step, done."""

    __slots__ = ("_notify", "_tool", "_token", "_threshold", "_total", "_progress")

    def __init__(self, notify: Notify, tool: str, token: Any, level: str | None, total: int):
        self._notify = notify
        self._tool = tool
        self._token = token
        self._threshold = _RANK[level] if level is not None else None
        self._total = max(total, 1)
        self._progress = 0  # never decreases

    def started(self) -> None:
        self._report(0, f"{self._tool}: started")
        self._log("info", f"tools/call {self._tool} started")

    def step(self, name: str, done: int, total: int) -> None:
        """A `engine.progress.StepObserver`: one step of a multi-step tool finished."""
        self._total = max(total, 1)
        self._report(done, f"{self._tool}: step {name} finished ({done}/{total})")
        self._log("info", f"tools/call {self._tool}: step {name} finished ({done}/{total})")

    def finished(self, failed: bool) -> None:
        self._report(self._total, f"{self._tool}: {'failed' if failed else 'done'}")
        if failed:
            self._log("warning", f"tools/call {self._tool} failed")
        else:
            self._log("info", f"tools/call {self._tool} done")

    def _report(self, progress: int, message: str) -> None:
        if self._token is None:
            return
        self._progress = max(self._progress, progress)
        params = {"progressToken": self._token, "progress": self._progress, "total": self._total, "message": message}
        self._notify({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

    def _log(self, level: str, text: str) -> None:
        if self._threshold is None or _RANK[level] < self._threshold:
            return
        params = {"level": level, "logger": LOGGER, "data": text}
        self._notify({"jsonrpc": "2.0", "method": "notifications/message", "params": params})

"""What an invocation returns: one of a few typed outcomes, shared by REST, MCP and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Success:
    """A 2xx (or 3xx) upstream answer, mapped; `raw` is set when outputs pass the body through."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """The upstream answered with a 4xx/5xx status."""

    status: int
    body: Any
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Unreachable:
    message: str


@dataclass(frozen=True, slots=True)
class TimedOut:
    message: str


@dataclass(frozen=True, slots=True)
class RateLimited:
    """The namespace's rate limit (`--rate-limit`) is spent: nothing was sent upstream."""

    message: str
    retry_after: float  # seconds until a call may go


@dataclass(frozen=True, slots=True)
class InvalidInput:
    """A caller input that fails its declared or inferred type, or a value that cannot be sent."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """Anything else that stopped the call (unmappable upstream body, bad configuration)."""

    message: str


@dataclass(frozen=True, slots=True)
class ScriptFailed:
    """A script step threw, assigned a `result` JSON cannot carry, went past a limit
    (`timed_out` for `management.scripting.timeout`), or is refused by the scripting settings."""

    step: str
    message: str
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class DryRun:
    """The request that would have been sent, secrets masked."""

    request: dict[str, Any]


Result = Success | UpstreamError | Unreachable | TimedOut | RateLimited | InvalidInput | Failed | ScriptFailed | DryRun


def is_media(content_type: str | None) -> bool:
    """An image or audio answer: passed on as bytes (MCP image/audio content, REST as is), never decoded."""
    return content_type is not None and content_type.lstrip().lower().startswith(("image/", "audio/"))


def result_as_json(result: Result) -> dict[str, Any]:
    """One JSON shape for every outcome (used by `naftiko call`)."""
    match result:
        case Success(status, body):
            return {"ok": True, "status": status, "body": body}
        case UpstreamError(status, body):
            return {"ok": False, "error": "upstream_error", "status": status, "body": body}
        case Unreachable(message):
            return {"ok": False, "error": "upstream_unreachable", "message": message}
        case TimedOut(message):
            return {"ok": False, "error": "upstream_timeout", "message": message}
        case RateLimited(message, retry_after):
            return {"ok": False, "error": "rate_limited", "message": message, "retryAfter": round(retry_after, 3)}
        case InvalidInput(name, reason):
            return {"ok": False, "error": "invalid_input", "input": name, "message": reason}
        case Failed(message):
            return {"ok": False, "error": "failed", "message": message}
        case ScriptFailed(step, message, timed_out):
            return {
                "ok": False,
                "error": "script_timeout" if timed_out else "script_failed",
                "step": step,
                "message": message,
            }
        case DryRun(request):
            return {"ok": True, "dryRun": True, "request": request}
    raise TypeError(result)

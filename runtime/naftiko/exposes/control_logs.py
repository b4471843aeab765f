"""`/logs` on the control port (`management.logs`): logger levels, and the live log stream.

- `GET /logs` → `{"loggers": [{name, level, effectiveLevel}], "levels": [...]}`: `naftiko` and
  the loggers under it (`naftiko.access` is the per-request line, `naftiko.http` the server's).
- `GET /logs/{logger}` → one of them; 404 for a logger this runtime does not have.
- `PUT /logs/{logger}` `{"level": "ERROR"}` sets it (`null` inherits again) → the logger;
  400 for an unknown level or a body that is not that JSON object.
- `GET /logs/stream` → `text/event-stream`, one `data: <JSON>` event per record from then on
  (observability/logs.py); 429 problem past `max-subscribers` streams at once. A stream
  that ends (the client closes it) frees its slot.
`logs: true` enables level control and the stream; as an object, `level-control` (default
true), `stream` (default false) and `max-subscribers` (default 5) choose.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ..http import Request, Response, StreamingResponse, json_response
from ..observability.logs import HUB, LEVELS, describe, known_loggers, parse_level, set_level
from .problems import problem

log = logging.getLogger("naftiko")
DEFAULT_MAX_SUBSCRIBERS = 5


class LogSettings:
    """`management.logs` read once: which routes exist and how many streams at once."""

    def __init__(self, value: Any):
        if isinstance(value, Mapping):
            self.level_control = value.get("level-control") is not False
            self.stream = value.get("stream") is True
            limit = value.get("max-subscribers")
            self.max_subscribers = (
                limit
                if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
                else DEFAULT_MAX_SUBSCRIBERS
            )
        else:
            self.level_control = self.stream = value is True
            self.max_subscribers = DEFAULT_MAX_SUBSCRIBERS

    @property
    def enabled(self) -> bool:
        return self.level_control or self.stream


def loggers(request: Request) -> Response:
    return json_response({"loggers": [describe(name) for name in known_loggers()], "levels": list(LEVELS)})


def logger(request: Request) -> Response:
    name = _name(request)
    if name not in known_loggers():
        return _unknown(name)
    if request.method == "PUT":
        return _set(name, request.body)
    return json_response(describe(name))


def _set(name: str, body: bytes) -> Response:
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return problem(400, "bad-request", "Bad request", 'send a JSON object such as {"level": "ERROR"}')
    if not isinstance(document, dict) or "level" not in document:
        return problem(400, "bad-request", "Bad request", 'send a JSON object such as {"level": "ERROR"}')
    value = document["level"]
    level = None if value is None else parse_level(value)
    if value is not None and level is None:
        shown = value if isinstance(value, str) and len(value) <= 32 else "this value"
        return problem(
            400,
            "unknown-level",
            "Unknown level",
            f"{shown!r} is not a level; use one of {', '.join(LEVELS)} (or null to inherit)",
        )
    set_level(name, level)
    log.warning("log level of %s set to %s from the control port", name, describe(name)["effectiveLevel"])
    return json_response(describe(name))


def stream(settings: LogSettings):
    def handler(request: Request) -> Response:
        subscription = HUB.subscribe(settings.max_subscribers)
        if subscription is None:
            response = problem(
                429,
                "too-many-subscribers",
                "Too many subscribers",
                f"at most {settings.max_subscribers} log streams may be open at once",
            )
            response.headers["Retry-After"] = "5"
            return response
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(subscription, headers=headers, content_type="text/event-stream; charset=utf-8")

    return handler


def _name(request: Request) -> str:
    return request.path.rstrip("/").removeprefix("/logs/")


def _unknown(name: str) -> Response:
    shown = name if len(name) <= 100 else name[:100] + "…"
    return problem(404, "unknown-logger", "Unknown logger", f"no logger {shown!r}; GET /logs lists them")

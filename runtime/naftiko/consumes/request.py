"""The outgoing HTTP request, as built by the engine before it is sent (or shown by --dry-run)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class OutgoingRequest:
    """One request to a consumed API. `url` has no query string; `query` holds it in order."""

    method: str
    url: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

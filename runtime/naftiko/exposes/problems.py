"""RFC 9457 problem details: the one error shape of every REST answer we produce ourselves."""

from __future__ import annotations

import json
from typing import Any

from ..http import Response

PROBLEM_BASE = "https://naftiko.dev/problems/"
CONTENT_TYPE = "application/problem+json"


def problem(status: int, kind: str, title: str, detail: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(status=status, text=json.dumps(body, ensure_ascii=False), content_type=CONTENT_TYPE)

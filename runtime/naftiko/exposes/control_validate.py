"""`POST /config/validate` on the control port: check a capability document, change nothing.

The body is the document (YAML or JSON; `Content-Type` application/yaml, text/yaml,
application/json, text/plain, or none). It gets the checks `naftiko validate` makes
(validation.check_file: schema, semantics, and what `naftiko run` would refuse), in a worker
thread so the port keeps serving, at most two at a time. `?strict=true` holds it to the official
alpha2 schema. Answers:
- 200 `{"valid": true, "errors": [], "warnings": [...]}`;
- 422 problem+json with `errors` `[{line, column, path, message}]` (as `naftiko validate
  --format json` gives them) when the document is YAML but not a valid capability;
- 400 problem+json when the body is not YAML at all (with the parse error located);
- 415 for another media type; 413 past the server's body limit (the server answers that).
The document is checked as if it were placed beside the capability file the control port
serves: its relative references (imported consumes, bind files, script locations) are read
from that folder, so a document that imports shared consumes validates as it would on disk.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from ..http import Request, Response, json_response
from ..validation import FileReport, check_file
from .problems import problem

MEDIA_TYPES = frozenset(
    {
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/x-yaml",
        "application/json",
        "text/plain",
        "application/octet-stream",
    }
)
RUNNING_AT_ONCE = 2


class Validation:
    """The route's handler; one per control port, holding its bound on validations running."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # where the document's relative references are read
        self.running = asyncio.Semaphore(RUNNING_AT_ONCE)

    async def __call__(self, request: Request) -> Response:
        return await validate(request, self.running, self.folder)


async def validate(request: Request, running: asyncio.Semaphore, folder: Path) -> Response:
    if request.content_type not in MEDIA_TYPES:
        return problem(
            415, "unsupported-media-type", "Unsupported media type", "send the capability document as application/yaml"
        )
    if not request.body.strip():
        return problem(400, "not-yaml", "Bad request", "the body is empty: send a capability document")
    strict = request.query.get("strict", "").lower() in ("true", "1", "yes")
    async with running:
        report = await asyncio.to_thread(_check, request.body, strict, folder)
    errors = [d.as_json() for d in report.errors]
    warnings = [d.as_json() for d in report.warnings]
    if report.valid:
        return json_response({"valid": True, "errors": [], "warnings": warnings})
    if any(d.origin == "yaml" for d in report.errors):
        return _invalid(400, "not-yaml", "Bad request", "the body is not YAML", errors, warnings)
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    return _invalid(422, "invalid-capability", "Invalid capability", f"{count} in the document", errors, warnings)


def _check(body: bytes, strict: bool, folder: Path) -> FileReport:
    with tempfile.TemporaryDirectory(prefix="naftiko-validate-") as temporary:
        path = Path(temporary) / "capability.yaml"
        path.write_bytes(body)
        return check_file(path, strict, folder)


def _invalid(
    status: int, kind: str, title: str, detail: str, errors: list[dict[str, Any]], warnings: list[dict[str, Any]]
) -> Response:
    return problem(status, kind, title, detail, valid=False, errors=errors, warnings=warnings)

"""Problems found in a capability file, each pinned to a line, a column and a JSON path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
JsonPath = tuple[str | int, ...]


def format_path(path: JsonPath) -> str:
    """Render ('capability', 'consumes', 0, 'baseUri') as $.capability.consumes[0].baseUri."""
    if len(path) > 16:
        return format_path(path[:8]) + "…" + format_path(path[-4:])[1:]
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.replace("-", "").replace("_", "").isalnum():
            out.append(f".{part}")
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    file: str
    line: int
    column: int
    path: str = "$"
    origin: str = "semantic"  # yaml | schema (ours) | official (the official schema) | semantic

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        at = f" (at {self.path})" if self.path != "$" else ""
        return f"{where}: {self.severity}: {self.message}{at}"

    def as_json(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "path": self.path, "message": self.message}


class CapabilityError(Exception):
    """A capability that cannot be loaded; carries every error found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))

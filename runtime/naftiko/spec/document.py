"""Load a capability file into a checked document: parse, resolve imports, validate, check.

`load_document` never raises for problems in the file: it returns a `Document` whose
`errors` and `warnings` are located diagnostics. Only an unreadable path raises OSError.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, JsonPath
from .schema_check import DIALECT_SCHEMA, OFFICIAL_SCHEMA, schema_errors
from .semantics import check_semantics
from .yaml_source import YamlError, YamlSource, parse_yaml

SUPPORTED_VERSION = "1.0.0-alpha2"


@dataclass
class Document:
    file: str
    data: Any = None
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    source: YamlSource | None = None
    resolved: Any = None
    """The data with imported consumes spliced in: what semantics and the engine read."""
    folder: Path | None = None
    """Where relative imports, bind files and scripts are found, when not beside `file`."""

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def base_dir(self) -> Path:
        return self.folder if self.folder is not None else Path(self.file).resolve().parent


def load_document(
    path: str | Path, *, strict: bool = False, folder: Path | None = None, official: bool = True
) -> Document:
    """`folder`: read relative references from there instead of beside `path`; `official`
    False skips the official schema, whose findings are only warnings unless `strict`."""
    file = str(path)
    raw = Path(path).read_bytes()
    document = Document(file, folder=folder)
    try:
        source = parse_yaml(raw, file)
    except YamlError as exc:
        document.errors.append(exc.diagnostic)
        return document
    document.source, document.data = source, source.data

    def report(severity: str, message: str, at: JsonPath, origin: str = "semantic") -> None:
        diagnostic = source.diagnostic(severity, message, at, origin)
        (document.errors if severity == "error" else document.warnings).append(diagnostic)

    data = source.data
    if not isinstance(data, dict):
        report("error", f"a capability file must be a mapping at its top level, not {_kind(data)}", (), "schema")
        return document
    version = data.get("naftiko")
    if version != SUPPORTED_VERSION:
        got = "missing" if version is None else repr(version)
        report(
            "error",
            f"unsupported naftiko version {got}: this runtime supports naftiko: {SUPPORTED_VERSION}",
            ("naftiko",),
            "schema",
        )
        return document
    for at, message in schema_errors(DIALECT_SCHEMA, data):
        report("error", message, at, "schema")
    for at, message in schema_errors(OFFICIAL_SCHEMA, data) if official or strict else ():
        report("error" if strict else "warning", f"{message} (official alpha2 schema)", at, "official")
    if document.errors:
        return document
    document.resolved = _resolve_imports(document, report)
    if not document.errors:
        check_semantics(document.resolved, report)
    return document


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "empty"}.get(type(value), type(value).__name__)


def imported_files(document: Document) -> frozenset[Path]:
    """The consumes files `document` imports (`{location, import}` entries), resolved."""
    capability = document.data.get("capability") if isinstance(document.data, dict) else None
    consumes = capability.get("consumes") if isinstance(capability, dict) else None
    return frozenset(
        (document.base_dir / entry["location"]).resolve()
        for entry in (consumes if isinstance(consumes, list) else ())
        if isinstance(entry, dict) and isinstance(entry.get("location"), str)
    )


def _resolve_imports(document: Document, report: Any) -> Any:
    """The data with each `{location, import, as}` consumes entry replaced by what it names."""
    capability = document.data.get("capability")
    consumes = capability.get("consumes") if isinstance(capability, dict) else None
    if not isinstance(consumes, list):
        return document.data
    resolved = list(consumes)
    for index, entry in enumerate(consumes):
        if not (isinstance(entry, dict) and isinstance(entry.get("location"), str) and "import" in entry):
            continue
        at = ("capability", "consumes", index, "location")
        target = document.base_dir / entry["location"]
        try:
            imported = parse_yaml(target.read_bytes(), str(target)).data
        except OSError as exc:
            report("error", f"cannot read imported consumes {entry['location']}: {exc.strerror}", at)
            continue
        except YamlError as exc:
            report("error", f"imported file is not valid YAML: {exc.diagnostic}", at)
            continue
        found = (
            next(
                (
                    c
                    for c in (imported.get("consumes") or [])
                    if isinstance(c, dict) and c.get("namespace") == entry["import"]
                ),
                None,
            )
            if isinstance(imported, dict)
            else None
        )
        if found is None:
            report("error", f"namespace {entry['import']!r} not found in the consumes of {entry['location']}", at)
            continue
        found = copy.deepcopy(found)
        if entry.get("as"):
            found["namespace"] = entry["as"]
        resolved[index] = found
    return {**document.data, "capability": {**capability, "consumes": resolved}}

"""`naftiko validate`: check capability files and folders, report per file and in total."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .spec.diagnostics import Diagnostic
from .spec.document import load_document

CAPABILITY_SUFFIXES = (".yaml", ".yml")
_PARALLEL_FROM = 64
_TEXT_LIMIT = 20


class UnreadablePath(Exception):
    """A path given on the command line that does not exist or cannot be read."""


@dataclass(frozen=True, slots=True)
class FileReport:
    file: str
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]
    footprint: Any = None  # serve_check.Footprint: what the file claims when served with others

    @property
    def valid(self) -> bool:
        return not self.errors


SKIPPED_FOLDERS = frozenset({"node_modules", "venv", "build", "dist", "__pycache__"})
"""Folders never entered when walking a folder (nor any whose name starts with a dot:
`.git`, `.venv`, `.tox`…); a path named on the command line is always taken."""


def discover(paths: Iterable[str]) -> list[Path]:
    """Files named directly, plus every *.yaml / *.yml under the folders named, sorted.

    Walking prunes SKIPPED_FOLDERS and dot-folders before descending (a node_modules of
    100k files costs one directory entry, and a Kubernetes ConfigMap's `..data` copies are
    not read twice)."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(sorted(_walk(path)))
        elif path.is_file():
            found.append(path)
        else:
            raise UnreadablePath(f"{name}: no such file or folder")
    return found


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, folders, files in os.walk(root):  # links to folders are not entered (as rglob did)
        folders[:] = [d for d in folders if d not in SKIPPED_FOLDERS and not d.startswith(".")]
        base = Path(folder)
        found.extend(base / f for f in files if os.path.splitext(f)[1] in CAPABILITY_SUFFIXES and (base / f).is_file())
    return found


def check_file(path: Path, strict: bool = False, folder: Path | None = None) -> FileReport:
    """The file's problems: the schema's, the semantic checks', and whatever `naftiko run`
    would still refuse (serve_check: validate accepts only what run serves). `folder`: where
    its relative references are read, when not beside it."""
    try:
        document = load_document(path, strict=strict, folder=folder)
    except OSError as exc:
        raise UnreadablePath(f"{path}: {exc.strerror}") from None
    errors = list(document.errors)
    footprint = None
    if not errors and isinstance(document.data, dict) and "capability" in document.data:
        from .serve_check import serving_problems  # the engine and adapters: only for files that got this far

        errors, footprint = serving_problems(document)
    return FileReport(document.file, tuple(errors), tuple(document.warnings), footprint)


def check_files(files: list[Path], strict: bool = False, together: bool = True) -> list[FileReport]:
    """Reports in the order of `files`; large sets are spread over the machine's cores.

    `together`: the files are served together, as `naftiko run` serves the files and folders
    it is given: a port two kinds claim, a route or MCP tool two files declare on one port, is
    an error in the later file naming both places. Without it each file stands alone."""
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < _PARALLEL_FROM or workers == 1:
        reports = [check_file(path, strict) for path in files]
    else:
        with ProcessPoolExecutor(workers) as pool:
            reports = list(pool.map(check_file, files, [strict] * len(files), chunksize=4))
    return _served_together(reports) if together and len(reports) > 1 else reports


def _served_together(reports: list[FileReport]) -> list[FileReport]:
    from .serve_check import conflicts_between

    valid = [r for r in reports if r.valid and r.footprint is not None]
    extra: dict[str, list[Diagnostic]] = {}
    for (file, line, column, path), message in conflicts_between([r.footprint for r in valid]):
        extra.setdefault(file, []).append(Diagnostic("error", message, file, line, column, path))
    if not extra:
        return reports
    return [replace(r, errors=r.errors + tuple(extra[r.file])) if r.file in extra else r for r in reports]


def render_text(reports: list[FileReport]) -> str:
    lines: list[str] = []
    for report in reports:
        verdict = "valid" if report.valid else "INVALID"
        counts = f"{len(report.errors)} errors, {len(report.warnings)} warnings"
        lines.append(f"{report.file}: {verdict} ({counts})")
        shown = [*report.errors, *report.warnings]
        lines.extend(f"  {d}" for d in shown[:_TEXT_LIMIT])
        if len(shown) > _TEXT_LIMIT:
            lines.append(f"  … {len(shown) - _TEXT_LIMIT} more (use --format json for all)")
    lines.append(summary(reports))
    return "\n".join(lines)


def summary(reports: list[FileReport]) -> str:
    valid = sum(r.valid for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    return f"{valid} valid, {len(reports) - valid} invalid, {warnings} warnings"


def render_json(reports: list[FileReport]) -> str:
    return json.dumps(
        [
            {
                "file": r.file,
                "valid": r.valid,
                "errors": [d.as_json() for d in r.errors],
                "warnings": [d.as_json() for d in r.warnings],
            }
            for r in reports
        ],
        indent=2,
        ensure_ascii=False,
    )

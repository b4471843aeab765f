"""Loading the gateway's files one by one: a broken file is reported (`file:line:column`) and
left out, the others serve.

What stays in memory per file is what serving needs: the compiled capability and its members.
The official schema (warnings only) is not checked, the YAML positions of every node are
dropped after compiling (a `LazySource` finds them again, from the file's compressed text,
when a message needs one), and the collector is kept out of the way while thousands of
long-lived objects are made (`quiet_collector`).
"""

from __future__ import annotations

import gc
import logging
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..engine.capability import Capability
from ..engine.compile import compile_capability
from ..exposes.rest import RouteConflict
from ..server import PlanError, PortPlan, plan
from ..spec.diagnostics import CapabilityError, Diagnostic, JsonPath, format_path
from ..spec.document import Document, load_document
from ..spec.yaml_source import YamlError, parse_yaml
from ..validation import discover
from ..watch import Stamp
from .members import Member, members_of

log = logging.getLogger("naftiko")


@dataclass(eq=False)
class FileEntry:
    """One file of the folder as last read: served when `problems` is empty and it holds a capability."""

    path: Path
    stamp: Stamp | None
    capability: Capability | None = None
    plans: list[PortPlan] = field(default_factory=list)  # this file's ports, alone
    members: list[Member] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # `file:line:column: error: message`
    imports: frozenset[Path] = frozenset()  # consumes files it imports (a change reloads it)
    shared: bool = False  # a consumes-only file, imported by others

    @property
    def served(self) -> bool:
        return self.capability is not None and not self.problems


def load_file(path: Path, stamp: Stamp | None, config: RunConfig) -> FileEntry:
    """Read, check, compile and build one file; never raises."""
    entry = FileEntry(path, stamp)
    try:
        document = load_document(path, official=False)
    except OSError as exc:
        entry.problems.append(f"{path}:1:1: error: cannot read the file: {exc.strerror}")
        return entry
    if not document.valid:
        entry.problems.extend(str(d) for d in document.errors)
        return entry
    if "capability" not in (document.data or {}):
        entry.shared = True
        return entry
    entry.imports = _imports(document)
    try:
        entry.capability = compile_capability(document, config.compile)
        entry.plans = plan([entry.capability], config.host, config.ports)
        entry.members = members_of(entry.plans)
    except CapabilityError as exc:
        entry.problems.extend(str(d) for d in exc.diagnostics)
    except RouteConflict as exc:
        first = exc.groups[0][0]
        entry.problems.append(f"{first.capability.where(first.target.at)}: error: {exc}")
    except (PlanError, ValueError, OSError) as exc:  # TLS material, proxy settings, ports, tools twice
        entry.problems.append(f"{path}:1:1: error: {_without_file(str(exc), path)}")
    except Exception as exc:  # noqa: BLE001 - one file must never stop the others, nor print a traceback
        entry.problems.append(f"{path}:1:1: error: cannot be served: {type(exc).__name__}: {exc}")
    if entry.capability is not None:
        _slim(document)
    return entry


def report(entry: FileEntry) -> None:
    for problem in entry.problems:
        log.error("%s", problem)


@contextmanager
def quiet_collector() -> Iterator[None]:
    """No cyclic collection while loading (nearly everything made lives on), then the survivors
    frozen out of later collections: a full collection no longer walks every loaded file."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def load_files(paths: Sequence[str], config: RunConfig) -> list[FileEntry]:
    """Every file under `paths`, in order; raises UnreadablePath for a path that is not there."""
    with quiet_collector():
        return [load_file(path, _stamp(path), config) for path in discover(paths)]


def _stamp(path: Path) -> Stamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _imports(document: Document) -> frozenset[Path]:
    capability = document.data.get("capability") if isinstance(document.data, dict) else None
    consumes = capability.get("consumes") if isinstance(capability, dict) else None
    return frozenset(
        (document.base_dir / entry["location"]).resolve()
        for entry in consumes or ()
        if isinstance(entry, dict) and isinstance(entry.get("location"), str)
    )


def _without_file(message: str, path: Path) -> str:
    return message.removeprefix(f"{path}: ")


class LazySource:
    """A parsed file's positions, found again on demand from its compressed text: the table of
    every node's position is the largest part of a parsed file and serving rarely needs it."""

    def __init__(self, file: str, raw: bytes):
        self.file = file
        self._raw = zlib.compress(raw, 1)

    def position(self, path: JsonPath) -> tuple[int, int]:
        try:
            source = parse_yaml(zlib.decompress(self._raw), self.file)
        except YamlError:
            return (1, 1)
        return source.position(path)

    def diagnostic(self, severity: str, message: str, path: JsonPath, origin: str = "semantic") -> Diagnostic:
        line, column = self.position(path)
        return Diagnostic(severity, message, self.file, line, column, format_path(path), origin)  # type: ignore[arg-type]


def _slim(document: Document) -> None:
    """Drop what serving does not read: warnings, and the position table (kept compressed)."""
    document.warnings = []
    try:
        raw = Path(document.file).read_bytes()
    except OSError:
        return
    document.source = LazySource(document.file, raw)  # type: ignore[assignment]

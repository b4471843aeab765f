"""Loading the gateway's files one by one: a broken file is reported (`file:line:column`) and
left out, the others serve.

What stays in memory per file is what serving needs: the compiled capability and its members.
The official schema (warnings only) is not checked, the YAML positions of every node are
dropped once the file is checked (a `LazySource` finds them again, from the file's compressed
text, when a message needs one), and the collector is kept out of the way while thousands of
long-lived objects are made (`quiet_collector`).
"""

from __future__ import annotations

import gc
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..engine.capability import Capability
from ..engine.compile import compile_capability
from ..exposes.rest import RouteConflict
from ..server import PlanError, PortPlan, plan
from ..spec.diagnostics import CapabilityError, Diagnostic, JsonPath, format_path
from ..spec.document import Document, imported_files, load_document
from ..spec.yaml_source import YamlError, parse_yaml
from ..validation import discover
from ..watch import Stamp
from .members import Member, MemberError, members_of

log = logging.getLogger("naftiko")
PARALLEL_FROM = 64  # files; fewer are read here (starting workers costs more than it saves)
MAX_READERS = 4


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


def read_document(path: Path) -> Document | str:
    """The checked document, made light to keep (or to send from a worker process): without
    warnings, its position table replaced by a `LazySource`. Text: why it cannot be read."""
    try:
        document = load_document(path, official=False)
        raw = path.read_bytes()
    except OSError as exc:
        return f"{path}:1:1: error: cannot read the file: {exc.strerror}"
    document.warnings = []
    if document.valid:
        document.source = LazySource(document.file, raw)  # type: ignore[assignment]
    return document


def build_entry(path: Path, stamp: Stamp | None, config: RunConfig, document: Document | str) -> FileEntry:
    """Compile a read document and build its members; never raises."""
    entry = FileEntry(path, stamp)
    if isinstance(document, str):
        entry.problems.append(document)
        return entry
    if not document.valid:
        entry.problems.extend(str(d) for d in document.errors)
        return entry
    if "capability" not in (document.data or {}):
        entry.shared = True
        return entry
    entry.imports = imported_files(document)
    try:
        entry.capability = compile_capability(document, config.compile)
        entry.plans = plan([entry.capability], config.host, config.ports)
        entry.members = members_of(entry.plans)
    except CapabilityError as exc:
        entry.problems.extend(str(d) for d in exc.diagnostics)
    except MemberError as exc:
        entry.problems.append(f"{exc.where}: error: {exc}")
    except RouteConflict as exc:
        first = exc.groups[0][0]
        entry.problems.append(f"{first.capability.where(first.target.at)}: error: {exc}")
    except (PlanError, ValueError, OSError) as exc:  # TLS material, proxy settings, ports, tools twice
        entry.problems.append(f"{path}:1:1: error: {_without_file(str(exc), path)}")
    except Exception as exc:  # noqa: BLE001 - one file must never stop the others, nor print a traceback
        entry.problems.append(f"{path}:1:1: error: cannot be served: {type(exc).__name__}: {exc}")
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


def collect_frozen() -> None:
    """Collect what the loaded files left behind when reloads replaced them: frozen objects in
    reference cycles are never collected otherwise. One full pass (about 0.7 s for 2,000 files
    on the 2-core machine), then the survivors frozen again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def load_files(paths: Sequence[str], config: RunConfig) -> list[FileEntry]:
    """Every file under `paths`, in order; raises UnreadablePath for a path that is not there.

    A large folder is read (parsed, checked) by worker processes while this one compiles what
    they have read: parsing is most of the cost, and the documents are plain data to send."""
    files = discover(paths)
    stamps = [_stamp(path) for path in files]
    with quiet_collector():
        if len(files) < PARALLEL_FROM or (os.cpu_count() or 1) == 1:
            return [build_entry(p, s, config, read_document(p)) for p, s in zip(files, stamps)]
        with ProcessPoolExecutor(min(os.cpu_count() or 1, MAX_READERS)) as pool:
            documents = pool.map(read_document, files, chunksize=8)
            return [build_entry(p, s, config, d) for p, s, d in zip(files, stamps, documents)]


def _stamp(path: Path) -> Stamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


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

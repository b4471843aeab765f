"""Hot reload: watch capability files and folders; apply what changed without a restart.

Files are polled (stat only) every half second. A file that fails to load or compile is
reported and its previous version keeps serving; a change that would conflict with another
file (same route, same tool, one port for two kinds) is reported and not applied. A replaced
capability is closed only after its in-flight calls had time to finish.

`reload_all` is the control port's `POST /config/reload`: every file is read again (bind files
too, so a rotated secret is picked up) and the result applied all at once, or not at all when
one file is broken or the new set conflicts; it says which (`ReloadOutcome`). The watcher and
explicit reloads take turns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine.capability import Capability
from .engine.compile import CompileOptions, compile_capability
from .server import PlanError, PortPlan, Runtime
from .spec.diagnostics import CapabilityError
from .spec.document import imported_files, load_document
from .validation import UnreadablePath, discover

log = logging.getLogger("naftiko")
Stamp = tuple[int, int]  # mtime in ns, size
POLL_SECONDS = 0.5


def stamps(paths: Sequence[str]) -> dict[Path, Stamp]:
    found: dict[Path, Stamp] = {}
    try:
        files = discover(paths)
    except UnreadablePath:
        files = [p for p in map(Path, paths) if p.is_file()]
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


@dataclass
class ReloadOutcome:
    """What `reload_all` did: `status` 200 (applied), 422 (a file is broken), 409 (the new set
    conflicts, or would close the control port); nothing changed unless 200."""

    status: int
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)  # {file, line, column, path, message}
    changes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class Reloader:
    def __init__(
        self,
        paths: Sequence[str],
        options: CompileOptions,
        runtime: Runtime,
        planner: Callable[[Sequence[Capability]], list[PortPlan]],
        loaded: Mapping[Path, Capability],
    ):
        self.paths = paths
        self.options = options
        self.runtime = runtime
        self.planner = planner
        self.capabilities: dict[Path, Capability] = dict(loaded)
        self.seen: dict[Path, Stamp] = stamps(paths)
        self._turn = asyncio.Lock()

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            async with self._turn:
                await self.reload()

    async def reload_all(self) -> ReloadOutcome:
        """Read every file again and serve the result, or change nothing and say why."""
        async with self._turn:
            current = stamps(self.paths)
            candidate: dict[Path, Capability] = {}
            errors: list[dict[str, Any]] = []
            for path in current:
                capability, _ = self._load(path, errors)
                if capability is not None:
                    candidate[path] = capability
            if errors:
                await self._discard(candidate)
                return ReloadOutcome(
                    422, "a capability file is broken; the previous configuration keeps serving", errors
                )
            if not candidate:
                return ReloadOutcome(
                    422, "no capability found in the paths served; the previous configuration keeps serving"
                )
            try:
                plans = self.planner(list(candidate.values()))
                closed = sorted(
                    port
                    for port, server in self.runtime.servers.items()
                    if server.kind == "control" and not any(p.port == port and p.kind == "control" for p in plans)
                )
                if closed:
                    raise PlanError(
                        f"the new configuration has no control port {closed[0]}, which this reload was asked on"
                    )
                changes = await self.runtime.apply(plans)
            except (
                PlanError,
                ValueError,
                OSError,
            ) as exc:  # the new capabilities are not closed: a port may already serve them
                log.error("reload not applied, the previous version keeps serving: %s", exc)
                return ReloadOutcome(
                    409,
                    "the new configuration cannot be served; the previous configuration keeps serving",
                    [{"message": str(exc)}],
                )
            previous, self.capabilities, self.seen = self.capabilities, candidate, current
            for line in changes:
                log.info("%s", line)
            log.info("reloaded from the control port: %s", ", ".join(sorted(p.name for p in candidate)))
            self._close_later(list(previous.values()))
            return ReloadOutcome(
                200, "the configuration on disk is served", changes=changes, files=[str(p) for p in candidate]
            )

    async def _discard(self, capabilities: Mapping[Path, Capability]) -> None:
        for capability in capabilities.values():
            await capability.close()

    async def reload(self) -> None:
        current = stamps(self.paths)
        changed = [p for p, stamp in current.items() if self.seen.get(p) != stamp]
        removed = [p for p in self.seen if p not in current]
        if not changed and not removed:
            return
        self.seen = current
        candidate = {p: c for p, c in self.capabilities.items() if p in current}
        shared: set[Path] = set()
        for path in changed:
            capability, is_capability = self._load(path)
            if not is_capability:
                shared.add(path.resolve())
            if capability is not None:
                candidate[path] = capability
        if shared:  # a consumes file others import: they reload, the other files are not read again
            for path, served in list(candidate.items()):
                if path not in changed and imported_files(served.document) & shared:
                    capability, _ = self._load(path)
                    if capability is not None:
                        candidate[path] = capability
        try:
            changes = await self.runtime.apply(self.planner(list(candidate.values())))
        except (PlanError, ValueError) as exc:
            log.error("reload not applied, the previous version keeps serving: %s", exc)
            return
        previous = self.capabilities
        replaced = [c for p, c in previous.items() if candidate.get(p) is not c]
        self.capabilities = candidate
        for line in changes:
            log.info("%s", line)
        applied = sorted(p.name for p in changed + removed if candidate.get(p) is not previous.get(p))
        if applied:
            log.info("reloaded: %s", ", ".join(applied))
        self._close_later(replaced)

    def _load(self, path: Path, errors: list[dict[str, Any]] | None = None) -> tuple[Capability | None, bool]:
        """The compiled capability, or None (reported, and added to `errors`) when the file is
        broken or holds none."""
        try:
            document = load_document(path)
        except OSError as exc:
            log.error("%s: %s", path, exc.strerror)
            if errors is not None:
                errors.append(
                    {
                        "file": str(path),
                        "line": 1,
                        "column": 1,
                        "path": "$",
                        "message": f"cannot read the file: {exc.strerror}",
                    }
                )
            return None, True
        if document.valid and "capability" not in (document.data or {}):
            return None, False
        try:
            return compile_capability(document, self.options), True
        except CapabilityError as exc:
            log.error("%s\n%s: the previous version keeps serving", exc, path)
            if errors is not None:
                errors.extend({"file": d.file, **d.as_json()} for d in exc.diagnostics)
            return None, True
        except ValueError as exc:  # TLS material or proxy settings that cannot be used
            log.error("%s: %s: the previous version keeps serving", path, exc)
            if errors is not None:
                errors.append({"file": str(path), "line": 1, "column": 1, "path": "$", "message": str(exc)})
            return None, True

    def _close_later(self, capabilities: list[Capability]) -> None:
        if not capabilities:
            return
        grace = self.options.settings.total_timeout + 5

        async def close() -> None:
            await asyncio.sleep(grace)
            for capability in capabilities:
                await capability.close()

        asyncio.get_running_loop().create_task(close())

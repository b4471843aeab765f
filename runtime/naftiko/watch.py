"""Hot reload: watch capability files and folders; apply what changed without a restart.

Files are polled (stat only) every half second. A file that fails to load or compile is
reported and its previous version keeps serving; a change that would conflict with another
file (same route, same tool, one port for two kinds) is reported and not applied. A replaced
capability is closed only after its in-flight calls had time to finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .engine.capability import Capability
from .engine.compile import CompileOptions, compile_capability
from .server import PlanError, PortPlan, Runtime
from .spec.diagnostics import CapabilityError
from .spec.document import load_document
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

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await self.reload()

    async def reload(self) -> None:
        current = stamps(self.paths)
        changed = [p for p, stamp in current.items() if self.seen.get(p) != stamp]
        removed = [p for p in self.seen if p not in current]
        if not changed and not removed:
            return
        self.seen = current
        candidate = {p: c for p, c in self.capabilities.items() if p in current}
        shared_changed = False
        for path in changed:
            capability, is_capability = self._load(path)
            shared_changed |= not is_capability
            if capability is not None:
                candidate[path] = capability
        if shared_changed:  # an imported consumes file: everything that may import it reloads
            for path in list(candidate):
                if path not in changed:
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

    def _load(self, path: Path) -> tuple[Capability | None, bool]:
        """The compiled capability, or None (reported) when the file is broken or holds none."""
        try:
            document = load_document(path)
        except OSError as exc:
            log.error("%s: %s", path, exc.strerror)
            return None, True
        if document.valid and "capability" not in (document.data or {}):
            return None, False
        try:
            return compile_capability(document, self.options), True
        except CapabilityError as exc:
            log.error("%s\n%s: the previous version keeps serving", exc, path)
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

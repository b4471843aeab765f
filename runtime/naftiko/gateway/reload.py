"""Hot reload of a gateway folder, one file at a time.

Every half second the folder's stamps (mtime, size) are compared with those last seen; only
the files whose stamp changed are read, and only their members are built. Everything else,
thousands of files in a large folder, keeps answering from the objects it already has and is
not read again. A file that fails is reported (`file:line:column`) and its previous version
keeps serving; a file whose exposure namespace another file already serves is refused, naming
both. Editing a consumes file that others import reloads those that import it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config import RunConfig
from ..engine.capability import Capability
from ..server import PlanError, Runtime
from ..watch import Reloader, ReloadOutcome, stamps
from .catalogue import assemble
from .load import FileEntry, build_entry, collect_frozen, read_document, report

log = logging.getLogger("naftiko")
RETIRED_BEFORE_COLLECTING = 50


class GatewayReloader(Reloader):
    def __init__(self, config: RunConfig, runtime: Runtime, entries: Mapping[Path, FileEntry], serving: Sequence[Path]):
        """`entries`: every file as last read; `serving`: those served now."""
        super().__init__(config.paths, config.compile, runtime, lambda _: [], {})
        self.config = config
        self.entries = dict(entries)
        self.serving = {p: self.entries[p] for p in serving}
        self.capabilities = {p: e.capability for p, e in self.serving.items() if e.capability is not None}
        self.seen = {p: e.stamp for p, e in self.entries.items() if e.stamp is not None}
        self._retired = 0  # capabilities replaced since the last collection of frozen objects

    async def reload(self) -> None:
        await self._sync()

    async def reload_all(self) -> ReloadOutcome:
        """The control port's reload: the files changed on disk are read and served."""
        async with self._turn:
            return await self._sync()

    async def _sync(self) -> ReloadOutcome:
        current = await asyncio.to_thread(stamps, self.paths)
        changed = [p for p, stamp in current.items() if self.seen.get(p) != stamp]
        removed = [p for p in self.seen if p not in current]
        if not changed and not removed:
            return ReloadOutcome(200, "nothing changed on disk")
        self.seen = current
        to_read = self._to_read(changed, removed)
        documents = await asyncio.to_thread(lambda: [read_document(p) for p in to_read])  # parsing: off the loop
        loaded = {p: build_entry(p, current[p], self.config, d) for p, d in zip(to_read, documents)}
        for path in removed:
            self.entries.pop(path, None)
        self.entries.update(loaded)
        errors = []
        candidate = {p: e for p, e in self.serving.items() if p not in removed and p not in loaded}
        fresh = {}
        for path, entry in loaded.items():
            report(entry)
            errors.extend({"file": str(path), "message": problem} for problem in entry.problems)
            if entry.served:
                fresh[path] = entry
            elif path in self.serving:
                log.error("%s: the previous version keeps serving", path)
                candidate[path] = self.serving[path]
        assembly = assemble([*candidate.values(), *fresh.values()])  # what serves now wins a conflict
        for entry, why in assembly.conflicts:
            log.error("%s: not served: %s", entry.path, why)
            errors.append({"file": str(entry.path), "message": why})
            fresh.pop(entry.path, None)
            if entry.path in self.serving:
                candidate[entry.path] = self.serving[entry.path]
        if assembly.conflicts:
            assembly = assemble([*candidate.values(), *fresh.values()])
        try:
            changes = await self.runtime.apply(assembly.plans)
        except (PlanError, ValueError, OSError) as exc:
            log.error("reload not applied, the previous version keeps serving: %s", exc)
            return ReloadOutcome(
                409, "the new files cannot be served; the previous ones keep serving", [{"message": str(exc)}]
            )
        previous, self.serving = self.serving, {**candidate, **fresh}
        self.capabilities = {p: e.capability for p, e in self.serving.items() if e.capability is not None}
        for line in changes:
            log.info("%s", line)
        applied = sorted(str(p) for p in [*fresh, *removed])
        if applied:
            log.info("reloaded: %s", ", ".join(applied))
        self._close_later([e.capability for p, e in previous.items() if self.serving.get(p) is not e and e.capability])
        self._close_later([e.capability for e in loaded.values() if not e.served and e.capability is not None])
        detail = "the files changed on disk are served" if not errors else "served, except the files listed"
        return ReloadOutcome(200, detail, errors, changes, applied)

    def _close_later(self, capabilities: list[Capability]) -> None:
        """Close the replaced capabilities after the grace period; once a twentieth of the
        folder (at least RETIRED_BEFORE_COLLECTING files) has been replaced since the last time,
        collect what they leave behind (`collect_frozen`): a bounded leak, an occasional pause."""
        super()._close_later(capabilities)
        self._retired += len(capabilities)
        if capabilities and self._retired >= max(RETIRED_BEFORE_COLLECTING, len(self.serving) // 20):
            self._retired = 0
            grace = self.options.settings.total_timeout + 5
            asyncio.get_running_loop().call_later(grace + 1, collect_frozen)

    def _to_read(self, changed: list[Path], removed: list[Path]) -> list[Path]:
        """The changed files, and those importing a consumes file that changed or went away."""
        paths = set(changed)
        touched = {p.resolve() for p in changed + removed}
        paths.update(p for p, e in self.entries.items() if e.imports & touched and p in self.seen)
        return sorted(paths)

"""The files the gateway serves, and the ports they make together.

Namespaces are what keep files apart in gateway mode, so the one conflict left between files
is an exposure namespace declared by two of them (or one port wanted by two kinds). At start
that stops the gateway, naming both files; on a reload the file that came second is refused
and what served keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..server import PortPlan
from .load import FileEntry
from .members import GATEWAY_KINDS, GatewayPortPlan


@dataclass
class Assembly:
    plans: list[PortPlan]
    conflicts: list[tuple[FileEntry, str]] = field(default_factory=list)  # (file left out, why)


def assemble(entries: Iterable[FileEntry]) -> Assembly:
    """The ports of every served entry, in order: an entry conflicting with an earlier one is
    left out and named in `conflicts`."""
    ports: dict[int, PortPlan] = {}
    owners: dict[str, FileEntry] = {}  # exposure namespace → its file
    conflicts = []
    for entry in entries:
        if not entry.served:
            continue
        why = _conflict(entry, owners, ports)
        if why is not None:
            conflicts.append((entry, why))
            continue
        for port_plan in entry.plans:
            owners.update({e.namespace: entry for _, e in port_plan.entries if e.namespace})
            served = ports.get(port_plan.port)
            if served is None:
                plan_type = GatewayPortPlan if port_plan.kind in GATEWAY_KINDS else PortPlan
                served = ports[port_plan.port] = plan_type(port_plan.address, port_plan.port, port_plan.kind)
            served.entries.extend(port_plan.entries)
        for member in entry.members:
            ports[member.port].members[member.namespace] = member  # type: ignore[attr-defined]
    return Assembly(list(ports.values()), conflicts)


def _conflict(entry: FileEntry, owners: dict[str, FileEntry], ports: dict[int, PortPlan]) -> str | None:
    for port_plan in entry.plans:
        for _, exposure in port_plan.entries:
            owner = owners.get(exposure.namespace) if exposure.namespace else None
            if owner is not None and owner is not entry:
                return f"exposure namespace {exposure.namespace!r} is declared in both {owner.path} and {entry.path}"
        served = ports.get(port_plan.port)
        if served is not None and served.kind != port_plan.kind:
            other = served.entries[0][0].file
            return f"port {port_plan.port} is claimed by a {served.kind} exposure in {other} and a {port_plan.kind} exposure in {entry.path}"
    return None


def namespaces(entries: Sequence[FileEntry]) -> tuple[list[str], list[str]]:
    """(consumed, exposed) namespaces of the served entries, for the flags that name them."""
    served = [e.capability for e in entries if e.served and e.capability is not None]
    consumed = [c.namespace for capability in served for c in capability.clients]
    exposed = [e.namespace or e.kind for capability in served for e in capability.exposures]
    return consumed, exposed

"""`/mcp` of a gateway port: one MCP server whose tools, resources and prompts are those of every
member, the very same objects (targets, schemas, files), listed under union names (naming.py).

Only the small listing entries are new; calls go to the member's own target. Exposures that
declare authentication are left out of the union: each is reached at its own `/mcp/NS`, behind
its own credentials. A resource URI served by two namespaces is listed once, from the first
namespace (sorted), and stays readable from both `/mcp/NS`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from ..engine.capability import Capability, Exposure
from ..exposes.mcp import McpServer
from .members import Member
from .naming import union_names

log = logging.getLogger("naftiko")
SERVER_NAME = "naftiko-gateway"


class McpUnion(McpServer):
    def __init__(self, members: Sequence[Member]):
        joined = sorted(
            (m for m in members if m.mcp is not None and m.exposure.auth is None), key=lambda m: m.namespace
        )
        self._members = {id(m.exposure): m for m in joined}
        self._tool_names = union_names((m.namespace, name) for m in joined for name in m.mcp.tools)  # type: ignore[union-attr]
        self._prompt_names = union_names((m.namespace, name) for m in joined for name in m.mcp.prompts)  # type: ignore[union-attr]
        self._uris: dict[str, str] = {}  # resource URI → namespace listing it
        instructions = (
            f"A gateway of {len(joined)} MCP servers: each tool and prompt is named NAMESPACE.NAME here, "
            "and each server is also served alone at /mcp/NAMESPACE under its own names."
        )
        super().__init__([(m.capability, m.exposure) for m in joined], SERVER_NAME, instructions)

    def _add_tools(self, capability: Capability, exposure: Exposure, origins: dict[tuple[str, str], str]) -> None:
        member = self._members[id(exposure)]
        for name, tool in member.mcp.tools.items():  # type: ignore[union-attr]
            union = self._tool_names[(member.namespace, name)]
            self.tools[union] = replace(tool, listing={**tool.listing, "name": union})

    def _add_prompts(self, capability: Capability, exposure: Exposure, origins: dict[tuple[str, str], str]) -> None:
        member = self._members[id(exposure)]
        for name, prompt in member.mcp.prompts.items():  # type: ignore[union-attr]
            union = self._prompt_names[(member.namespace, name)]
            self.prompts[union] = replace(prompt, listing={**prompt.listing, "name": union})

    def _add_resources(self, capability: Capability, exposure: Exposure, origins: dict[tuple[str, str], str]) -> None:
        member = self._members[id(exposure)]
        server = member.mcp
        assert server is not None
        for static in server.static_resources:
            if self._claim_uri(static.uri, member.namespace):
                self.static_resources.append(static)
                self.static_listing += [
                    self._named(listing, member)
                    for listing in server.static_listing
                    if listing["uri"] == static.uri or listing["uri"].startswith(static.uri + "/")
                ]
        for dynamic in server.dynamic_resources:
            if self._claim_uri(dynamic.uri, member.namespace):
                self.dynamic_resources.append(replace(dynamic, listing=self._named(dynamic.listing, member)))

    def _claim_uri(self, uri: str, namespace: str) -> bool:
        owner = self._uris.setdefault(uri, namespace)
        if owner != namespace:
            log.warning("MCP resource %s is served by %s and %s: /mcp lists it from %s", uri, owner, namespace, owner)
        return owner == namespace

    @staticmethod
    def _named(listing: dict, member: Member) -> dict:
        return {**listing, "name": f"{member.namespace}.{listing['name']}"}

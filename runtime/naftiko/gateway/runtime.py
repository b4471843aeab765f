"""The gateway's servers: REST and MCP ports are gateway ports (port.py); skill and control
ports are the runtime's own."""

from __future__ import annotations

from ..server import PortPlan, Runtime
from .members import GatewayPortPlan
from .port import GatewayPortServer


class GatewayRuntime(Runtime):
    async def _open(self, port_plan: PortPlan) -> str:
        if not isinstance(port_plan, GatewayPortPlan):
            return await super()._open(port_plan)
        server = GatewayPortServer(port_plan, self.views, self.settings, self.ssl, self.plane)
        await server.listen()
        self.servers[port_plan.port] = server
        return f"{server.base_url} ({port_plan.kind} gateway: {len(port_plan.members)} namespaces)"

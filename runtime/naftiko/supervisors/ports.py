"""The supervisor holds each planned port while its workers serve it.

A held socket is bound with SO_REUSEPORT but never listens, so it takes no connection: the
workers' listening sockets (SO_REUSEPORT too) share the port with it. Holding it refuses at
the start a port another program uses (exit 2, as one process would), and keeps the port for
a replacement worker. (Ports are fixed numbers: the schema and `--port` refuse 0.)
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from contextlib import ExitStack

from ..server import PlanError, PortPlan, port_in_use


def hold_ports(plans: Sequence[PortPlan], held: ExitStack) -> None:
    """Bind every plan's port (closed with `held`); raises PlanError naming the port and its
    flag when one is taken."""
    for port_plan in plans:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                port_plan.address, port_plan.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = held.enter_context(socket.socket(family, kind, proto))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise port_in_use(port_plan) from None
            raise PlanError(f"cannot bind {port_plan.address} port {port_plan.port}: {exc}") from None

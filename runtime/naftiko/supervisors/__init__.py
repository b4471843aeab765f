"""`naftiko run --workers N`: N serving processes on the same ports, under one supervisor.

The process started loads and plans the capabilities (any problem: exit 2 before a worker
exists), holds each planned port, then spawns N workers (uvicorn's `supervisors/multiprocess.py`
is the model). Each worker loads the files itself and serves every port with SO_REUSEPORT, so
the kernel spreads new connections over the workers and a reload that opens a new port opens
it in every worker, in place (uvicorn's shared socket instead can wake every worker for each
connection and cannot grow a port). With `--watch` (or a folder) each worker watches the files
itself; a control-port reload lands in one worker, which tells the supervisor, which sends
SIGHUP to the others (uvicorn restarts its workers instead: ours keep their connections and MCP
sessions). What the workers share is chosen once, at the start:

* `multiprocess.Supervisor` (the started process): starts, watches and replaces workers
  (with a back-off), relays a reload to all, stops them all on SIGTERM/SIGINT.
* `member.Member` (each worker): its link to the supervisor (ready, reloaded, gone).
* `fleet_metrics.FleetFigures`: the control port's `/metrics` adds up every worker's
  figures (prometheus-client's multiprocess mode).
* `ports.hold_ports`: a port taken by another program is refused before any worker starts.

With `--workers 1` (the default) none of this is imported.
"""

from .multiprocess import Supervisor

__all__ = ["Supervisor"]

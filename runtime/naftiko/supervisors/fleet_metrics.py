"""The figures of every worker, added up on whichever control port is asked.

prometheus-client's multiprocess mode keeps each worker's counters in a memory-mapped file of
its own, in the directory the supervisor names (`PROMETHEUS_MULTIPROC_DIR`, read when
prometheus_client is imported, so only workers import it); `MultiProcessCollector` adds the
files up when `/metrics` is asked, including those of workers that have died, so a counter
never goes back. A serving port's own `/metrics` gives the fleet's figures for that port. Each
server still keeps its local `Metrics` (for `/status` and the operation names): a worker's
request costs that plus one counter and one histogram update (4–6 µs,
bench/workers_throughput.py prints it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ..engine.results import Result
from ..exposes.control import ServerView, capability_gauge
from ..exposes.metrics import BUCKETS, UNKNOWN, Metrics, upstream_error_kind
from .member import METRICS_DIRECTORY


class FleetFigures:
    """One worker's share of the fleet's figures: what its servers count, and the sum of all."""

    def __init__(self) -> None:
        if not os.environ.get(METRICS_DIRECTORY):
            raise RuntimeError(f"{METRICS_DIRECTORY} is not set: a fleet worker is started by the supervisor")
        self.requests = Counter(
            "naftiko_requests", "Requests answered, by route and status.", ("port", "method", "route", "status"),
            registry=None,
        )  # fmt: skip
        self.duration = Histogram(
            "naftiko_request_duration_seconds",
            "Time to answer a request, by route and operation (REST operation or MCP tool).",
            ("port", "method", "route", "operation"),
            buckets=BUCKETS,
            registry=None,
        )
        self.upstream_errors = Counter(
            "naftiko_upstream_errors", "Upstream calls that failed, by kind.", ("port", "kind"), registry=None
        )

    def metrics(self, kind: str, port: int) -> Metrics:
        """A server's metrics; a control port's requests stay out of the figures, as in one process."""
        return Metrics() if kind == "control" else FleetMetrics(self, str(port))

    def render(self, servers: Sequence[ServerView]) -> str:
        """The control port's `/metrics`: every worker, every port."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return "\n".join(capability_gauge(servers)) + "\n" + generate_latest(registry).decode()

    def render_port(self, port: str) -> str:
        """A serving port's own `/metrics`: every worker, this port."""
        registry = CollectorRegistry()
        registry.register(_OnePort(port))
        return generate_latest(registry).decode()


class _OnePort:
    """The fleet's samples labelled with one port."""

    def __init__(self, port: str):
        self.port = port

    def collect(self) -> Iterator[Metric]:
        for family in MultiProcessCollector(None).collect():
            family.samples = [sample for sample in family.samples if sample.labels.get("port") == self.port]
            yield family


class FleetMetrics(Metrics):
    """A server's local figures, each request also counted in the fleet's files."""

    def __init__(self, figures: FleetFigures, port: str):
        super().__init__()
        self.figures, self.port = figures, port
        self._children: dict[tuple[object, str], tuple[Counter, Histogram]] = {}  # (series, operation) → children

    def observe(
        self, method: str, route: str, status: int, seconds: float, result: Result | None, operation: str | None = None
    ) -> None:
        super().observe(method, route, status, seconds, result, operation)
        series = self.series.get((method, route, operation, status)) or self.series[(method, route, UNKNOWN, status)]
        children = self._children.get((series, series.operation))
        if children is None:  # series are bounded (Metrics), so are these
            children = self._children[(series, series.operation)] = (
                self.figures.requests.labels(self.port, method, route, str(status)),
                self.figures.duration.labels(self.port, method, route, series.operation),
            )
        children[0].inc()
        children[1].observe(seconds)
        kind = None if result is None else upstream_error_kind(result)
        if kind is not None:
            self.figures.upstream_errors.labels(self.port, kind).inc()

    def render(self) -> str:
        return self.figures.render_port(self.port)

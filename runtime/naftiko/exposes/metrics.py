"""Request metrics in the Prometheus text format: counts by route and status, latency by
operation, upstream errors.

One series per (method, route, operation, status) holds the latency buckets and their sum:
a request costs one dict lookup and two increments. `operation` is the MCP tool a `tools/call`
names (`Request.operation`); a REST route's operation name is found once, when its series is
made. The exposition adds the series up: `naftiko_requests_total` by method, route and status,
the `naftiko_request_duration_seconds` histogram by method, route and operation (REST
operations and MCP tools alike). A tool name this port does not serve is counted as
`(unknown)` and never kept as a key, so callers cannot make the series grow.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ..engine.results import Result, TimedOut, Unreachable, UpstreamError

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNKNOWN = "(unknown)"


class _Series:
    __slots__ = ("counts", "sum", "operation")

    def __init__(self, operation: str):
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.operation = operation  # the label ("" when the route alone names what was called)


class Metrics:
    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str | None, int], _Series] = {}
        self.upstream_errors: dict[str, int] = defaultdict(int)
        self.tools: frozenset[str] = frozenset()
        self.rest_names: dict[tuple[str, str], str] = {}  # (method, route shape) → REST operation name

    def describe(self, entries: Iterable[tuple[Any, Any]], routes: Iterable[Any] = ()) -> None:
        """What the port serves now (at load and at each reload): its MCP tools and its REST
        routes (`method`, `path`, `target.name`), to name the operations of new series."""
        from .rest import route_shape

        self.tools = frozenset(t.name for _, e in entries if e.kind == "mcp" for t in e.targets)
        self.rest_names = {(r.method, route_shape(r.path)): r.target.name for r in routes}
        for (method, route, operation, _), series in self.series.items():
            if operation is None:
                series.operation = self._rest_name(method, route)

    def observe(
        self, method: str, route: str, status: int, seconds: float, result: Result | None, operation: str | None = None
    ) -> None:
        series = self.series.get((method, route, operation, status))
        if series is None:
            series = self._new(method, route, operation, status)
        series.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        series.sum += seconds
        if result is not None:
            kind = upstream_error_kind(result)
            if kind is not None:
                self.upstream_errors[kind] += 1

    def _new(self, method: str, route: str, operation: str | None, status: int) -> _Series:
        if operation is not None and operation not in self.tools:
            key: tuple[str, str, str | None, int] = (method, route, UNKNOWN, status)
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = _Series(UNKNOWN)
            return series
        series = self.series[(method, route, operation, status)] = _Series(
            operation if operation is not None else self._rest_name(method, route)
        )
        return series

    def _rest_name(self, method: str, route: str) -> str:
        if not self.rest_names:
            return ""
        from .rest import route_shape

        return self.rest_names.get((method, route_shape(route)), "")

    def render(self) -> str:
        return "\n".join(exposition([("", self)])) + "\n"


def upstream_error_kind(result: Result) -> str | None:
    """How an upstream call failed (the `kind` of naftiko_upstream_errors_total), None when it did not."""
    if isinstance(result, UpstreamError):
        return "status"
    if isinstance(result, Unreachable):
        return "unreachable"
    if isinstance(result, TimedOut):
        return "timeout"
    return None


def exposition(sources: Sequence[tuple[str, Metrics]]) -> list[str]:
    """Prometheus lines for the request figures of one or several servers; each source's labels
    (e.g. `port="8080",`) lead its samples, so one exposition can cover a whole process."""
    lines = [
        "# HELP naftiko_requests_total Requests answered, by route and status.",
        "# TYPE naftiko_requests_total counter",
    ]
    for labels, metrics in sources:
        counts: dict[tuple[str, str, int], int] = defaultdict(int)
        for (method, route, _, status), series in metrics.series.items():
            counts[(method, route, status)] += sum(series.counts)
        for (method, route, status), count in sorted(counts.items()):
            lines.append(
                f'naftiko_requests_total{{{labels}method="{method}",route="{_escape(route)}",status="{status}"}} {count}'
            )
    lines += [
        "# HELP naftiko_request_duration_seconds Time to answer a request, by route and operation (REST operation or MCP tool).",
        "# TYPE naftiko_request_duration_seconds histogram",
    ]
    for labels, metrics in sources:
        merged: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}
        for (method, route, _, _), series in metrics.series.items():
            counts_, total = merged.setdefault((method, route, series.operation), ([0] * (len(BUCKETS) + 1), [0.0]))
            for index, count in enumerate(series.counts):
                counts_[index] += count
            total[0] += series.sum
        for (method, route, operation), (bucket_counts, total) in sorted(merged.items()):
            label = f'{labels}method="{method}",route="{_escape(route)}"' + (
                f',operation="{_escape(operation)}"' if operation else ""
            )
            running = 0
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), bucket_counts, strict=True):
                running += count
                lines.append(f'naftiko_request_duration_seconds_bucket{{{label},le="{bound}"}} {running}')
            lines.append(f"naftiko_request_duration_seconds_sum{{{label}}} {total[0]:.6f}")
            lines.append(f"naftiko_request_duration_seconds_count{{{label}}} {running}")
    lines += [
        "# HELP naftiko_upstream_errors_total Upstream calls that failed, by kind.",
        "# TYPE naftiko_upstream_errors_total counter",
    ]
    for labels, metrics in sources:
        for kind, count in sorted(metrics.upstream_errors.items()):
            lines.append(f'naftiko_upstream_errors_total{{{labels}kind="{kind}"}} {count}')
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

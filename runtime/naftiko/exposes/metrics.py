"""Request metrics in the Prometheus text format: counts by route and status, latency, upstream errors."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence

from ..engine.results import Result, TimedOut, Unreachable, UpstreamError

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.upstream_errors: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float, result: Result | None) -> None:
        self.requests[(method, route, status)] += 1
        self.buckets[route][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[route] += seconds
        if isinstance(result, UpstreamError):
            self.upstream_errors["status"] += 1
        elif isinstance(result, Unreachable):
            self.upstream_errors["unreachable"] += 1
        elif isinstance(result, TimedOut):
            self.upstream_errors["timeout"] += 1

    def render(self) -> str:
        return "\n".join(exposition([("", self)])) + "\n"


def exposition(sources: Sequence[tuple[str, Metrics]]) -> list[str]:
    """Prometheus lines for the request figures of one or several servers; each source's labels
    (e.g. `port="8080",`) lead its samples, so one exposition can cover a whole process."""
    lines = [
        "# HELP naftiko_requests_total Requests answered, by route and status.",
        "# TYPE naftiko_requests_total counter",
    ]
    for labels, metrics in sources:
        for (method, route, status), count in sorted(metrics.requests.items()):
            lines.append(f'naftiko_requests_total{{{labels}method="{method}",route="{_escape(route)}",status="{status}"}} {count}')
    lines += [
        "# HELP naftiko_request_duration_seconds Time to answer a request.",
        "# TYPE naftiko_request_duration_seconds histogram",
    ]
    for labels, metrics in sources:
        for route, counts in sorted(metrics.buckets.items()):
            label = f'{labels}route="{_escape(route)}"'
            running = 0
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts):
                running += count
                lines.append(f'naftiko_request_duration_seconds_bucket{{{label},le="{bound}"}} {running}')
            lines.append(f"naftiko_request_duration_seconds_sum{{{label}}} {metrics.sums[route]:.6f}")
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

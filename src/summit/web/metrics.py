"""HTTP metrics in the Prometheus format: requests, latencies and errors by route template, the SQL
each route costs, and the platform's port counters (``summit.telemetry``).

A request adds to plain dictionaries (``observe``: no label lookup, no lock, about 2 us); the
Prometheus families are built from them only when ``/metrics`` is scraped.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from summit.telemetry import PortCollector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Latency:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; the last is +Inf
        self.total = 0.0


class HttpMetrics:
    """The metrics of one app (its own registry, so tests can build many apps)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._latency: dict[tuple[str, str], _Latency] = {}
        self._errors: Counter[tuple[str, str]] = Counter()
        self._sql: Counter[tuple[str, str]] = Counter()
        self._reaching_sql: Counter[tuple[str, str]] = Counter()
        self.registry.register(self)
        self.registry.register(PortCollector())

    def observe(self, method: str, route: str, status: int, seconds: float, *, sql_statements: int = 0) -> None:
        key = (method, route)
        self._requests[(method, route, str(status))] += 1
        latency = self._latency.get(key)
        if latency is None:
            latency = self._latency[key] = _Latency()
        latency.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        latency.total += seconds
        if status >= 500:
            self._errors[key] += 1
        # both series exist for every route seen, so "no SQL" reads as 0, not as "not measured"
        self._sql[key] += sql_statements
        self._reaching_sql[key] += 1 if sql_statements else 0

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily("summit_http_requests", "HTTP requests handled", labels=["method", "route", "status"])
        for labels, value in sorted(self._requests.items()):
            requests.add_metric(list(labels), value)
        yield requests
        latency = HistogramMetricFamily("summit_http_request_duration_seconds", "Time to handle an HTTP request", labels=["method", "route"])
        for labels, h in sorted(self._latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), h.counts):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric(list(labels), buckets, h.total)
        yield latency
        for name, documentation, values in (
            ("summit_http_errors", "HTTP requests answered with a 5xx status", self._errors),
            ("summit_sql_statements", "SQL statements executed while handling requests", self._sql),
            ("summit_http_requests_reaching_sql", "HTTP requests that executed at least one SQL statement", self._reaching_sql),
        ):
            family = CounterMetricFamily(name, documentation, labels=["method", "route"])
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            yield family

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

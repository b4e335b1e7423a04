"""HTTP metrics in the Prometheus format: requests, latencies and errors by route template, the SQL
each route costs, and the platform's port counters (``summit.telemetry``)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from summit.telemetry import PortCollector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """One set of collectors per app (its own registry, so tests can build many apps)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "summit_http_requests", "HTTP requests handled", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "summit_http_request_duration_seconds",
            "Time to handle an HTTP request",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "summit_http_errors", "HTTP requests answered with a 5xx status", ["method", "route"], registry=self.registry
        )
        self.sql_statements = Counter(
            "summit_sql_statements", "SQL statements executed while handling requests", ["method", "route"], registry=self.registry
        )
        self.reaching_sql = Counter(
            "summit_http_requests_reaching_sql", "HTTP requests that executed at least one SQL statement", ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(PortCollector())

    def observe(self, method: str, route: str, status: int, seconds: float, *, sql_statements: int = 0) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 500:
            self.errors.labels(method, route).inc()
        # both series exist for every route seen, so "no SQL" reads as 0, not as "not measured"
        self.sql_statements.labels(method, route).inc(sql_statements)
        self.reaching_sql.labels(method, route).inc(1 if sql_statements else 0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

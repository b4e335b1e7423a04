"""The counters the bench reads from /metrics: a real Prometheus exposition (prometheus_client's
own registry and text format), parsed, differenced and turned into the report's figures."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server

from summit.bench import counters
from summit.bench.net import free_port


class App:
    """The app's series, named and labelled as its /metrics exports them."""

    def __init__(self, *, new_series: bool = True):
        self.registry = CollectorRegistry()
        self.requests = Counter("summit_http_requests", "requests", ["method", "route", "status"], registry=self.registry)
        if new_series:
            self.ops = Counter("summit_port_operations", "port calls", ["port", "operation"], registry=self.registry)
            self.lookups = Counter("summit_cache_lookups", "cache reads", ["namespace", "result"], registry=self.registry)
            self.sql = Counter("summit_sql_statements", "statements", ["method", "route"], registry=self.registry)
            self.reaching = Counter("summit_http_requests_reaching_sql", "requests with SQL", ["method", "route"], registry=self.registry)

    def request(self, method: str, route: str, *, sql: int = 0, hits: dict[str, int] | None = None, misses: dict[str, int] | None = None) -> None:
        self.requests.labels(method, route, "200").inc()
        if sql:
            self.sql.labels(method, route).inc(sql)
            self.reaching.labels(method, route).inc()
            self.ops.labels("sql", "read").inc()
        for namespace, n in (hits or {}).items():
            self.lookups.labels(namespace, "hit").inc(n)
            self.ops.labels("cache", "get").inc(n)
        for namespace, n in (misses or {}).items():
            self.lookups.labels(namespace, "miss").inc(n)
            self.ops.labels("cache", "get").inc(n)

    def scrape(self) -> counters.Snapshot:
        return counters.parse(generate_latest(self.registry).decode())


def test_parse_reads_the_counters_and_knows_which_series_exist() -> None:
    app = App()
    app.request("GET", "/api/v1/feed", sql=3)
    snap = app.scrape()
    assert snap.exported == frozenset(counters.WANTED)
    assert snap.values[(counters.REQUESTS, (("method", "GET"), ("route", "/api/v1/feed"), ("status", "200")))] == 1.0
    assert snap.values[(counters.SQL_STATEMENTS, (("method", "GET"), ("route", "/api/v1/feed")))] == 3.0
    assert not any(name.endswith("_created") for name, _ in snap.values)  # timestamps are not counters


def test_figures_from_the_difference_of_two_scrapes() -> None:
    app = App()
    app.request("GET", "/api/v1/feed", sql=5)  # before the phase: not counted
    before = app.scrape()
    for _ in range(3):  # warm feed reads: from the cache, no SQL
        app.request("GET", "/api/v1/feed", hits={"feed": 1})
    app.request("GET", "/api/v1/feed", sql=4, misses={"feed": 1})  # one cold read
    app.request("GET", "/", sql=2, misses={"feed": 1})  # the web home feed
    app.request("GET", "/api/v1/posts/{post_id}", sql=1, hits={"post": 2}, misses={"user": 2})
    app.request("GET", "/metrics")  # the bench's own scrape: ignored
    figs = counters.figures(counters.delta(before, app.scrape()))

    assert figs["requests"] == 6
    assert figs["cache_lookups"] == 9
    assert figs["cache_hit_ratio"] == pytest.approx(5 / 9)
    assert figs["cache_by_namespace"] == {
        "feed": {"lookups": 5, "hit_ratio": pytest.approx(3 / 5)},
        "post": {"lookups": 2, "hit_ratio": 1.0},
        "user": {"lookups": 2, "hit_ratio": 0.0},
    }
    assert figs["feed_db_share"] == pytest.approx(2 / 5)  # of 5 feed reads (API and web), 2 ran SQL
    assert figs["read_db_share"] == pytest.approx(3 / 6)
    assert figs["sql_per_request"]["GET /api/v1/feed"] == pytest.approx(4 / 4)
    assert figs["sql_per_request"]["GET /"] == 2.0
    assert figs["sql_statements_per_request"] == pytest.approx(7 / 6)
    assert figs["db_share_by_route"]["GET /api/v1/posts/{post_id}"] == 1.0
    assert "GET /metrics" not in figs["sql_per_request"]
    assert figs["port_operations"] == {"cache": {"get": 9}, "sql": {"read": 3}}


def test_a_series_the_server_does_not_export_is_not_measured_never_zero() -> None:
    old = App(new_series=False)
    before = old.scrape()
    old.request("GET", "/api/v1/feed")
    figs = counters.figures(counters.delta(before, old.scrape()))
    assert figs["measured"] == [counters.REQUESTS]
    assert figs["requests"] == 1
    for key in ("cache_hit_ratio", "cache_lookups", "feed_db_share", "read_db_share", "sql_per_request", "port_operations"):
        assert figs[key] is None, key


def test_exported_but_untouched_series_count_zero() -> None:
    app = App()
    before = app.scrape()
    app.request("GET", "/healthz")
    figs = counters.figures(counters.delta(before, app.scrape()))
    assert figs["cache_lookups"] == 0 and figs["cache_hit_ratio"] is None  # measured: no lookup to divide by
    assert figs["feed_db_share"] is None and figs["read_db_share"] == 0.0
    assert figs["sql_per_request"] == {"GET /healthz": 0.0}


def test_total_adds_phases_and_a_missing_scrape_measures_nothing() -> None:
    app = App()
    s0 = app.scrape()
    app.request("GET", "/api/v1/feed", hits={"feed": 1})
    s1 = app.scrape()
    app.request("GET", "/api/v1/feed", misses={"feed": 1}, sql=2)
    s2 = app.scrape()
    figs = counters.figures(counters.total([counters.delta(s0, s1), counters.delta(s1, s2)]))
    assert figs["cache_hit_ratio"] == 0.5 and figs["feed_db_share"] == 0.5
    assert counters.total([counters.delta(s0, s1), None]) is None
    assert counters.total([]) is None
    assert counters.delta(None, s1) is None
    assert counters.figures(None)["cache_hit_ratio"] is None


def test_meter_scrapes_a_real_server_around_a_phase() -> None:
    app = App()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=app.registry)
    try:
        with counters.Meter(f"http://127.0.0.1:{port}").phase() as reading:
            app.request("GET", "/api/v1/feed", sql=1, misses={"feed": 1})
            app.request("GET", "/api/v1/feed", hits={"feed": 1})
        figs = counters.figures(reading.delta)
        assert figs["requests"] == 2 and figs["cache_hit_ratio"] == 0.5 and figs["feed_db_share"] == 0.5
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert counters.scrape(f"http://127.0.0.1:{port}") is None  # nothing there any more: not measured

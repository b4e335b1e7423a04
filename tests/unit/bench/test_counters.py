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


# ---- several app servers (stage 1k and after: HAProxy in front, each server its own counters) ----
def test_the_counters_of_several_servers_are_added_up() -> None:
    one, two = App(), App()
    one.request("GET", "/api/v1/feed", sql=9)  # before the phase: not counted
    before = [one.scrape(), two.scrape()]
    one.request("GET", "/api/v1/feed", sql=2, misses={"feed": 1})
    two.request("GET", "/api/v1/feed", hits={"feed": 1})
    two.request("GET", "/api/v1/feed", hits={"feed": 1})
    two.request("GET", "/api/v1/posts/{post_id}", sql=1, misses={"post": 1})
    summed = counters.summed_delta(before, [one.scrape(), two.scrape()])
    figs = counters.figures(summed)
    assert figs["requests"] == 4
    assert figs["feed_db_share"] == pytest.approx(1 / 3)  # 3 feed reads over the two servers, 1 reached SQL
    assert figs["cache_hit_ratio"] == 0.5 and figs["cache_lookups"] == 4
    assert figs["sql_statements_per_request"] == pytest.approx(3 / 4)
    # one server that could not be read measures nothing: a part of the servers is not the truth
    assert counters.summed_delta(before, [one.scrape(), None]) is None
    assert counters.summed_delta([], []) is None
    assert counters.summed_delta(before, [one.scrape()]) is None  # not the same servers


def test_a_server_restarted_between_scrapes_counts_from_zero() -> None:
    old = App()
    for _ in range(5):
        old.request("GET", "/api/v1/feed", sql=1)
    before = old.scrape()
    new = App()  # the same server after a restart: its counters start again
    new.request("GET", "/api/v1/feed", sql=1)
    new.request("GET", "/api/v1/feed")
    figs = counters.figures(counters.delta(before, new.scrape()))
    assert figs["requests"] == 2 and figs["sql_statements_per_request"] == 0.5  # not 2 - 5


def test_health_checks_are_left_out_of_the_workload() -> None:
    app = App()
    before = app.scrape()
    app.request("GET", "/api/v1/feed", hits={"feed": 1})
    for _ in range(3):  # HAProxy's and Varnish's checks while the phase ran
        app.request("GET", "/healthz", sql=1)
    delta = counters.delta(before, app.scrape())
    assert counters.figures(delta)["requests"] == 4
    work = counters.figures(delta, ignored=counters.WORKLOAD_ONLY)
    assert work["requests"] == 1 and work["sql_statements_per_request"] == 0.0 and work["read_db_share"] == 0.0
    assert "GET /healthz" not in work["db_share_by_route"]


def test_where_to_scrape() -> None:
    assert counters.server_urls("http://127.0.0.1:8000") == ["http://127.0.0.1:8000"]
    assert counters.server_urls("http://127.0.0.1:8000", ["http://127.0.0.1:21001", "http://127.0.0.1:21002"]) == [
        "http://127.0.0.1:21001", "http://127.0.0.1:21002",
    ]


def test_meter_scrapes_every_server_and_adds_them_up() -> None:
    apps = [App(), App()]
    servers = []
    try:
        for app in apps:
            port = free_port()
            servers.append((port, *start_http_server(port, addr="127.0.0.1", registry=app.registry)))
        meter = counters.Meter([f"http://127.0.0.1:{port}" for port, _, _ in servers])
        with meter.phase() as reading:
            apps[0].request("GET", "/api/v1/feed", sql=1, misses={"feed": 1})
            apps[1].request("GET", "/api/v1/feed", hits={"feed": 1})
            apps[1].request("GET", "/api/v1/feed", hits={"feed": 1})
        figs = counters.figures(reading.delta)
        assert figs["requests"] == 3 and figs["feed_db_share"] == pytest.approx(1 / 3)
    finally:
        for _, server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

"""What the server counted while a phase ran: ``/metrics`` scraped before and after, and the
difference turned into the report's cache and database figures.

The app exports (Prometheus text format, parsed with ``prometheus_client.parser``):

- ``summit_http_requests_total{method,route,status}``: requests handled, by route template;
- ``summit_port_operations_total{port,operation}``: calls into each port;
- ``summit_cache_lookups_total{namespace,result}``: cache reads by key namespace, hit or miss;
- ``summit_sql_statements_total{method,route}``: SQL statements run while handling a route;
- ``summit_http_requests_reaching_sql_total{method,route}``: requests of a route that ran at
  least one SQL statement.

A series the server does not export (an older server) is *not measured*: its figures are None,
never 0. A series exported with no sample yet is measured and counts 0.

From stage 1k several app servers share the work (HAProxy in front, each on a loopback port of
its own): each keeps its own counters, so the bench scrapes every one directly (``Meter`` takes
their URLs) and adds up their differences; one of them that cannot be read makes the phase's
figures not measured, never a part of the truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "summit_http_requests_total"
PORT_OPERATIONS = "summit_port_operations_total"
CACHE_LOOKUPS = "summit_cache_lookups_total"
SQL_STATEMENTS = "summit_sql_statements_total"
REACHING_SQL = "summit_http_requests_reaching_sql_total"
WANTED = (REQUESTS, PORT_OPERATIONS, CACHE_LOOKUPS, SQL_STATEMENTS, REACHING_SQL)

# the feed as a user reads it: the API's and the web home page's
FEED_ROUTES = (("GET", "/api/v1/feed"), ("GET", "/"))
# the bench's own scrapes are not the workload's requests
IGNORED_ROUTES = frozenset({"/metrics"})
# nor are the health checks of the stage's own machinery (HAProxy's every 500 ms per app server,
# Varnish's every second): left out too, except where /healthz is what is measured
HEALTH_ROUTES = frozenset({"/healthz"})
WORKLOAD_ONLY = IGNORED_ROUTES | HEALTH_ROUTES

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Snapshot:
    """Counter values by (series name, sorted labels), and which series the server exports."""

    values: dict[tuple[str, Labels], float] = field(default_factory=dict)
    exported: frozenset[str] = frozenset()

    def series(self, name: str) -> Iterable[tuple[dict[str, str], float]]:
        for (series, labels), value in self.values.items():
            if series == name:
                yield dict(labels), value


def parse(text: str) -> Snapshot:
    """The counters of a Prometheus text exposition that the bench reads (others are skipped)."""
    values: dict[tuple[str, Labels], float] = {}
    exported: set[str] = set()
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" and not family.name.endswith("_total") else family.name
        if name not in WANTED:
            continue
        exported.add(name)
        for sample in family.samples:
            if sample.name == name:
                values[(name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Snapshot(values, frozenset(exported))


def scrape(url: str, *, timeout: float = 10.0) -> Snapshot | None:
    """The server's counters now, or None if ``/metrics`` cannot be read (then nothing is measured)."""
    try:
        response = httpx.get(url.rstrip("/") + "/metrics", timeout=timeout)
        if not response.is_success:
            return None
        return parse(response.text)
    except (httpx.HTTPError, ValueError):
        return None


def delta(before: Snapshot | None, after: Snapshot | None) -> Snapshot | None:
    """What was counted between two scrapes (a series new in ``after`` started from 0). A series
    counts as exported only if both scrapes had it; None if either scrape failed. A counter that
    went down was reset (its server restarted meanwhile): what it counted since is its new value,
    as Prometheus's ``increase()`` takes it."""
    if before is None or after is None:
        return None
    exported = before.exported & after.exported
    values = {}
    for key, value in after.values.items():
        if key[0] in exported:
            old = before.values.get(key, 0.0)
            values[key] = value - old if value >= old else value
    return Snapshot(values, exported)


def total(deltas: Iterable[Snapshot | None]) -> Snapshot | None:
    """Several phases' differences added up (None if any is None: a gap would bias the sum)."""
    values: dict[tuple[str, Labels], float] = {}
    exported: frozenset[str] | None = None
    for d in deltas:
        if d is None:
            return None
        exported = d.exported if exported is None else exported & d.exported
        for key, value in d.values.items():
            values[key] = values.get(key, 0.0) + value
    if exported is None:
        return None
    return Snapshot({k: v for k, v in values.items() if k[0] in exported}, exported)


def _by_route(d: Snapshot, name: str, ignored: frozenset[str] = IGNORED_ROUTES) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for labels, value in d.series(name):
        route = labels.get("route", "")
        if route in ignored:
            continue
        key = (labels.get("method", ""), route)
        out[key] = out.get(key, 0.0) + value
    return out


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def figures(d: Snapshot | None, *, ignored: frozenset[str] = IGNORED_ROUTES) -> dict[str, Any]:
    """The report's figures from one difference. Each is None when its series is not exported
    (or nothing was counted to divide by); ``measured`` lists the series that were. Requests of
    the ``ignored`` routes are left out (the bench's own scrapes; ``WORKLOAD_ONLY``: the health
    checks too). Cache lookups have no route: they are all counted."""
    empty: dict[str, Any] = {
        "measured": [], "requests": 0, "cache_hit_ratio": None, "cache_lookups": None, "cache_by_namespace": None,
        "feed_db_share": None, "read_db_share": None, "db_share": None, "sql_statements_per_request": None,
        "sql_per_request": None, "db_share_by_route": None, "port_operations": None,
    }
    if d is None:
        return empty
    out = dict(empty, measured=sorted(d.exported))
    requests = _by_route(d, REQUESTS, ignored) if REQUESTS in d.exported else {}
    out["requests"] = int(sum(requests.values()))
    if CACHE_LOOKUPS in d.exported:
        spaces: dict[str, dict[str, float]] = {}
        for labels, value in d.series(CACHE_LOOKUPS):
            counts = spaces.setdefault(labels.get("namespace", "other"), {"hit": 0.0, "miss": 0.0})
            counts[labels.get("result", "miss")] = counts.get(labels.get("result", "miss"), 0.0) + value
        hits = sum(c["hit"] for c in spaces.values())
        lookups = sum(c["hit"] + c["miss"] for c in spaces.values())
        out["cache_lookups"] = int(lookups)
        out["cache_hit_ratio"] = _share(hits, lookups)
        out["cache_by_namespace"] = {
            name: {"lookups": int(c["hit"] + c["miss"]), "hit_ratio": _share(c["hit"], c["hit"] + c["miss"])} for name, c in sorted(spaces.items())
        }
    if REACHING_SQL in d.exported and REQUESTS in d.exported:
        reaching = _by_route(d, REACHING_SQL, ignored)
        out["feed_db_share"] = _share(sum(reaching.get(k, 0.0) for k in FEED_ROUTES), sum(requests.get(k, 0.0) for k in FEED_ROUTES))
        out["db_share"] = _share(sum(reaching.values()), sum(requests.values()))
        reads = [k for k in requests if k[0] == "GET"]
        out["read_db_share"] = _share(sum(reaching.get(k, 0.0) for k in reads), sum(requests.get(k, 0.0) for k in reads))
        out["db_share_by_route"] = {_label(k): _share(reaching.get(k, 0.0), n) for k, n in sorted(requests.items()) if n > 0}
    if SQL_STATEMENTS in d.exported and REQUESTS in d.exported:
        statements = _by_route(d, SQL_STATEMENTS, ignored)
        out["sql_statements_per_request"] = _share(sum(statements.values()), sum(requests.values()))
        out["sql_per_request"] = {_label(k): statements.get(k, 0.0) / n for k, n in sorted(requests.items()) if n > 0}
    if PORT_OPERATIONS in d.exported:
        ops: dict[str, dict[str, int]] = {}
        for labels, value in d.series(PORT_OPERATIONS):
            ops.setdefault(labels.get("port", "?"), {})[labels.get("operation", "?")] = int(value)
        out["port_operations"] = {port: dict(sorted(o.items())) for port, o in sorted(ops.items())}
    return out


def _label(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


def route_figure(figs: dict[str, Any], name: str, method: str, route: str) -> float | None:
    """One route's figure (``sql_per_request`` or ``db_share_by_route``), None if not measured."""
    table = figs.get(name)
    return None if table is None else table.get(f"{method} {route}")


def summed_delta(before: Sequence[Snapshot | None], after: Sequence[Snapshot | None]) -> Snapshot | None:
    """What several servers counted between two rounds of scrapes (the same servers, in the same
    order), added up; None if any scrape failed (a server missing would bias the sum)."""
    if not before or len(before) != len(after):
        return None
    return total(delta(b, a) for b, a in zip(before, after, strict=True))


def server_urls(url: str, app_servers: Sequence[str] = ()) -> list[str]:
    """Where to scrape: every app server's own URL when the stage names them (behind a load
    balancer, one scrape of the public port would reach one of them at random), else ``url``."""
    return list(app_servers) or [url]


class Meter:
    """Scrapes ``/metrics`` of every app server around a phase: ``with meter.phase() as reading:
    ...`` then ``reading.delta`` (their differences added up). A server without ``/metrics``
    gives None deltas (not measured)."""

    def __init__(self, urls: str | Sequence[str]):
        self.urls = [urls] if isinstance(urls, str) else list(urls)

    @property
    def url(self) -> str:
        return self.urls[0]

    def phase(self) -> _Reading:
        return _Reading(self.urls)


class _Reading:
    def __init__(self, urls: list[str]):
        self.urls = urls
        self.before: list[Snapshot | None] = []
        self.delta: Snapshot | None = None

    def __enter__(self) -> _Reading:
        self.before = [scrape(url) for url in self.urls]
        return self

    def __exit__(self, *exc: object) -> None:
        self.delta = summed_delta(self.before, [scrape(url) for url in self.urls]) if exc[0] is None else None

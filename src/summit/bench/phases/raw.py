"""Raw single-endpoint throughput: wrk saturating one request at a time, the server's CPU per
request, and what the server counted meanwhile (``/metrics`` before and after each run).

Each endpoint has a short name (``summit bench profile <name>`` takes the same ones). Reads are
warm: the request is made once before the run (twice for photos: the second says whether a CDN
had it), then wrk repeats it (the same post, the same user's feed, the same photo)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from summit.bench import baselines, counters, frontdoor
from summit.bench.net import verify_for
from summit.bench.phases.seeding import MediaPhoto
from summit.bench.seed import Seeded
from summit.bench.session import Session

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Endpoint:
    key: str  # the short name
    name: str  # the name in the report
    method: str
    path: Callable[[Seeded, MediaPhoto | None], str | None]  # None: this run cannot make the request
    auth: bool = False
    body: str | None = None


ENDPOINTS = (
    Endpoint("healthz", "healthz", "GET", lambda d, m: "/healthz"),
    Endpoint("profile", "profile", "GET", lambda d, m: f"/api/v1/users/{d.users[1].username}", auth=True),
    Endpoint("feed", "feed", "GET", lambda d, m: "/api/v1/feed", auth=True),
    Endpoint("post", "post", "GET", lambda d, m: f"/api/v1/posts/{d.posts[0].id}", auth=True),
    Endpoint("photo", "media photo", "GET", lambda d, m: d.posts[0].photo_path),
    Endpoint("media", "media 200k", "GET", lambda d, m: m.path if m else None),
    Endpoint("like", "like", "PUT", lambda d, m: f"/api/v1/posts/{d.posts[0].id}/like", auth=True),
    Endpoint("follow", "follow", "PUT", lambda d, m: f"/api/v1/users/{d.users[1].username}/follow", auth=True),
    Endpoint("comment", "comment", "POST", lambda d, m: f"/api/v1/posts/{d.posts[0].id}/comments", auth=True, body='{"body":"wrk comment"}'),
)
BY_KEY = {e.key: e for e in ENDPOINTS}
# the raw read that best matches pgbench -S (a primary-key read): its row carries ratio_to_pgbench
PGBENCH_PEER = "post"


def request_of(endpoint: Endpoint, data: Seeded, media: MediaPhoto | None) -> tuple[str, dict[str, str], str | None] | None:
    """(path, headers, body) of one request to ``endpoint`` as the first seeded user, or None."""
    path = endpoint.path(data, media)
    if path is None:
        return None
    headers = dict(data.users[0].auth) if endpoint.auth else {}
    if endpoint.body is not None:
        headers.update(JSON)
    return path, headers, endpoint.body


def counted(figs: dict[str, Any]) -> dict[str, Any]:
    """The per-run figures a raw row carries (None: not measured)."""
    return {k: figs[k] for k in ("requests", "sql_statements_per_request", "db_share", "cache_hit_ratio", "cache_lookups", "port_operations")}


# the photo reads: through a CDN from stage 10k (X-Cache says whether the edge had it)
CDN_PATHS = ("photo", "media")


def prime(url: str, path: str, headers: dict[str, str]) -> None:
    """One request before a read is measured, so that the run is warm from its first request:
    whatever the stage caches for it is filled once, not by the first requests of every
    connection at once (a cold start that would count as the run's misses and SQL)."""
    import httpx

    try:
        httpx.get(url + path, headers=headers, timeout=10, verify=verify_for(url))
    except httpx.HTTPError:
        pass


def cdn_check(url: str, path: str) -> dict[str, Any] | None:
    """Fetch ``path`` twice (the first warms whatever caches it) and say how the second came back:
    ``{"x_cache": "HIT", "tier": "edge"}`` through Varnish, None without a CDN (or no answer)."""
    import httpx

    try:
        with httpx.Client(base_url=url, timeout=10, verify=verify_for(url)) as client:
            client.get(path)
            second = client.get(path)
    except httpx.HTTPError:
        return None
    if "x-cache" not in second.headers:
        return None
    return {"x_cache": second.headers.get("x-cache"), "tier": second.headers.get("x-cache-tier"), "status": second.status_code}


def settle(session: Session, url: str, *, timeout: float = 60.0) -> float:
    """Until the requests that wrk left behind, queued in the stage, are done: behind HAProxy, until
    it has none in progress towards its backends; else until ``/healthz`` answers within a second.
    The seconds it took (bounded by ``timeout``); nothing listening at all is not a queue: at once."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if session.haproxy_stats:
            if not frontdoor.in_flight(session.haproxy_stats):  # 0, or no answer: nothing to wait for
                break
        else:
            try:
                if httpx.get(url + "/healthz", timeout=1, verify=verify_for(url)).is_success:
                    break
            except httpx.ConnectError:
                break
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    return time.monotonic() - started


def measure_one(session: Session, url: str, endpoint: Endpoint, request: tuple[str, dict[str, str], str | None], base: Any) -> dict[str, Any] | None:
    path, headers, body = request
    session.wait_idle(timeout=10)
    cdn = None
    if endpoint.key in CDN_PATHS:
        cdn = cdn_check(url, path)
    elif endpoint.method == "GET":
        prime(url, path, headers)
    with session.meter(url).phase() as reading:
        try:
            parts0 = session.part_cpu()
            result, cpu = baselines.measure_wrk(
                url + path, session.server_pid, seconds=session.o.raw_seconds, client_core=session.client_core,
                method=endpoint.method, headers=headers, body=body,
            )
            parts1 = session.part_cpu()
        except Exception as error:  # noqa: BLE001
            session.notes.append(f"raw {endpoint.name}: wrk failed: {error}")
            return None
    if result.errors:
        session.notes.append(f"raw {endpoint.name}: {result.errors} of {result.requests} requests failed or were not 2xx/3xx")
    if not result.requests:
        session.notes.append(f"raw {endpoint.name}: no request was answered within wrk's 5 s timeout during the run")
    waited = settle(session, url)
    if waited > 2:
        session.notes.append(f"raw {endpoint.name}: requests wrk left behind were still in progress in the stage {waited:.0f} s after the run (the next phase waited for them)")
    hello = base.hello
    row = {
        "name": endpoint.name, "key": endpoint.key, "method": endpoint.method, "path": path,
        "rps": result.good_rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
        "ratio_to_hello": result.good_rps / hello if hello else None,
        "cpu_ms_per_request": cpu, "errors": result.errors,
        "counters": counted(counters.figures(reading.delta, ignored=counters.IGNORED_ROUTES if endpoint.key == "healthz" else counters.WORKLOAD_ONLY)),
    }
    if parts1 and result.requests:
        row["cpu_ms_by_part"] = {name: max(0.0, parts1[name] - parts0.get(name, 0.0)) * 1000 / result.requests for name in parts1}
    if base.hello_front_door:
        row["ratio_to_hello_front_door"] = result.good_rps / base.hello_front_door
    if endpoint.key == "media":
        row["ratio_to_nginx_same_file"] = result.good_rps / base.nginx_photo if base.nginx_photo else None
        if base.nginx_front_door:
            row["ratio_to_nginx_front_door"] = result.good_rps / base.nginx_front_door
    if cdn is not None:
        row["cdn"] = cdn
    if endpoint.key == PGBENCH_PEER:
        row["ratio_to_pgbench"] = result.good_rps / base.pgbench if base.pgbench else None
    return row


def _say(session: Session, row: dict[str, Any]) -> None:
    sql = row["counters"]["sql_statements_per_request"]
    session.console.print(
        f"    {row['name']:<12} {row['rps']:>9,.0f} req/s  p99 {row['p99_ms']:6.1f} ms  server CPU {row['cpu_ms_per_request'] or 0:.2f} ms/req"
        + (f"  ({row['ratio_to_hello']:.3f} x hello)" if row["ratio_to_hello"] is not None else "")
        + (f"  ({row['ratio_to_nginx_same_file']:.3f} x nginx, same file)" if row.get("ratio_to_nginx_same_file") is not None else "")
        + (f"  ({row['ratio_to_hello_front_door']:.3f} x hello behind HAProxy)" if row.get("ratio_to_hello_front_door") is not None and row["key"] == "feed" else "")
        + (f"  ({row['ratio_to_nginx_front_door']:.3f} x nginx behind HAProxy)" if row.get("ratio_to_nginx_front_door") is not None else "")
        + (f"  (CDN: {row['cdn']['x_cache']} at the {row['cdn']['tier']})" if row.get("cdn") else "")
        + (f"  ({row['ratio_to_pgbench']:.3f} x pgbench -S)" if row.get("ratio_to_pgbench") is not None else "")
        + (f"  SQL/req {sql:.2f}" if sql is not None else "")
    )


def measure(session: Session, url: str, data: Seeded, media: MediaPhoto | None, base: Any) -> list[dict[str, Any]]:
    """One wrk run per endpoint, in the table's order; an endpoint this run cannot reach is skipped."""
    rows = []
    for endpoint in ENDPOINTS:
        if session.o.raw_only is not None and endpoint.key not in session.o.raw_only:
            continue
        request = request_of(endpoint, data, media)
        if request is None:
            continue
        row = measure_one(session, url, endpoint, request, base)
        if row is not None:
            rows.append(row)
            _say(session, row)
    return rows

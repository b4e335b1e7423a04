"""Raw single-endpoint throughput: wrk saturating one request at a time, the server's CPU per
request, and what the server counted meanwhile (``/metrics`` before and after each run).

Each endpoint has a short name (``summit bench profile <name>`` takes the same ones). Reads are
warm: wrk repeats the same request (the same post, the same user's feed, the same photo)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from summit.bench import baselines, counters
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


def measure_one(session: Session, url: str, endpoint: Endpoint, request: tuple[str, dict[str, str], str | None], base: Any) -> dict[str, Any] | None:
    path, headers, body = request
    session.wait_idle(timeout=10)
    with counters.Meter(url).phase() as reading:
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
    hello = base.hello
    row = {
        "name": endpoint.name, "key": endpoint.key, "method": endpoint.method, "path": path,
        "rps": result.good_rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
        "ratio_to_hello": result.good_rps / hello if hello else None,
        "cpu_ms_per_request": cpu, "errors": result.errors,
        "counters": counted(counters.figures(reading.delta)),
    }
    if parts1 and result.requests:
        row["cpu_ms_by_part"] = {name: max(0.0, parts1[name] - parts0.get(name, 0.0)) * 1000 / result.requests for name in parts1}
    if endpoint.key == "media":
        row["ratio_to_nginx_same_file"] = result.good_rps / base.nginx_photo if base.nginx_photo else None
    if endpoint.key == PGBENCH_PEER:
        row["ratio_to_pgbench"] = result.good_rps / base.pgbench if base.pgbench else None
    return row


def _say(session: Session, row: dict[str, Any]) -> None:
    sql = row["counters"]["sql_statements_per_request"]
    session.console.print(
        f"    {row['name']:<12} {row['rps']:>9,.0f} req/s  p99 {row['p99_ms']:6.1f} ms  server CPU {row['cpu_ms_per_request'] or 0:.2f} ms/req"
        + (f"  ({row['ratio_to_hello']:.3f} x hello)" if row["ratio_to_hello"] is not None else "")
        + (f"  ({row['ratio_to_nginx_same_file']:.3f} x nginx, same file)" if row.get("ratio_to_nginx_same_file") is not None else "")
        + (f"  ({row['ratio_to_pgbench']:.3f} x pgbench -S)" if row.get("ratio_to_pgbench") is not None else "")
        + (f"  SQL/req {sql:.2f}" if sql is not None else "")
    )


def measure(session: Session, url: str, data: Seeded, media: MediaPhoto | None, base: Any) -> list[dict[str, Any]]:
    """One wrk run per endpoint, in the table's order; an endpoint this run cannot reach is skipped."""
    rows = []
    for endpoint in ENDPOINTS:
        request = request_of(endpoint, data, media)
        if request is None:
            continue
        row = measure_one(session, url, endpoint, request, base)
        if row is not None:
            rows.append(row)
            _say(session, row)
    return rows

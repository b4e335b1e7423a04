"""The baselines of the run: the bare ASGI hello, nginx (a 1 KiB file and the very photo the app
serves), redis-benchmark / pgbench where the stage runs those engines, and from stage 1k the same
hello and photo through a second HAProxy of the stage's configuration (``summit.bench.frontdoor``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summit.bench import baselines, frontdoor
from summit.bench.phases.seeding import MediaPhoto
from summit.bench.session import Session

STATIC_FILE = "1k.bin"
PHOTO_FILE = "photo.jpg"


@dataclass
class Baselines:
    values: dict[str, float | None] = field(default_factory=dict)  # the report's "baselines" keys
    detail: dict[str, dict[str, float | None]] = field(default_factory=dict)  # p50/p99/CPU by label

    @property
    def hello(self) -> float | None:
        return self.values.get("asgi_hello_rps")

    @property
    def nginx_photo(self) -> float | None:
        return self.values.get("nginx_photo_rps")

    @property
    def pgbench(self) -> float | None:
        return self.values.get("pgbench_tps")

    @property
    def hello_front_door(self) -> float | None:
        return self.values.get("hello_front_door_rps")

    @property
    def nginx_front_door(self) -> float | None:
        return self.values.get("nginx_front_door_photo_rps")


PHOTO_LABEL = "nginx the app's photo"
HELLO_FRONT_LABEL = "hello behind HAProxy"
NGINX_FRONT_LABEL = "nginx photo behind HAProxy"


def _keep(out: Baselines, key: str, label: str, m: baselines.Measured, session: Session, *, note: bool = True, unit: str = "req/s") -> None:
    out.values[key] = m.rps
    out.detail[label] = {"p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "cpu_ms_per_request": m.cpu_ms_per_request}
    if m.note and note:
        session.notes.append(m.note)
    if m.rps is not None:
        session.console.print(
            f"    {label:<24} {m.rps:>9,.0f} {unit}"
            + (f"  p99 {m.p99_ms:6.1f} ms" if m.p99_ms is not None else "")
            + (f"  server CPU {m.cpu_ms_per_request:.3f} ms each" if m.cpu_ms_per_request is not None and m.p99_ms is None else "")
        )


def measure(session: Session, blueprint: Any, media: MediaPhoto | None) -> Baselines:
    out = Baselines(values={"asgi_hello_rps": None, "nginx_static_rps": None, "redis_ops": None, "pgbench_tps": None, "nginx_photo_rps": None})
    o, watch = session.o, session.monitor.watch if session.monitor else None
    pins = {"server_core": session.server_core, "client_core": session.client_core}
    session.phase("baseline: bare ASGI hello on granian", "hello")
    _keep(out, "asgi_hello_rps", "ASGI hello (granian)", baselines.asgi_hello(session.workdir, seconds=o.raw_seconds, watch=watch, **pins), session)
    files = {STATIC_FILE: b"x" * 1024} | ({PHOTO_FILE: media.data} if media else {})
    session.phase("baseline: nginx, a 1 KiB file" + (f" and the app's {len(media.data):,}-byte photo" if media else ""), "nginx")
    served = baselines.nginx_files(session.workdir, files, seconds=o.raw_seconds, watch=watch, **pins)
    _keep(out, "nginx_static_rps", "nginx static 1 KiB", served[STATIC_FILE], session)
    if media:
        _keep(out, "nginx_photo_rps", PHOTO_LABEL, served[PHOTO_FILE], session, note=False)  # a missing nginx is said once
    if blueprint.engines.haproxy.enabled:
        front_door(session, blueprint, media, out)
    engines = stage_engines(blueprint)
    if "redis" in engines:
        session.phase("baseline: redis-benchmark")
        _keep(out, "redis_ops", "redis-benchmark GET/SET", baselines.redis_benchmark(engines["redis"], client_core=session.client_core), session)
    if "postgresql" in engines:
        session.phase("baseline: pgbench -S, one client, through the primary's PgBouncer", "pgbench")
        target = baselines.pg_target(engines["postgresql"], Path(blueprint.data_dir))
        if isinstance(target, str):
            session.notes.append(target)
        else:
            database = session.parts.get("database")
            m = baselines.pgbench_select(target, seconds=o.raw_seconds, client_core=session.client_core, server_cpu=database.cpu_seconds if database else None)
            _keep(out, "pgbench_tps", "pgbench -S (1 client)", m, session, unit="tps")
            if m.rps is not None:
                session.notes.append(PGBENCH_NOTE)
    elif blueprint.engines.postgres.enabled:
        session.notes.append(
            f"stage {blueprint.stage} runs PostgreSQL, but its URL could not be read from {blueprint.data_dir} "
            "(with --url, give the stage's data directory with -d): pgbench_tps not measured"
        )
    postgres = "postgresql" in engines or blueprint.engines.postgres.enabled
    if "redis" not in engines and not postgres:
        session.notes.append(
            f"stage {blueprint.stage} runs no Redis and no PostgreSQL (SQLite, files, in-process cache and queue): "
            "redis_ops and pgbench_tps are not measured at this stage"
        )
    elif "redis" not in engines:
        session.notes.append(f"stage {blueprint.stage} runs no Redis (an in-process cache): redis_ops is not measured at this stage")
    return out


def front_door(session: Session, blueprint: Any, media: MediaPhoto | None, out: Baselines) -> None:
    """The hello behind a second HAProxy of the stage's render (as many hello servers as app
    servers), and the app's photo behind the same HAProxy from nginx in the CDN's place."""
    servers = blueprint.server.processes
    session.phase(f"baseline: the front door: HAProxy in front of {servers} hello servers" + (" and of nginx serving the app's photo" if media else ""), "front door")
    found = frontdoor.measure(
        session.workdir, servers=servers, workers=blueprint.server.workers, check_interval_ms=blueprint.engines.haproxy.check_interval_ms,
        photo=(media.path, media.data) if media else None, seconds=session.o.raw_seconds,
        server_core=session.server_core, client_core=session.client_core, watch=session.monitor.watch if session.monitor else None,
    )
    if found.note:
        session.notes.append(found.note)
    _keep(out, "hello_front_door_rps", HELLO_FRONT_LABEL, found.hello, session)
    if media:
        _keep(out, "nginx_front_door_photo_rps", NGINX_FRONT_LABEL, found.photo, session)
    if found.hello.rps is not None:
        session.notes.append(FRONT_DOOR_NOTE.format(servers=servers))
        edge = [what for what, on in (("TLS (HTTPS at the front door)", blueprint.tls),
                                      ("the WAF tier (nginx + ModSecurity + CRS on the dynamic path)", blueprint.engines.waf.enabled)) if on]
        if edge:
            session.notes.append(FRONT_DOOR_EDGE_NOTE.format(edge=" and ".join(edge)))


FRONT_DOOR_EDGE_NOTE = (
    "the front-door baselines' HAProxy is the bench's own and speaks plain HTTP, with no WAF tier; the stage runs {edge}: "
    "the ratios to them include what those cost (the photo's does not pass the WAF: the CDN serves it)"
)
FRONT_DOOR_NOTE = (
    "front-door baselines: a second HAProxy rendered by the stage's own engine unit (same configuration: health checks, "
    "retries, X-Forwarded-For, request ids, access log), under the control plane's supervisor, in front of {servers} bare "
    "ASGI hello servers on granian (pinned like the app servers: baselines.hello_front_door_rps, GET /) and of nginx in "
    "the CDN's place serving the app's photo at the same /media/ path (baselines.nginx_front_door_photo_rps); HAProxy and "
    "nginx float over the cores like the stage's engines. raw[].ratio_to_hello_front_door and raw[media].ratio_to_nginx_front_door "
    "set the stage's requests through its own HAProxy against them"
)


PGBENCH_NOTE = (
    "pgbench_tps: pgbench -S (select-only: one primary-key SELECT of pgbench_accounts per transaction, scale 1) with ONE "
    "client, through the primary's PgBouncer (transaction pooling) as the app's role, password from the stage's passfile, "
    "in a scratch database made and dropped for it; pinned to the client's core, the database processes floating like the stage's engines: one "
    "round trip of the app's own path to PostgreSQL at a time, not the server's throughput. raw[post].ratio_to_pgbench "
    "sets the app's warm GET /api/v1/posts/<id> (64 connections, mostly from the cache: see its SQL per request) against it"
)


def stage_engines(blueprint: Any) -> dict[str, str]:
    """Engines of the stage that have a baseline: {"redis": url, "postgresql": url}. A port whose
    URL names an engine of a stage that is not running (``{postgres}`` with no endpoints
    published) is left out."""
    from summit.blueprint import BlueprintError

    found: dict[str, str] = {}
    for name in type(blueprint.ports).model_fields:
        try:
            url = blueprint.port_url(name)
        except BlueprintError:
            continue
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme in ("redis", "rediss") and "redis" not in found:
            found["redis"] = url
        if scheme in ("postgresql", "postgres") and "postgresql" not in found:
            found["postgresql"] = url
    return found

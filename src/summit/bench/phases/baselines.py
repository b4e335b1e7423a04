"""The baselines of the run: the bare ASGI hello, nginx (a 1 KiB file and the very photo the app
serves), and redis-benchmark / pgbench where the stage runs those engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from summit.bench import baselines
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


PHOTO_LABEL = "nginx the app's photo"


def _keep(out: Baselines, key: str, label: str, m: baselines.Measured, session: Session, *, note: bool = True) -> None:
    out.values[key] = m.rps
    out.detail[label] = {"p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "cpu_ms_per_request": m.cpu_ms_per_request}
    if m.note and note:
        session.notes.append(m.note)
    if m.rps is not None:
        session.console.print(f"    {label:<24} {m.rps:>9,.0f} req/s  p99 {m.p99_ms or 0:6.1f} ms")


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
    engines = stage_engines(blueprint)
    if "redis" in engines:
        session.phase("baseline: redis-benchmark")
        _keep(out, "redis_ops", "redis-benchmark GET/SET", baselines.redis_benchmark(engines["redis"], client_core=session.client_core), session)
    if "postgresql" in engines:
        session.phase("baseline: pgbench -S")
        m = baselines.pgbench_select(engines["postgresql"], seconds=o.raw_seconds, client_core=session.client_core)
        _keep(out, "pgbench_tps", "pgbench -S", m, session)
    if not engines:
        session.notes.append(
            f"stage {blueprint.stage} runs no Redis and no PostgreSQL (SQLite, files, in-process cache and queue): "
            "redis_ops and pgbench_tps are not measured at this stage"
        )
    return out


def stage_engines(blueprint: Any) -> dict[str, str]:
    """Engines of the stage that have a baseline: {"redis": url, "postgresql": url}."""
    found: dict[str, str] = {}
    for name in type(blueprint.ports).model_fields:
        url = blueprint.port_url(name)
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme in ("redis", "rediss") and "redis" not in found:
            found["redis"] = url
        if scheme in ("postgresql", "postgres") and "postgresql" not in found:
            found["postgresql"] = url
    return found

"""Real engines for tests, started by the control plane itself (the same units ``summit up`` runs).

    with running_postgres(replicas=1) as pg:     # a primary, a replica, a PgBouncer in front of each
        name = pg.create_database()              # a fresh database (replicated like any other)
        db = open_port("sql", pg.url(name))      # through PgBouncer, with the replica

The fixtures below start one such stage per test session (per xdist worker) and give each test a
fresh database of its own. The engines' files live in a directory under /tmp that the engines'
user (``postgres``, when the tests run as root) can enter.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from summit.blueprint import load_blueprint
from summit.engines import Command, Engine, Layout, Supervisor, plan, publish
from summit.engines.layout import free_port, tcp_open
from summit.engines.postgres import APP_ROLE, PostgresServer
from summit.engines.stage import StagePlan

_names = itertools.count(1)


@dataclass
class PostgresStage:
    """A running PostgreSQL stage of a test: its plan and supervisor (not watching: a test that
    kills something restarts it itself, or runs ``supervisor.check_once``)."""

    stage: StagePlan
    supervisor: Supervisor

    @property
    def primary(self) -> PostgresServer:
        return self.stage.of_kind("postgres")[0]  # type: ignore[return-value]

    def url(self, database: str = "summit", **options: Any) -> str:
        """The app's URL of ``database`` (what ``{postgres}`` stands for), with extra options."""
        base = self.stage.endpoints["postgres"].replace("/summit?", f"/{database}?", 1)
        return base + "".join(f"&{key}={value}" for key, value in options.items())

    def superuser(self, database: str = "postgres", server: str = "postgres-primary") -> Any:
        """A superuser connection (autocommit) straight to ``server``, past PgBouncer."""
        import psycopg

        engine: PostgresServer = self.stage.engine(server)  # type: ignore[assignment]
        return psycopg.connect(engine.superuser_dsn(self.stage.layout, database), autocommit=True)

    def replicas(self) -> list[str]:
        return [e.name for e in self.stage.of_kind("postgres")[1:]]

    def freeze(self, name: str, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT) an engine and every process under it: PostgreSQL's backends run in
        sessions of their own, so signalling the postmaster's group would leave them answering."""
        import signal

        import psutil

        leader = psutil.Process(self.unit(name).process.pid)
        for process in [leader, *leader.children(recursive=True)]:
            try:
                process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass

    def pause_replay(self, replica: str, paused: bool = True) -> None:
        """Stop (or resume) a replica's WAL replay: it keeps answering, with older and older data."""
        with self.superuser(server=replica) as conn:
            conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with self.superuser() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{APP_ROLE}"')
        for replica in self.replicas():  # usable once every replica has replayed it (bounded)
            with self.superuser(server=replica) as conn:
                deadline = time.monotonic() + 30
                while not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{replica} did not replay CREATE DATABASE {name} within 30 s")
                    time.sleep(0.01)
        return name

    def drop_database(self, name: str) -> None:
        with self.superuser() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def unit(self, name: str) -> Any:
        return self.supervisor.unit(name)

    def restart(self, name: str) -> None:
        """Start an engine of the stage again after a test stopped or killed it."""
        unit = self.supervisor.unit(name)
        asyncio.run(self.supervisor._start(unit))


@contextmanager
def running_engines(prefix: str, overrides: dict[str, Any], *, app_login: bool = False) -> Iterator[tuple[StagePlan, Supervisor]]:
    """The engines of a blueprint (``overrides`` on the presets), without the app, in a directory of
    their own under /tmp that the engines' user can enter; stopped and removed afterwards. With
    ``app_login``, the app's login is the rotated secret db/app, as ``summit up`` makes it."""
    root = Path(tempfile.mkdtemp(prefix=f"summit-{prefix}-", dir="/tmp"))
    root.chmod(0o755)  # the engines' user (postgres, varnish ... under root) must be able to enter it
    supervisor: Supervisor | None = None
    try:
        blueprint = load_blueprint(environ={}, overrides={"data_dir": str(root), **overrides})
        stage = plan(blueprint, with_app=False)
        if app_login:
            from summit.ops.dblogin import ensure

            ensure(stage)
            stage = plan(blueprint, with_app=False)  # again: the app's URL names the delivered login now
        publish(stage)
        supervisor = Supervisor(stage.layout, stage.engines, on_event=lambda text: None)
        asyncio.run(supervisor.start())
        yield stage, supervisor
    finally:
        if supervisor is not None:
            asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_postgres(*, replicas: int = 0, pgbouncer: bool = True, synchronous: bool = False, app_login: bool = False) -> Iterator[PostgresStage]:
    engines = {"postgres": {"replicas": replicas, "synchronous": synchronous, "max_connections": 200}, "pgbouncer": {"enabled": pgbouncer}}
    with running_engines("pg", {"stage": "1+", "engines": engines}, app_login=app_login) as (stage, supervisor):
        yield PostgresStage(stage, supervisor)


# A small HTTP origin for CDN tests (the app's place behind Varnish): /media/* is immutable for a
# year, /media/private* no-store, /media/gone* a 404, /media/big* 3 MB; it counts what reaches it.
ORIGIN = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
hits = {"n": 0}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path != "/healthz":
            hits["n"] += 1
        body = (b"x" * 3_000_000) if self.path.startswith("/media/big") else f"{self.path} from {name}".encode()
        self.send_response(404 if self.path.startswith("/media/gone") else 200)
        if self.path.startswith("/media/private"):
            self.send_header("cache-control", "no-store")
        elif self.path.startswith("/media/"):
            self.send_header("cache-control", "public, max-age=31536000, immutable")
        self.send_header("x-origin-hits", str(hits["n"]))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class ScriptServer(Engine):
    """A small real HTTP server in an app server's place: ``script`` run by this Python with the
    server's name and port as its arguments."""

    kind = "app"
    script = ""

    def __init__(self, name: str = "web-1"):
        super().__init__(name, "web", free_port())

    def command(self, layout: Layout) -> Command:
        import sys

        return Command([sys.executable, "-c", self.script, self.name, str(self.port)])

    def ready(self, layout: Layout) -> bool:
        return tcp_open(self.host, self.port, timeout=0.2)


class SmallOrigin(ScriptServer):
    """The origin of a CDN under test: a real HTTP server, much smaller than the app."""

    script = ORIGIN


# An app server's stand-in behind the front door: answers every GET (keep-alive, HTTP/1.1) with its
# name, the path and the headers it got, as JSON.
ECHO = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms wait between them
    def do_GET(self):
        body = json.dumps({"server": name, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class EchoServer(ScriptServer):
    """A small real HTTP server in an app server's place (behind HAProxy): it says what reached it."""

    script = ECHO


@dataclass
class CdnTiers:
    """Varnish's edge and regional tiers in front of a small origin."""

    edge: Any
    regional: Any
    supervisor: Supervisor

    @property
    def location(self) -> str:
        """The cdn port's URL after ``varnish://``: the tiers, nearest the origin first."""
        return f"{self.regional.address},{self.edge.address}"

    async def get(self, path: str) -> Any:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://{self.edge.address}", timeout=10) as client:
            return await client.get(path)


@contextmanager
def running_cdn(size_mb: int = 32) -> Iterator[CdnTiers]:
    from summit.engines.varnish import Varnish

    root = Path(tempfile.mkdtemp(prefix="summit-cdn-", dir="/tmp"))
    root.chmod(0o755)  # varnishd's own user (under root) must reach its files
    origin = SmallOrigin()
    regional = Varnish("varnish-regional", free_port(), "regional", [origin], size_mb=size_mb)
    edge = Varnish("varnish-edge", free_port(), "edge", [regional], size_mb=size_mb)
    supervisor = Supervisor(Layout(root), [origin, regional, edge], on_event=lambda text: None)
    try:
        asyncio.run(supervisor.start())
        yield CdnTiers(edge, regional, supervisor)
    finally:
        asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class RedisStage:
    """Redis for tests, run by the control plane's ``RedisServer`` under a ``Supervisor`` (not
    watching: a test that stops or kills it starts it again with ``restart``)."""

    stage: StagePlan
    supervisor: Supervisor

    @property
    def server(self) -> Any:
        return self.stage.engine("redis")

    def url(self, **options: Any) -> str:
        """The cache port's URL (what ``{redis}`` stands for), with options such as ``prefix``."""
        base = self.stage.endpoints["redis"]
        return base + ("?" + "&".join(f"{k}={v}" for k, v in options.items()) if options else "")

    @property
    def pid(self) -> int:
        return self.supervisor.unit("redis").process.pid

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT) Redis: it keeps its port and its data, and answers nothing."""
        import signal

        self.supervisor.unit("redis").process.kill(signal.SIGSTOP if frozen else signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL it and reap it (its data is gone: nothing is persisted)."""
        import signal

        process = self.supervisor.unit("redis").process
        process.kill(signal.SIGKILL)
        process.stop(5)

    def restart(self) -> None:
        asyncio.run(self.supervisor._start(self.supervisor.unit("redis")))

    def command_calls(self, command: str) -> int:
        """How many times Redis has run ``command`` (INFO commandstats), e.g. ``"mget"``."""
        import redis

        server = self.server
        client = redis.Redis(host=server.host, port=server.port, password=server.password(self.stage.layout), socket_timeout=5)
        try:
            return int(client.info("commandstats").get(f"cmdstat_{command.lower()}", {}).get("calls", 0))
        finally:
            client.close()

    def keys(self, pattern: str = "*") -> list[str]:
        """The keys matching ``pattern``, asked over a connection of its own (redis-cli's view)."""
        import redis

        server = self.server
        client = redis.Redis(host=server.host, port=server.port, password=server.password(self.stage.layout), socket_timeout=5)
        try:
            return sorted(k.decode() for k in client.scan_iter(match=pattern, count=1000))
        finally:
            client.close()


@contextmanager
def running_redis(maxmemory_mb: int = 64) -> Iterator[RedisStage]:
    with running_engines("redis", {"stage": "1", "engines": {"redis": {"enabled": True, "maxmemory_mb": maxmemory_mb}}}) as (stage, supervisor):
        yield RedisStage(stage, supervisor)


@dataclass
class SeaweedStage:
    """SeaweedFS for tests, run by the control plane's ``SeaweedFS`` unit under a ``Supervisor`` (not
    watching: a test that stops, kills or freezes it starts it again itself)."""

    stage: StagePlan
    supervisor: Supervisor

    @property
    def server(self) -> Any:
        return self.stage.engine("seaweedfs")

    def url(self, bucket: str = "summit", **options: Any) -> str:
        """The objects port's URL (what ``{s3}`` stands for) for ``bucket``, with options such as ``prefix``."""
        base = self.stage.endpoints["s3"].replace("s3://summit?", f"s3://{bucket}?", 1)
        return base + "".join(f"&{key}={value}" for key, value in options.items())

    def create_bucket(self) -> str:
        """A fresh, empty bucket of its own for a test (no prefix: a test has S3's whole key length)."""
        name = f"t{os.getpid()}-{next(_names)}"
        self.server.client(self.stage.layout).create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Delete a test's bucket and what is in it (its volumes go with it)."""
        client = self.server.client(self.stage.layout)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for entry in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=entry["Key"])
        client.delete_bucket(Bucket=name)

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT) weed: it keeps its ports (connections are accepted) and answers nothing."""
        import signal

        self.supervisor.unit("seaweedfs").process.kill(signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        """Stop it as the supervisor does (its stop signal, then SIGKILL after the grace)."""
        self.supervisor.unit("seaweedfs").process.stop()
        self.server.stopped(self.stage.layout)

    def restart(self) -> None:
        asyncio.run(self.supervisor._start(self.supervisor.unit("seaweedfs")))


@contextmanager
def running_seaweedfs() -> Iterator[SeaweedStage]:
    """SeaweedFS (master, volume, filer, S3 gateway) on loopback with the stage's bucket made."""
    with running_engines("s3", {"stage": "1", "engines": {"seaweedfs": {"enabled": True}}}) as (stage, supervisor):
        yield SeaweedStage(stage, supervisor)

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
from summit.engines import Supervisor, plan, publish
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
def running_postgres(*, replicas: int = 0, pgbouncer: bool = True, synchronous: bool = False) -> Iterator[PostgresStage]:
    root = Path(tempfile.mkdtemp(prefix="summit-pg-", dir="/tmp"))
    root.chmod(0o755)  # the engines' user must be able to enter it
    blueprint = load_blueprint(environ={}, overrides={
        "stage": "1+", "data_dir": str(root),
        "engines": {"postgres": {"replicas": replicas, "synchronous": synchronous, "max_connections": 200},
                    "pgbouncer": {"enabled": pgbouncer}},
    })
    stage = plan(blueprint, with_app=False)
    publish(stage)
    supervisor = Supervisor(stage.layout, stage.engines, on_event=lambda text: None)
    try:
        asyncio.run(supervisor.start())
        yield PostgresStage(stage, supervisor)
    finally:
        asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)

"""PgBouncer in transaction pooling, one in front of each PostgreSQL server (as it is deployed
beside each database host): many client connections share a few server connections.

Clients authenticate with SCRAM against PgBouncer's own user list (generated, owner-only); PgBouncer
logs in to its server with the same password. Any database name maps to the same name on its
server (``* =``), so databases made later (a test's, a restored copy) need no new entry.
"""

from __future__ import annotations

import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, owned_dir, run_as, tcp_open, write_private
from summit.engines.postgres import APP_DATABASE, APP_ROLE, READER_ROLE, SUPERUSER, PostgresServer
from summit.engines.process import Command


def binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        raise EngineError("PgBouncer is not installed: run `summit engines install` (Debian's pgbouncer)")
    return found


@dataclass(frozen=True)
class PoolSettings:
    pool_size: int = 20  # server connections per database and user
    max_client_conn: int = 1000


class PgBouncer(Engine):
    kind = "pgbouncer"

    def __init__(self, name: str, port: int, server: PostgresServer, settings: PoolSettings):
        super().__init__(name, f"pooler of {server.name}", port, needs=(server.name,))
        self.server = server
        self.settings = settings

    def prepare(self, layout: Layout) -> None:
        user = run_as()
        home = owned_dir(layout.engine_dir(self.name), user)
        passwords = PostgresServer.passwords(layout)
        users = "".join(f'"{role}" "{passwords[role]}"\n' for role in (APP_ROLE, READER_ROLE, SUPERUSER))
        write_private(home / "userlist.txt", users, owner=user)
        s = self.settings
        ini = f"""; rendered by summit before each start: edit the blueprint, not this file
[databases]
* = host={self.server.host} port={self.server.port}

[pgbouncer]
listen_addr = {self.host}
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {home / "userlist.txt"}
pool_mode = transaction
default_pool_size = {s.pool_size}
max_client_conn = {s.max_client_conn}
admin_users = {SUPERUSER}
stats_users = {SUPERUSER}
ignore_startup_parameters = extra_float_digits,options
server_check_delay = 5
server_connect_timeout = 5
server_login_retry = 1
query_wait_timeout = 30
logfile =
pidfile =
log_connections = 0
log_disconnections = 0
"""
        write_private(home / "pgbouncer.ini", ini, owner=user)

    def command(self, layout: Layout) -> Command:
        return Command([binary(), str(layout.engine_dir(self.name) / "pgbouncer.ini")], user=run_as(),
                       stop_signal=signal.SIGINT, grace=5.0)  # SIGINT: safe shutdown

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        import psycopg

        password = PostgresServer.passwords(layout)[APP_ROLE]
        try:
            with psycopg.connect(host=self.host, port=self.port, user=APP_ROLE, dbname=APP_DATABASE, password=password,
                                 connect_timeout=3, autocommit=True, prepare_threshold=None) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

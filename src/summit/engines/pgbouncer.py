"""PgBouncer in transaction pooling, one in front of each PostgreSQL server (as it is deployed
beside each database host): many client connections share a few server connections.

Clients authenticate with SCRAM against PgBouncer's own user list (generated, owner-only); PgBouncer
logs in to its server with the same password. Any database name maps to the same name on its
server (``* =``), so databases made later (a test's, a restored copy) need no new entry.

The app's alternating users (``summit_a``, ``summit_b``: the rotated secret ``db/app``) are in the
user list too, with the passwords of the secret's delivered copy. A rotation rewrites the list and
has each running PgBouncer re-read it (``RELOAD`` on its admin console): clients already logged in
keep their connections, and new logins, clients' and PgBouncer's own to the server, use the new
password. Each user has its own server pool (``pool_size`` per database and user).
"""

from __future__ import annotations

import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, owned_dir, run_as, tcp_open, write_private
from summit.engines.postgres import APP_DATABASE, APP_ROLE, READER_ROLE, SUPERUSER, PostgresServer, app_logins
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
        write_userlist(layout, self.name, app_logins(layout))
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


def write_userlist(layout: Layout, name: str, logins: dict[str, str]) -> None:
    """PgBouncer ``name``'s user list: summit's own roles and the app's ``logins`` (user -> password)."""
    passwords = PostgresServer.passwords(layout)
    users = {**{role: passwords[role] for role in (APP_ROLE, READER_ROLE, SUPERUSER)}, **logins}
    for user, password in users.items():
        if '"' in user or '"' in password:
            raise EngineError(f"PgBouncer's user list cannot hold {user!r}: a double quote in a user name or password")
    text = "".join(f'"{user}" "{password}"\n' for user, password in users.items())
    write_private(owned_dir(layout.engine_dir(name), run_as()) / "userlist.txt", text, owner=run_as())


def reload(layout: Layout, host: str, port: int) -> None:
    """Have the PgBouncer at ``host:port`` re-read its configuration and user list (``RELOAD`` on
    its admin console, as the superuser listed in ``admin_users``)."""
    import psycopg

    password = PostgresServer.passwords(layout)[SUPERUSER]
    try:
        with psycopg.connect(host=host, port=port, user=SUPERUSER, dbname="pgbouncer", password=password,
                             connect_timeout=3, autocommit=True) as conn:  # fmt: skip
            result = conn.pgconn.exec_(b"RELOAD")  # the admin console speaks the simple query protocol only
            if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
                raise EngineError(f"PgBouncer at {host}:{port} refused RELOAD: {result.error_message.decode(errors='replace').strip()}")
    except psycopg.Error as error:
        raise EngineError(f"cannot reach PgBouncer's admin console at {host}:{port}: {str(error).strip()}") from None

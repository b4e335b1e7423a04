"""The sql port on PostgreSQL (psycopg 3 under SQLAlchemy's asyncio engine), with read replicas.

    postgresql://summit@127.0.0.1:6432/summit?passfile=/srv/secrets/pgpass&replica=127.0.0.1:6433

Write blocks are transactions on the primary (READ COMMITTED, PostgreSQL's default; ``FOR UPDATE``
serialises read-modify-writes). Read blocks go to a replica chosen by ``ReplicaMonitor``: one that
is at most ``max_lag_ms`` behind and has replayed this client's latest write (``ReadPosition``,
moved forward by each commit to the primary's WAL position after it), else to the primary;
``read(after_write=True)`` reads the primary. A read statement runs in autocommit where the server
refuses writes by itself (a replica; the primary as the ``reader`` role, whose transactions are
read-only by default): one round trip, where a READ ONLY transaction costs three (BEGIN, the
statement, ROLLBACK). So each statement of a read block sees what was committed when it began
(``features.snapshot_reads`` is False). Without a ``reader``, reads on the primary are READ ONLY,
REPEATABLE READ transactions.

Options (the rest of the query goes to libpq: ``passfile``, ``sslmode``, ``connect_timeout`` ...):
- ``login=PATH``: the app's login is a rotated secret: the Secrets Manager's delivered copy of it
  at PATH gives each new connection its user and password (``login.py``; the URL's user and
  password file still serve the ``reader`` and the replica monitor);
- ``replica=host:port``, repeated: the replicas (same database name, user and password file);
- ``reader=ROLE``: a role whose transactions are read-only by default, for reads;
- ``prepared_statements=off``: behind PgBouncer in transaction pooling (1.18 keeps none);
- ``pool_size`` (10): connections per server in this process;
- ``max_lag_ms`` (1000), ``poll_ms`` (250): the replicas' lag bound and how often it is measured;
- ``replica_timeout_ms`` (3000): a statement on a replica that takes longer (a paused or cut-off
  replica) leaves it out of rotation and runs again on another server;
- ``synchronous=on`` with ``commit_timeout_ms`` (5000): a commit that waits longer for a
  synchronous replica is cancelled and reported as ``CommitUnknown``, never left hanging.

When a server cannot be reached, a write block raises ``DatabaseUnavailable`` (nothing of it was
committed); a read block moves to another server and runs its statement again there.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg  # noqa: F401  (here, so that the wiring names the extra to install when it is missing)
from sqlalchemy import text
from sqlalchemy.engine import URL, Result
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from summit.adapters.postgres.login import Login, LoginError
from summit.adapters.postgres.pool import ConnectionPool
from summit.adapters.postgres.replicas import Deadline, ReplicaMonitor, ReplicaState, parse_lsn
from summit.ports.sql import CommitUnknown, Connection, Database, DatabaseUnavailable, Features, read_position

T = TypeVar("T")

_SUMMIT_OPTIONS = ("login", "replica", "reader", "prepared_statements", "pool_size", "max_lag_ms", "poll_ms", "replica_timeout_ms", "synchronous", "commit_timeout_ms")
_NEXT = text("SELECT nextval('summit_ids')")
_PING = text("SELECT 1")
_POSITION = re.compile(r"[0-9]{1,20}")
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")  # connection exceptions, shutdowns, not yet accepting


def _unavailable(error: BaseException) -> bool:
    """Did this error come from a server or pooler being unreachable (not from the statement)?"""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    orig = getattr(error, "orig", error)
    state = getattr(orig, "sqlstate", None) or ""
    if state.startswith(_UNAVAILABLE_STATES):
        return True
    return isinstance(orig, psycopg.OperationalError) and not state  # no SQLSTATE: the connection itself failed


class PostgresConnection(Connection):
    """One block on one server; a read block that loses its server moves to another."""

    __slots__ = ("_after_write", "_conn", "_db", "_pool", "_replica", "_writing")

    def __init__(self, db: PostgresDatabase, writing: bool, after_write: bool = False):
        self._db = db
        self._writing = writing
        self._after_write = after_write
        self._conn: AsyncConnection | None = None
        self._pool: ConnectionPool | None = None
        self._replica: ReplicaState | None = None

    async def __aenter__(self) -> PostgresConnection:
        if self._writing:
            if not self._db._sequence_ready:  # before this block holds a connection (see _create_sequence)
                await self._db._create_sequence()
            await self._lend(self._db._write_pool)
        else:
            await self._open_read()
        return self

    async def _lend(self, pool: ConnectionPool) -> None:
        """Take a connection of ``pool``; a transaction begins unless the pool is autocommit (a
        replica, or the primary as the read-only reader role: each statement is read-only)."""
        try:
            conn = await pool.get()
        except (OperationalError, InterfaceError, OSError, asyncio.TimeoutError, LoginError) as error:
            raise DatabaseUnavailable(f"the database is unavailable: {_first_line(error)}") from error
        self._conn, self._pool = conn, pool
        if not pool.autocommit:
            await conn.begin()

    async def _open_read(self, avoid: ReplicaState | None = None) -> None:
        db = self._db
        while True:
            replica = await db._route(self._after_write)
            if replica is not None and replica is not avoid:
                try:
                    await self._lend(db._replica_pools[replica.name])
                    self._replica = replica
                    return
                except DatabaseUnavailable as error:
                    db.monitor.failed(replica, error)  # type: ignore[union-attr]
                    continue
            self._replica = None
            await self._lend(db._read_pool)
            return

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        lost = self._replica
        conn: AsyncConnection = self._conn  # type: ignore[assignment]
        if lost is None:
            try:
                return await conn.execute(statement, parameters)
            except DBAPIError as failure:
                if _unavailable(failure):
                    raise DatabaseUnavailable(f"the database is unavailable: {_first_line(failure)}") from failure
                raise
        # a replica that stopped answering (frozen, cut off) must not hold the read: a deadline
        # closes the socket under the statement, and it runs again elsewhere
        deadline = Deadline(self._db.replica_timeout, conn.sync_connection.connection.driver_connection)  # type: ignore[union-attr]
        try:
            return await conn.execute(statement, parameters)
        except DBAPIError as failure:
            if not (deadline.fired or _unavailable(failure)):
                raise
            error: BaseException = TimeoutError(f"no answer within {self._db.replica_timeout:g} s") if deadline.fired else failure
        finally:
            deadline.cancel()
        if deadline.fired:
            await conn.invalidate()
        self._db.monitor.failed(lost, error)  # type: ignore[union-attr]
        await self._discard()
        await self._open_read(avoid=lost)  # the same statement, on another server
        return await self.execute(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._conn.run_sync(fn, *args)  # type: ignore[union-attr]

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if exc_type is None and self._writing:
                await self._commit(conn)
            elif not self._writing:
                await self._end_read(conn)
            elif conn.in_transaction():
                await conn.rollback()
        except DBAPIError as error:
            if _unavailable(error):
                raise DatabaseUnavailable(f"the database is unavailable: {_first_line(error)}") from error
            raise
        finally:
            await self._discard()

    async def _end_read(self, conn: AsyncConnection) -> None:
        """End a read block: its results are already in the caller's hands, so a server lost at this
        point costs only the connection, never the read."""
        if self._pool.autocommit or not conn.in_transaction():  # type: ignore[union-attr]  (autocommit: nothing to end)
            return
        try:
            await conn.rollback()
        except DBAPIError as error:
            if self._replica is not None and _unavailable(error):
                self._db.monitor.failed(self._replica, error)  # type: ignore[union-attr]
            await conn.invalidate()

    async def _commit(self, conn: AsyncConnection) -> None:
        db = self._db
        if db.commit_timeout is None:
            await conn.commit()
        else:
            try:
                await asyncio.wait_for(conn.commit(), db.commit_timeout)
            except asyncio.TimeoutError:
                await conn.invalidate()
                raise CommitUnknown(
                    f"the commit was not confirmed by a synchronous replica within {db.commit_timeout:g} s: "
                    "it may or may not have been applied"
                ) from None
        position = read_position()
        if db.replicas and position is not None:
            lsn = await db._commit_position(conn)
            if lsn is not None and lsn > _position_value(position.value):
                position.value = str(lsn)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pool is not None:
            await self._pool.put(conn)


def _position_value(text: str) -> int:
    return int(text) if text and _POSITION.fullmatch(text) else 0


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


class PostgresDatabase(Database):
    def __init__(
        self,
        url: URL,
        *,
        replicas: list[tuple[str, int]] = (),  # type: ignore[assignment]
        prepared_statements: bool = True,
        pool_size: int = 10,
        max_lag: float = 1.0,
        poll: float = 0.25,
        replica_timeout: float = 3.0,
        commit_timeout: float | None = None,
        reader: str | None = None,
        login: Login | None = None,
    ):
        self.url = url
        self.login = login
        self.replica_timeout = replica_timeout
        self.replicas = list(replicas)
        self.commit_timeout = commit_timeout
        # Reads in autocommit (a statement each, no BEGIN/ROLLBACK round trips) where the server
        # itself refuses writes: on a replica, and on the primary as a read-only role. Without one,
        # reads on the primary are READ ONLY, REPEATABLE READ transactions.
        self.features = Features(dialect="postgresql", has_replicas=bool(self.replicas), skip_locked=True,
                                 concurrent_writers=True, snapshot_reads=False)
        args: dict[str, Any] = {"prepare_threshold": None if not prepared_statements else 5}
        if "connect_timeout" not in url.query:  # a server that does not answer is unavailable, not a hang
            args["connect_timeout"] = 5
        reading = url.set(username=reader) if reader else url
        read_login = None if reader else login  # the reader keeps its own role and password file
        self._write_pool = ConnectionPool(url, size=pool_size, autocommit=False, connect_args=args, login=login)
        self._read_pool = ConnectionPool(reading, size=pool_size, autocommit=bool(reader), read_only=True, connect_args=args, login=read_login)
        self._replica_pools: dict[str, ConnectionPool] = {}
        # a replica's connection is bounded like its statements (libpq counts whole seconds, 2 at least)
        replica_args = {**args, "connect_timeout": max(2, math.ceil(replica_timeout))}
        states = []
        for host, port in self.replicas:
            name = f"{host}:{port}"
            self._replica_pools[name] = ConnectionPool(reading.set(host=host, port=port), size=pool_size, autocommit=True,
                                                       connect_args=replica_args, login=read_login)
            states.append(ReplicaState(name, _conninfo(url.set(host=host, port=port))))
        self.monitor = ReplicaMonitor(_conninfo(url), states, max_lag=max_lag, poll=poll) if states else None
        self._sequence_ready = False
        self._sequence_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> PostgresDatabase:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"{url!r}: the PostgreSQL adapter takes postgresql:// URLs")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"{url!r}: a PostgreSQL URL names a host and a database: postgresql://user@host:port/database")
        summit: dict[str, list[str]] = {}
        libpq: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _SUMMIT_OPTIONS:
                summit.setdefault(key, []).append(value)
            else:
                libpq[key] = value
        options: dict[str, Any] = {}
        try:
            options["replicas"] = [_host_port(value) for value in summit.get("replica", [])]
            if summit.get("reader"):
                options["reader"] = summit["reader"][-1]
            if summit.get("login"):
                options["login"] = Login(summit["login"][-1])
            if "prepared_statements" in summit:
                options["prepared_statements"] = _switch(summit["prepared_statements"][-1], "prepared_statements")
            if "pool_size" in summit:
                options["pool_size"] = _whole(summit["pool_size"][-1], "pool_size", minimum=1)
            if "max_lag_ms" in summit:
                options["max_lag"] = _whole(summit["max_lag_ms"][-1], "max_lag_ms") / 1000
            if "poll_ms" in summit:
                options["poll"] = _whole(summit["poll_ms"][-1], "poll_ms", minimum=10) / 1000
            if "replica_timeout_ms" in summit:
                options["replica_timeout"] = _whole(summit["replica_timeout_ms"][-1], "replica_timeout_ms", minimum=1) / 1000
            synchronous = _switch(summit["synchronous"][-1], "synchronous") if "synchronous" in summit else False
            timeout_ms = _whole(summit["commit_timeout_ms"][-1], "commit_timeout_ms", minimum=1) if "commit_timeout_ms" in summit else 5000
            options["commit_timeout"] = timeout_ms / 1000 if synchronous else None
        except ValueError as error:
            raise ValueError(f"{url!r}: {error}") from None
        sa_url = URL.create(
            "postgresql+psycopg",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=parts.port or 5432,
            database=parts.path.strip("/"),
            query=libpq,
        )
        return cls(sa_url, **options)

    @property
    def sync_url(self) -> str:
        """The URL for a synchronous client (migrations): with a ``login``, its current user and password."""
        url = self.url
        if self.login is not None:
            username, password = self.login.current()
            url = url.set(username=username, password=password)
        return url.render_as_string(hide_password=False)

    def _login_conninfo(self) -> dict[str, Any]:
        """psycopg keywords of the primary as the app's login (the URL's user, or the rotated login)."""
        info = _conninfo(self.url)
        if self.login is not None:
            info["user"], info["password"] = self.login.current()
        return info

    # ---- blocks -----------------------------------------------------------------------------

    def write(self) -> PostgresConnection:  # type: ignore[override]
        return PostgresConnection(self, writing=True)

    def read(self, *, after_write: bool = False) -> PostgresConnection:  # type: ignore[override]
        return PostgresConnection(self, writing=False, after_write=after_write)

    async def _route(self, after_write: bool) -> ReplicaState | None:
        """The replica for a read, or None for the primary."""
        if self.monitor is None or after_write:  # every committed write: only the primary surely has it
            return None
        position = read_position()
        await self.monitor.first_poll()
        return self.monitor.choose(_position_value(position.value) if position else None)

    async def _commit_position(self, conn: AsyncConnection) -> int | None:
        """The primary's WAL position just after this block's commit (read on the same connection,
        outside any transaction): a replica that has replayed it has the commit."""
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        try:
            await driver.set_autocommit(True)
            try:
                cursor = await driver.execute("SELECT pg_current_wal_insert_lsn()::text")
                row = await cursor.fetchone()
            finally:
                await driver.set_autocommit(False)
        except Exception:  # noqa: BLE001  (the commit is done; without a position the next read goes to the primary)
            return None
        return parse_lsn(row[0]) if row else None

    async def _next_sequence(self, conn: Connection) -> int:
        return (await conn.execute(_NEXT)).scalar_one()

    async def _create_sequence(self) -> None:
        """Create the ID sequence once per process, on a connection of its own, when the process's
        first write block opens and BEFORE it takes a connection: a block that held one while it
        waited here would hold a PgBouncer server connection, and with every server connection
        held by blocks waiting here, the creation's own connection would wait for one of them
        (until PgBouncer's query_wait_timeout: the first writes of a busy process stalled 30 s)."""
        async with self._sequence_lock:
            if self._sequence_ready:
                return
            try:
                conn = await psycopg.AsyncConnection.connect(**self._login_conninfo(), autocommit=True, prepare_threshold=None)
            except (psycopg.Error, LoginError) as error:
                raise DatabaseUnavailable(f"the database is unavailable: {_first_line(error)}") from error
            try:
                await conn.execute("CREATE SEQUENCE IF NOT EXISTS summit_ids AS bigint")
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                pass  # another process created it at the same moment
            finally:
                await conn.close()
            self._sequence_ready = True

    async def ping(self) -> None:
        """``SELECT 1`` on the primary, in one round trip where reads run in autocommit (health
        checks call this on every probe)."""
        block = PostgresConnection(self, writing=False)
        await block._lend(self._read_pool)
        try:
            await block.execute(_PING)
        finally:
            await block.__aexit__(None, None, None)

    def replica_status(self) -> list[dict[str, Any]]:
        """Each replica as the router sees it (for status pages and tests)."""
        if self.monitor is None:
            return []
        return [{"name": r.name, "healthy": r.healthy, "replayed": r.replayed, "staleness_s": r.staleness, "error": r.error}
                for r in self.monitor.replicas]

    async def close(self) -> None:
        if self.monitor is not None:
            await self.monitor.close()
        for pool in (self._write_pool, self._read_pool, *self._replica_pools.values()):
            await pool.close()


def _conninfo(url: URL) -> dict[str, Any]:
    """psycopg connection keywords for a SQLAlchemy URL (for the monitor's own connections)."""
    info: dict[str, Any] = {"host": url.host, "port": url.port, "dbname": url.database, "connect_timeout": 2}
    if url.username:
        info["user"] = url.username
    if url.password:
        info["password"] = url.password
    info.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return info


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"replica must be host:port, got {value!r}")
    return host, int(port)


def _switch(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{name} is on or off, got {value!r}")


def _whole(value: str, name: str, *, minimum: int = 0) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)

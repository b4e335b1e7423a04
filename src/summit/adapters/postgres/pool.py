"""Connections to one PostgreSQL server (or its PgBouncer), kept open and lent to blocks.

SQLAlchemy's own pool costs about as much per checkout as a query takes on loopback (events,
reset-on-return, the async adaptation around each of them); a block here takes an idle connection
from a list and gives it back. The engine underneath has no pool of its own (``NullPool``): it only
opens connections, and statements still go through SQLAlchemy's compiled cache and result types.

With a ``Login`` (a rotated secret), each new connection logs in with the login's current user and
password; a connection opened with an older login keeps working, and is closed when it comes back
after the login changed (so the pool moves to the new user as its connections come back).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from summit.adapters.postgres.login import Login, auth_failed


class ConnectionPool:
    """At most ``size`` open connections; a block waits (up to ``timeout``) when all are lent."""

    def __init__(self, url: URL, *, size: int, autocommit: bool, read_only: bool = False, timeout: float = 10.0,
                 connect_args: dict[str, Any] | None = None, login: Login | None = None):
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
        if read_only and not autocommit:
            options["isolation_level"] = "REPEATABLE READ"
        self.engine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args or {}, **options)
        if read_only and not autocommit:
            self.engine = self.engine.execution_options(postgresql_readonly=True)  # type: ignore[assignment]
        self.login = login
        if login is not None:
            event.listen(self.engine.sync_engine, "do_connect", self._log_in)
        self.autocommit = autocommit
        self.size = size
        self.timeout = timeout
        self._idle: list[AsyncConnection] = []
        self._open = 0
        self._waiting = 0
        self._freed = asyncio.Condition()

    async def get(self) -> AsyncConnection:
        """An open connection (a new one while fewer than ``size`` are open, else a returned one)."""
        if self._idle:
            return self._idle.pop()
        if self._open < self.size:
            self._open += 1
            try:
                try:
                    return await self.engine.connect()
                except OperationalError as error:
                    if self.login is None or not auth_failed(error):
                        raise
                    self.login.refresh()  # a password changed under us: read the login again, once
                    return await self.engine.connect()
            except BaseException:
                self._open -= 1
                raise
        self._waiting += 1
        try:
            async with self._freed:
                await asyncio.wait_for(self._freed.wait_for(lambda: bool(self._idle) or self._open < self.size), self.timeout)
        finally:
            self._waiting -= 1
        return await self.get()

    async def put(self, conn: AsyncConnection) -> None:
        """Give a connection back; one that is broken or still in a transaction is dropped."""
        if conn.invalidated or conn.closed or (self.login is not None and self.login.stale(_login_version(conn))):
            await self.drop(conn)
            return
        if not self.autocommit and conn.in_transaction():  # (autocommit: only SQLAlchemy's bookkeeping, harmless)
            try:
                await conn.rollback()
            except Exception:  # noqa: BLE001
                await self.drop(conn)
                return
        self._idle.append(conn)
        await self._notify()

    async def drop(self, conn: AsyncConnection) -> None:
        self._open -= 1
        try:
            if not conn.invalidated:
                await conn.invalidate()
            await conn.close()
        except Exception:  # noqa: BLE001  (it is gone either way)
            pass
        await self._notify()

    async def _notify(self) -> None:
        if self._waiting:  # nobody waits, most of the time: no lock to take
            async with self._freed:
                self._freed.notify()

    def _log_in(self, dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:  # noqa: ANN401
        """SQLAlchemy's ``do_connect``: the login's current user and password for this connection."""
        assert self.login is not None
        cparams["user"], cparams["password"] = self.login.current()
        record.info["login"] = self.login.version

    def lent(self) -> int:
        return self._open - len(self._idle)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001
                pass
        self._open -= len(idle)
        await self.engine.dispose()


def _login_version(conn: AsyncConnection) -> str:
    try:
        return conn.sync_connection.connection.info.get("login", "")  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001  (no connection behind it: it is dropped anyway)
        return ""

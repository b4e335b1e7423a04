"""A few autocommit psycopg connections of an adapter's own, for its short transactions (the queue
and search adapters: each call is one transaction on one connection, then the connection goes back).

The adapter's tables are made on the first connection if they are missing: each statement on its
own, a race lost to another process (``RACED``) is not an error. An idle connection the server or
the pooler dropped is replaced when a transaction finds it dead before anything ran; a connection
in doubt (an error, a cancellation) is closed, never handed out again.

A ``login`` key in the connection keywords (the sql URL's ``login=PATH``: a rotated secret, see
``login.py``) gives each new connection its user and password; a connection opened with an older
login is closed when its call ends, after the login changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus

from summit.adapters.postgres.login import Login, auth_failed

T = TypeVar("T")

CONNECT_TIMEOUT = "5"  # libpq's connect_timeout (seconds), unless the URL sets one
RACED = (errors.DuplicateTable, errors.DuplicateObject, errors.UniqueViolation)  # another process made it first


class Connections:
    def __init__(self, conninfo: dict[str, Any], *, prepared_statements: bool, size: int, schema_present: str, schema: Sequence[str]):
        self.conninfo = {"connect_timeout": CONNECT_TIMEOUT, **conninfo}
        path = self.conninfo.pop("login", None)
        self.login = Login(path) if path else None
        self._versions: dict[int, str] = {}  # id(connection) -> the login version it was opened with
        self.prepared_statements = prepared_statements
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(size)  # a call holds one while it runs
        self.closed = False
        self._schema_present, self._schema = schema_present, schema
        self._schema_ready = False

    async def transaction(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` in one transaction on an idle connection, or a new one."""
        while True:
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await self._connect()
            began = done = False
            try:
                async with conn.transaction():
                    began = True
                    result = await work(conn)
                done = True
                return result
            except psycopg.OperationalError:
                if reused and not began:  # an idle connection the server or pooler dropped: nothing ran
                    await self._drop_idle()
                    continue
                raise
            finally:
                version = self._versions.get(id(conn), "")
                if (done and not self.closed and conn.info.transaction_status == TransactionStatus.IDLE
                        and not (self.login is not None and self.login.stale(version))):
                    self.idle.append(conn)
                else:  # in doubt (an error, a cancellation), or an older login: never hand it out again
                    self._versions.pop(id(conn), None)
                    await conn.close()

    async def close(self) -> None:
        """Close the idle connections now; those in use close when their call ends."""
        self.closed = True
        await self._drop_idle()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        options: dict[str, Any] = {} if self.prepared_statements else {"prepare_threshold": None}
        if self.login is None:
            conn = await psycopg.AsyncConnection.connect(autocommit=True, **options, **self.conninfo)
        else:
            try:
                conn = await self._log_in(options)
            except psycopg.OperationalError as error:
                if not auth_failed(error):
                    raise
                self.login.refresh()  # a password changed under us: read the login again, once
                conn = await self._log_in(options)
            self._versions[id(conn)] = self.login.version
        if not self._schema_ready:
            try:
                if not (await (await conn.execute(self._schema_present)).fetchone())[0]:  # type: ignore[index]
                    for statement in self._schema:  # each on its own: a race lost on one must not undo the other
                        try:
                            await conn.execute(statement)
                        except RACED:
                            pass
            except BaseException:
                await conn.close()
                raise
            self._schema_ready = True
        return conn

    async def _log_in(self, options: dict[str, Any]) -> psycopg.AsyncConnection[Any]:
        assert self.login is not None
        user, password = self.login.current()
        return await psycopg.AsyncConnection.connect(autocommit=True, **options, **{**self.conninfo, "user": user, "password": password})

    async def _drop_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            self._versions.pop(id(conn), None)
            await conn.close()

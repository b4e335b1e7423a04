"""The sql port: a relational database through SQLAlchemy 2 Core, in blocks.

The application writes SQLAlchemy Core statements against the ``Connection`` of a block:

    async with db.write() as conn:        # one transaction on the primary, committed on exit
        await conn.execute(insert(posts).values(...))
    async with db.read() as conn:         # a read-only snapshot; a replica where there is one
        row = (await conn.execute(select(posts).where(posts.c.id == 7))).first()

How a block reaches its driver is the adapter's business: SQLite runs statements on the event loop's
thread (a read that runs long moves to a thread), PostgreSQL awaits its network driver. The results
are plain SQLAlchemy ``Result`` objects with every row already fetched, so reading them never waits.
IDs come from ``next_id`` inside the writing transaction.

What every adapter promises (the contract in ``summit.testing.sql`` checks it):
- a write block is one transaction: committed when the block ends, rolled back on an exception;
- writers are serialised where the engine needs it, and a read-modify-write under ``FOR UPDATE``
  loses no update;
- a read block sees committed data only, and refuses to write; where ``features.snapshot_reads``,
  its statements share one snapshot (SQLite), else each sees what was committed when it began
  (PostgreSQL, where that saves two round trips per read);
- a read block never keeps the event loop for longer than the adapter's documented bound.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import exc as _exc
from sqlalchemy.engine import Result
from sqlalchemy.sql import Executable

from summit import ids, telemetry

DatabaseError = _exc.DBAPIError
IntegrityError = _exc.IntegrityError
T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database cannot be reached now (a server or its pooler is down or restarting): nothing
    was written by the block that raised this; retry shortly. Web apps answer 503."""


class CommitUnknown(DatabaseUnavailable):
    """A commit was sent but not confirmed in time (a synchronous replica did not answer): it may
    or may not have been applied. The client must check before retrying a non-idempotent write."""


class ReadPosition:
    """Where this client's own latest write is, so that its reads see it (read-your-writes).

    A web request opens one (``track_writes``) from what the client sent back (a cookie or header);
    each write block that commits moves it forward; a read goes to a replica only if that replica
    has replayed it. The value is opaque outside the adapter that set it ('' when there is none).
    """

    __slots__ = ("value",)

    def __init__(self, value: str = ""):
        self.value = value


_position: ContextVar[ReadPosition | None] = ContextVar("summit_read_position", default=None)


def track_writes(value: str = "") -> tuple[ReadPosition, Token[ReadPosition | None]]:
    """Open a read position for the work that follows (a request, a job); ``untrack`` closes it."""
    position = ReadPosition(value)
    return position, _position.set(position)


def untrack(token: Token[ReadPosition | None]) -> None:
    _position.reset(token)


def read_position() -> ReadPosition | None:
    """The position of the work being done (None outside ``track_writes``)."""
    return _position.get()


@dataclass(frozen=True)
class Features:
    """What the backend can do, each a question the app may ask."""

    dialect: str
    # Does it have replicas that read() may route to (so a read may lag a write)?
    has_replicas: bool = False
    # Does SELECT ... FOR UPDATE SKIP LOCKED work?
    skip_locked: bool = False
    # Do concurrent writers proceed in parallel (rather than one at a time)?
    concurrent_writers: bool = False
    # Do the statements of one read block all see one snapshot (rather than each its own)?
    snapshot_reads: bool = True


class Connection(abc.ABC):
    """The connection of one block: execute SQLAlchemy Core statements, get buffered results."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "sql", {"execute": "statement"}, each_call=telemetry.sql_statement)

    @abc.abstractmethod
    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        """Run one statement (``parameters``: a dict, or a list of dicts for many rows)."""

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        """The first column of the first row, or None."""
        return (await self.execute(statement, parameters)).scalar()

    @abc.abstractmethod
    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(sync_connection, *args)`` with a synchronous SQLAlchemy connection of this block
        (for what only exists synchronously, such as ``MetaData.create_all``)."""


class Database(abc.ABC):
    features: Features

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "sql", {"read": "read", "write": "write"})

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Database: ...

    @property
    @abc.abstractmethod
    def sync_url(self) -> str:
        """A URL for a synchronous driver of the same database (for Alembic migrations)."""

    @abc.abstractmethod
    def write(self) -> AbstractAsyncContextManager[Connection]:
        """A transaction on the primary: committed on exit, rolled back on an exception."""

    @abc.abstractmethod
    def read(self, *, after_write: bool = False) -> AbstractAsyncContextManager[Connection]:
        """A read-only snapshot. Where there are replicas, it sees at least the writes this client
        made before (the ``read_position`` of the request or job), and may miss other clients'
        latest writes for a moment (the replicas' lag bound). ``after_write=True`` asks for every
        write committed before the block, whoever made it: the primary (for a job reading what a
        request just wrote, or a read that fills a shared cache)."""

    async def next_id(self, conn: Connection, shard: int) -> int:
        """A new ID on logical ``shard``, from this database's sequence, inside ``conn``'s transaction."""
        return ids.make_id(await self._next_sequence(conn), shard)

    @abc.abstractmethod
    async def _next_sequence(self, conn: Connection) -> int: ...

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        from sqlalchemy import text

        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection; the database is not used after this."""

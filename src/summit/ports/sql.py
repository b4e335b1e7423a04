"""The sql port: a relational database through SQLAlchemy 2 (async), with read/write routing.

The application writes SQL with SQLAlchemy Core against ``AsyncConnection``s it gets from
``write()`` (a transaction on the primary) and ``read()`` (a replica where there is one; the primary
until then). IDs come from ``next_id`` inside the writing transaction.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import exc as _exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from summit import ids

DatabaseError = _exc.DBAPIError
IntegrityError = _exc.IntegrityError


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


class Database(abc.ABC):
    engine: AsyncEngine
    features: Features

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Database: ...

    @property
    @abc.abstractmethod
    def sync_url(self) -> str:
        """A URL for a synchronous driver of the same database (for Alembic migrations)."""

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on the primary: committed on exit, rolled back on an exception."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self, *, after_write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; ``after_write`` asks to see this client's own latest writes."""
        async with self.engine.connect() as conn:
            yield conn

    async def next_id(self, conn: AsyncConnection, shard: int) -> int:
        """A new ID on logical ``shard``, from this database's sequence, inside ``conn``'s transaction."""
        return ids.make_id(await self._next_sequence(conn), shard)

    @abc.abstractmethod
    async def _next_sequence(self, conn: AsyncConnection) -> int: ...

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()

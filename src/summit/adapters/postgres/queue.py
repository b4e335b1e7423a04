"""The queue port on PostgreSQL: one table shared by any number of processes (psycopg 3, async).

    postgresql://summit@127.0.0.1:6432/summit?passfile=/srv/secrets/pgpass&prepared_statements=off&max_receives=5

``max_receives`` (5) and ``prepared_statements=off`` (behind PgBouncer in transaction pooling, which
keeps no prepared statements) are the queue's options; the sql adapter's own options (``replica``,
``pool_size`` ...) are accepted and ignored, since a stage gives both ports the same base URL; the
rest of the query goes to libpq (``passfile``, ``sslmode``, ``connect_timeout`` ...).

Every call is one short transaction on an autocommit connection of a small pool, so it works
through PgBouncer's transaction pooling. A receive selects the oldest visible messages ``FOR UPDATE
SKIP LOCKED`` and claims them (receipt, visibility, count) in the same transaction: a consumer
skips the rows another one is claiming instead of waiting for them, and no two consumers, in any
number of processes, ever claim the same message. Times are unix seconds of the queue's ``clock``
(``time.time`` by default, since processes compare them); a test passes a clock it advances by hand.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg

from summit.adapters.postgres.connections import Connections
from summit.ports.queue import (
    DEAD_SUFFIX,
    DEFAULT_MAX_RECEIVES,
    Clock,
    Message,
    Queue,
    QueueError,
    QueueStats,
    dead_letter_queue,
)

T = TypeVar("T")

_POOL_SIZE = 4  # connections per instance: a call holds one for a single short transaction
_TIMEOUT = 30.0  # seconds a call may take, waiting for a connection included: a stuck server is an error
_SQL_OPTIONS = ("replica", "reader", "pool_size", "max_lag_ms", "poll_ms", "replica_timeout_ms", "synchronous", "commit_timeout_ms")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS summit_queue_messages (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- sending order, among equal visible_at
        queue text NOT NULL,
        id text NOT NULL,
        body bytea NOT NULL,
        sent_at double precision NOT NULL,
        visible_at double precision NOT NULL,
        receipt text UNIQUE,  -- the latest receipt, NULL until received and once released
        receive_count integer NOT NULL DEFAULT 0
    )""",
    # "the oldest visible messages of queue Q": a range scan, already in (visible_at, seq) order
    "CREATE INDEX IF NOT EXISTS summit_queue_ready ON summit_queue_messages (queue, visible_at, seq)",
)
# CREATE INDEX takes a lock on the table even when the index exists: look before creating
_SCHEMA_PRESENT = "SELECT to_regclass('summit_queue_messages') IS NOT NULL AND to_regclass('summit_queue_ready') IS NOT NULL"
_SELECT_READY = (
    "SELECT seq, id, body, sent_at, receive_count FROM summit_queue_messages "
    "WHERE queue = %s AND visible_at <= %s ORDER BY visible_at, seq LIMIT %s FOR UPDATE SKIP LOCKED"
)
_CLAIM = (
    "UPDATE summit_queue_messages AS m SET receipt = c.receipt, visible_at = %s, receive_count = m.receive_count + 1 "
    "FROM unnest(%s::bigint[], %s::text[]) AS c(seq, receipt) WHERE m.seq = c.seq"
)
_BURY = (
    "UPDATE summit_queue_messages SET queue = %s, visible_at = %s, receipt = NULL, receive_count = 0 "
    "WHERE seq = ANY(%s::bigint[])"
)


class PostgresQueue(Queue):
    def __init__(
        self,
        conninfo: dict[str, Any],
        *,
        max_receives: int = DEFAULT_MAX_RECEIVES,
        prepared_statements: bool = True,
        clock: Clock = time.time,
    ):
        """``conninfo``: libpq connection keywords (host, port, dbname, user, passfile ...)."""
        if isinstance(max_receives, bool) or not isinstance(max_receives, int) or max_receives < 1:
            raise ValueError(f"max_receives must be an integer >= 1, not {max_receives!r}")
        if not callable(clock):
            raise TypeError(f"clock is a function returning unix seconds (such as time.time), not {clock!r}")
        self.max_receives = max_receives
        self.clock = clock
        self._connections = Connections(conninfo, prepared_statements=prepared_statements, size=_POOL_SIZE,
                                        schema_present=_SCHEMA_PRESENT, schema=_SCHEMA)

    conninfo = property(lambda self: self._connections.conninfo, doc="libpq's connection keywords")
    prepared_statements = property(lambda self: self._connections.prepared_statements)
    _idle = property(lambda self: self._connections.idle)

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = time.time) -> PostgresQueue:
        parts = urlsplit(url)
        if parts.scheme.split("+", 1)[0].lower() not in ("postgresql", "postgres"):
            raise ValueError(f"{url!r}: the PostgreSQL queue takes postgresql:// URLs")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"{url!r}: a PostgreSQL URL names a host and a database: postgresql://user@host:port/database")
        conninfo: dict[str, Any] = {"host": parts.hostname, "port": parts.port or 5432, "dbname": unquote(parts.path.strip("/"))}
        if parts.username:
            conninfo["user"] = unquote(parts.username)
        if parts.password:
            conninfo["password"] = unquote(parts.password)
        options: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "max_receives":
                try:
                    options["max_receives"] = int(value)
                except ValueError:
                    raise ValueError(f"{url!r}: max_receives must be an integer, not {value!r}") from None
            elif key == "prepared_statements":
                if value.lower() not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
                    raise ValueError(f"{url!r}: prepared_statements is on or off, not {value!r}")
                options["prepared_statements"] = value.lower() in ("on", "true", "1", "yes")
            elif key not in _SQL_OPTIONS:  # libpq's business
                conninfo[key] = value
        try:
            return cls(conninfo, clock=clock, **options)
        except ValueError as error:
            raise ValueError(f"{url!r}: {error}") from None

    def __repr__(self) -> str:
        info = self.conninfo
        return f"PostgresQueue('{info['host']}:{info['port']}/{info['dbname']}', max_receives={self.max_receives})"

    # -- the port (its arguments checked by Queue) -----------------------------------------------

    async def _send(self, queue: str, body: bytes, delay: float) -> str:
        message_id = secrets.token_urlsafe(16)

        async def insert(conn: psycopg.AsyncConnection[Any]) -> None:
            now = self.clock()
            await conn.execute(
                "INSERT INTO summit_queue_messages (queue, id, body, sent_at, visible_at) VALUES (%s, %s, %s, %s, %s)",
                (queue, message_id, body, now, now + delay),
            )

        await self._run(insert)
        return message_id

    async def _receive(self, queue: str, limit: int, visibility_timeout: float) -> list[Message]:
        return await self._run(lambda conn: self._claim(conn, queue, limit, visibility_timeout))

    async def _ack(self, queue: str, receipt: str) -> bool:
        return await self._write_one("DELETE FROM summit_queue_messages WHERE queue = %s AND receipt = %s", (queue, receipt))

    async def _release(self, queue: str, receipt: str, delay: float) -> bool:
        sql = "UPDATE summit_queue_messages SET receipt = NULL, visible_at = %s WHERE queue = %s AND receipt = %s"
        return await self._write_one(sql, (self.clock() + delay, queue, receipt))

    async def _stats(self, queue: str) -> QueueStats:
        async def count(conn: psycopg.AsyncConnection[Any]) -> QueueStats:
            now = self.clock()
            cursor = await conn.execute(
                "SELECT count(*) FILTER (WHERE visible_at <= %s), "
                "count(*) FILTER (WHERE visible_at > %s AND receipt IS NOT NULL), "
                "count(*) FILTER (WHERE visible_at > %s AND receipt IS NULL) "
                "FROM summit_queue_messages WHERE queue = %s",
                (now, now, now, queue),
            )
            visible, in_flight, delayed = await cursor.fetchone()  # type: ignore[misc]
            return QueueStats(visible=visible, in_flight=in_flight, delayed=delayed)

        return await self._run(count)

    async def _purge(self, queue: str) -> None:
        await self._run(lambda conn: conn.execute("DELETE FROM summit_queue_messages WHERE queue = %s", (queue,)))

    async def close(self) -> None:
        """Close the idle connections now; those in use close when their call ends."""
        await self._connections.close()

    async def _write_one(self, sql: str, params: tuple[Any, ...]) -> bool:
        """Run ``sql`` on the message one receipt names: True if there was one."""

        async def write(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(sql, params)).rowcount

        return await self._run(write) == 1

    async def _claim(
        self, conn: psycopg.AsyncConnection[Any], queue: str, limit: int, visibility_timeout: float
    ) -> list[Message]:
        """Select and claim up to ``limit`` visible messages, in the caller's transaction."""
        now = self.clock()
        # A dead-letter queue has no dead-letter queue of its own: its messages stay until purged.
        dead = None if queue.endswith(DEAD_SUFFIX) else dead_letter_queue(queue)
        delivered: list[Message] = []
        while len(delivered) < limit:
            rows = await (await conn.execute(_SELECT_READY, (queue, now, limit - len(delivered)))).fetchall()
            if not rows:
                break
            # received max_receives times already: off to <queue>.dead as a fresh message
            buried = [row[0] for row in rows if dead is not None and row[4] >= self.max_receives]
            if buried:
                await conn.execute(_BURY, (dead, now, buried))
            claimed = [(row, secrets.token_urlsafe(18)) for row in rows if row[0] not in buried]
            if claimed:
                seqs, receipts = [row[0] for row, _ in claimed], [receipt for _, receipt in claimed]
                await conn.execute(_CLAIM, (now + visibility_timeout, seqs, receipts))
            delivered += [Message(id_, bytes(body), receipt, count + 1, sent_at) for (_, id_, body, sent_at, count), receipt in claimed]
        return delivered

    # -- connections ------------------------------------------------------------------------------

    async def _run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` in one transaction on a pooled connection; the caller sees QueueError only."""
        if self._connections.closed:
            raise QueueError(f"{self!r} is closed")
        try:
            async with asyncio.timeout(_TIMEOUT), self._connections.slots:
                if self._connections.closed:  # closed while this call waited for a connection
                    raise QueueError(f"{self!r} is closed")
                return await self._connections.transaction(work)
        except TimeoutError:
            raise QueueError(f"{self!r}: no answer from the server within {_TIMEOUT:g} s") from None
        except psycopg.Error as error:
            message = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise QueueError(f"{self!r}: {message}") from error

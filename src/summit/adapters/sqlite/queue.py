"""The queue port on SQLite: a durable queue in one file, the embedded default of stage 1.

``sqlite:///path/queue.db?max_receives=5`` (also ``busy_timeout_ms``). Every call runs on one
dedicated thread that owns the connection, so any number of coroutines may share an instance.
Several processes may share the file: WAL mode lets readers run beside the writer, ``busy_timeout``
makes a writer wait for the lock, and every state change runs in ``BEGIN IMMEDIATE``, so a receive
selects and claims its messages under one write lock and two processes never claim the same one.
Times are wall-clock unix seconds (``clock=time.time``, the default), since they are compared
between processes; a test passes a clock it advances by hand.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from summit.adapters.sqlite.database import sqlite_path
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

_URL_PARAMS = ("max_receives", "busy_timeout_ms")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS summit_queue_messages (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        body BLOB NOT NULL,
        sent_at REAL NOT NULL,
        visible_at REAL NOT NULL,
        receipt TEXT,  -- the latest receipt, NULL until received and once released
        receive_count INTEGER NOT NULL DEFAULT 0
    )""",
    # "the oldest visible messages of queue Q": a range scan, already in (visible_at, rowid) order
    "CREATE INDEX IF NOT EXISTS summit_queue_ready ON summit_queue_messages (queue, visible_at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS summit_queue_receipt ON summit_queue_messages (receipt)",
)
_SELECT_READY = (
    "SELECT rowid, id, body, sent_at, receive_count FROM summit_queue_messages "
    "WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, rowid LIMIT ?"
)


class SQLiteQueue(Queue):
    def __init__(
        self,
        path: Path | None,
        *,
        max_receives: int = DEFAULT_MAX_RECEIVES,
        busy_timeout_ms: int = 10_000,
        clock: Clock = time.time,
    ):
        """``path=None`` keeps the queue in memory, private to this instance (no durability)."""
        if isinstance(max_receives, bool) or not isinstance(max_receives, int) or max_receives < 1:
            raise ValueError(f"max_receives must be an integer >= 1, not {max_receives!r}")
        if not callable(clock):
            raise TypeError(f"clock is a function returning unix seconds (such as time.time), not {clock!r}")
        self.path = path
        self.max_receives = max_receives
        self.busy_timeout_ms = busy_timeout_ms
        self.clock = clock
        # One thread owns the connection; it starts on the first call, not here.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="summit-queue")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = time.time) -> SQLiteQueue:
        parts = urlsplit(url)
        if parts.scheme.split("+", 1)[0].lower() != "sqlite":
            raise ValueError(f"{url!r}: the SQLite queue takes sqlite:///path/queue.db URLs")
        path = sqlite_path(url)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(params) - set(_URL_PARAMS))
        if unknown:
            raise ValueError(f"{url!r}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(_URL_PARAMS)}")
        numbers = {}
        for name, value in params.items():
            try:
                numbers[name] = int(value)
            except ValueError:
                raise ValueError(f"{url!r}: {name} must be an integer, not {value!r}") from None
        if numbers.get("busy_timeout_ms", 0) < 0:
            raise ValueError(f"{url!r}: busy_timeout_ms must be >= 0")
        return cls(path, clock=clock, **numbers)

    def __repr__(self) -> str:
        return f"SQLiteQueue({str(self.path or ':memory:')!r}, max_receives={self.max_receives})"

    # -- the port (its arguments checked by Queue) -----------------------------------------------

    async def _send(self, queue: str, body: bytes, delay: float) -> str:
        return await self._run(self._insert, queue, body, delay)

    async def _receive(self, queue: str, limit: int, visibility_timeout: float) -> list[Message]:
        return await self._run(self._claim, queue, limit, visibility_timeout)

    async def _ack(self, queue: str, receipt: str) -> bool:
        sql = "DELETE FROM summit_queue_messages WHERE queue = ? AND receipt = ?"
        return await self._run(self._write_one, sql, (queue, receipt)) == 1

    async def _release(self, queue: str, receipt: str, delay: float) -> bool:
        sql = "UPDATE summit_queue_messages SET receipt = NULL, visible_at = ? WHERE queue = ? AND receipt = ?"
        return await self._run(self._write_one, sql, (self.clock() + delay, queue, receipt)) == 1

    async def _stats(self, queue: str) -> QueueStats:
        return await self._run(self._count, queue)

    async def _purge(self, queue: str) -> None:
        await self._run(self._delete_all, queue)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_connection)
        finally:
            self._executor.shutdown(wait=True)

    # -- on the queue's thread --------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise QueueError(f"{self!r} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            if self._conn is None:
                self._conn = self._connect()
            return fn(self._conn, *args)
        except sqlite3.Error as error:  # the port's callers see QueueError only
            raise QueueError(f"sqlite queue {self.path or ':memory:'}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions, we BEGIN ourselves.
        conn = sqlite3.connect(
            self.path or ":memory:", timeout=self.busy_timeout_ms / 1000, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # as the sql adapter: survives a crashed process
            with _write(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _insert(self, conn: sqlite3.Connection, queue: str, body: bytes, delay: float) -> str:
        message_id = secrets.token_urlsafe(16)
        now = self.clock()
        with _write(conn):
            conn.execute(
                "INSERT INTO summit_queue_messages (queue, id, body, sent_at, visible_at) VALUES (?, ?, ?, ?, ?)",
                (queue, message_id, body, now, now + delay),
            )
        return message_id

    def _claim(self, conn: sqlite3.Connection, queue: str, limit: int, visibility_timeout: float) -> list[Message]:
        now = self.clock()
        # A dead-letter queue has no dead-letter queue of its own: its messages stay until purged.
        dead = None if queue.endswith(DEAD_SUFFIX) else dead_letter_queue(queue)
        delivered: list[Message] = []
        with _write(conn):  # select and claim under one write lock: no other process sees them free
            while len(delivered) < limit:
                rows = conn.execute(_SELECT_READY, (queue, now, limit - len(delivered))).fetchall()
                if not rows:
                    break
                for rowid, message_id, body, sent_at, count in rows:
                    if dead is not None and count >= self.max_receives:
                        # received max_receives times already: off to <queue>.dead as a fresh message
                        conn.execute(
                            "UPDATE summit_queue_messages SET queue = ?, visible_at = ?, receipt = NULL, "
                            "receive_count = 0 WHERE rowid = ?",
                            (dead, now, rowid),
                        )
                        continue
                    receipt = secrets.token_urlsafe(18)
                    conn.execute(
                        "UPDATE summit_queue_messages SET receipt = ?, visible_at = ?, "
                        "receive_count = receive_count + 1 WHERE rowid = ?",
                        (receipt, now + visibility_timeout, rowid),
                    )
                    delivered.append(Message(message_id, bytes(body), receipt, count + 1, sent_at))
        return delivered

    def _write_one(self, conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
        with _write(conn):
            return conn.execute(sql, params).rowcount

    def _count(self, conn: sqlite3.Connection, queue: str) -> QueueStats:
        now = self.clock()
        visible, in_flight, delayed = conn.execute(
            "SELECT count(*) FILTER (WHERE visible_at <= ?), "
            "count(*) FILTER (WHERE visible_at > ? AND receipt IS NOT NULL), "
            "count(*) FILTER (WHERE visible_at > ? AND receipt IS NULL) "
            "FROM summit_queue_messages WHERE queue = ?",
            (now, now, now, queue),
        ).fetchone()
        return QueueStats(visible=visible, in_flight=in_flight, delayed=delayed)

    def _delete_all(self, conn: sqlite3.Connection, queue: str) -> None:
        with _write(conn):
            conn.execute("DELETE FROM summit_queue_messages WHERE queue = ?", (queue,))


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): take the write lock before reading."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise

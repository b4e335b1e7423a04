"""The sql port on SQLite, in WAL mode: the embedded default of stage 1.

Statements run on the event loop's own thread, without a thread hop: in WAL mode a reader never
waits for a writer, and a statement on a local file takes microseconds. What could hold the loop
longer is moved off it:
- **a long read**: every statement of a read (any SELECT) runs under a deadline
  (``inline_ms``, 20 ms by default) that SQLite's progress handler enforces; a read that passes it
  is interrupted, which leaves its transaction and snapshot as they were, and runs again, whole, on
  a worker thread. A read therefore holds the loop for at most about ``inline_ms``;
- **waiting for the write lock**: writers in this process queue on an asyncio lock and share one
  write connection, so they never wait inside SQLite; only when another process holds the lock
  does ``BEGIN IMMEDIATE`` wait (``busy_timeout_ms``) on a worker thread;
- **checkpoints**: the connections do not checkpoint on commit; a worker thread copies the WAL
  back into the database file every ``CHECKPOINT_EVERY`` commits (PASSIVE: it waits for nobody).
Writes themselves (INSERT, UPDATE, DELETE) run inline: interrupting one would roll back its whole
transaction. Read blocks use their own connections with ``query_only`` on, so they cannot write.

Rows are fetched when a statement runs (the cursor buffers them), so reading a result never
steps SQLite outside the deadline.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import Result
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

from summit.ports.sql import Connection, Database, Features

T = TypeVar("T")

_SEQUENCE_DDL = "CREATE TABLE IF NOT EXISTS summit_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)"
_NEXT = text(
    "INSERT INTO summit_sequence (id, value) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET value = value + 1 RETURNING value"
)
_OPTIONS = ("busy_timeout_ms", "inline_ms", "readers")
CHECKPOINT_EVERY = 200  # commits between two background checkpoints
_PROGRESS_STEPS = 1000  # SQLite VM steps between two looks at the deadline


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite URL (None for an in-memory database)."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:  # sqlite://relative/path is a common slip for sqlite:///relative/path
        raise ValueError(f"{url!r}: a sqlite URL has three slashes (sqlite:///relative or sqlite:////absolute)")
    return None if path in ("", ":memory:") else Path(path)


class _BufferedCursor(sqlite3.Cursor):
    """A cursor that fetches every row when its statement runs (under the statement's deadline)."""

    _rows: list[Any] | None = None

    def execute(self, sql: str, parameters: Any = ()) -> _BufferedCursor:  # type: ignore[override]
        self._rows = None
        super().execute(sql, parameters)
        if self.description is not None:
            self._rows = super().fetchall()
            self._next = 0
        return self

    def fetchone(self) -> Any:
        if self._rows is None:
            return super().fetchone()
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self._rows is None:
            return super().fetchmany(size or self.arraysize)
        start = self._next
        self._next = min(len(self._rows), start + (size or self.arraysize))
        return self._rows[start:self._next]

    def fetchall(self) -> list[Any]:
        if self._rows is None:
            return super().fetchall()
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest


class _SQLiteDriverConnection(sqlite3.Connection):
    """sqlite3's connection with buffered cursors and a deadline its progress handler enforces."""

    deadline = 0.0  # time.perf_counter() after which a running statement is interrupted; 0: none

    def cursor(self, factory: Any = _BufferedCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def past_deadline(self) -> int:
        return 1 if self.deadline and time.perf_counter() > self.deadline else 0


class SQLiteConnection(Connection):
    """One block: ``async with`` lends it a connection and ends its transaction. Statements run
    inline; see the module's docstring."""

    __slots__ = ("_conn", "_db", "_driver", "_inline", "_writing")

    def __init__(self, db: SQLiteDatabase, writing: bool):
        self._db = db
        self._writing = writing
        self._inline = db.inline_seconds

    async def __aenter__(self) -> SQLiteConnection:
        if self._writing:
            self._conn, self._driver = await self._db._begin_write()
        else:
            self._conn, self._driver = await self._db._begin_read()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self._db._end(self._conn, self._driver, self._writing, commit=exc_type is None)

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        bounded = not self._writing or getattr(statement, "is_select", False)
        driver = self._driver
        if bounded:
            driver.deadline = time.perf_counter() + self._inline
        try:
            return self._conn.execute(statement, parameters)
        except OperationalError as error:
            if not bounded or not _interrupted_or_busy(error):
                raise
        finally:
            driver.deadline = 0.0
        # too long for the loop (or SQLite was busy with another process): the whole statement
        # again on a thread, which may take as long as it needs
        return await asyncio.to_thread(self._conn.execute, statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._conn, *args)


def _interrupted_or_busy(error: OperationalError) -> bool:
    message = str(error.orig)
    return message == "interrupted" or "locked" in message or "busy" in message


class SQLiteDatabase(Database):
    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000, inline_ms: float = 20.0, readers: int = 8):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.inline_seconds = inline_ms / 1000
        self.max_readers = readers
        self.features = Features(dialect="sqlite")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = create_engine(
            f"sqlite+pysqlite:///{path}",
            poolclass=NullPool,  # this class keeps its connections itself
            connect_args={"factory": _SQLiteDriverConnection, "check_same_thread": False, "timeout": 0},
        )
        event.listen(self._engine, "connect", self._on_connect)
        self._idle_readers: list[SyncConnection] = []
        self._open_readers = 0
        self._reader_freed = asyncio.Condition()
        self._writer: SyncConnection | None = None
        self._write_lock = asyncio.Lock()
        self._sequence_ready = False  # summit_sequence exists (created in the first write)
        self._commits = 0
        self._checkpointing: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> SQLiteDatabase:
        path = sqlite_path(url)
        if path is None:
            raise ValueError("the sql port needs a file: in-memory SQLite is not shared between connections")
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        unknown = set(query) - set(_OPTIONS)
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}; the sql port on sqlite takes {', '.join(_OPTIONS)}")
        options: dict[str, int] = {}
        for name, value in query.items():
            if not value.isdigit() or (name == "readers" and int(value) < 1):
                unit = "a whole number of milliseconds" if name.endswith("_ms") else "a whole number >= 1"
                raise ValueError(f"{url!r}: {name} must be {unit}, got {value!r}")
            options[name] = int(value)
        return cls(path, **options)

    @property
    def sync_url(self) -> str:
        return f"sqlite:///{self.path}"

    def _on_connect(self, driver: _SQLiteDriverConnection, _record: object) -> None:
        driver.isolation_level = None  # the blocks issue BEGIN themselves
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=0", "wal_autocheckpoint=0"):
            driver.execute(f"PRAGMA {pragma}")
        driver.set_progress_handler(driver.past_deadline, _PROGRESS_STEPS)

    # ---- blocks -----------------------------------------------------------------------------
    # A block issues BEGIN and COMMIT/ROLLBACK on the driver itself: SQLAlchemy's "begin" event
    # would switch on its event dispatch for every statement (a third of a statement's cost).

    def read(self, *, after_write: bool = False) -> SQLiteConnection:  # type: ignore[override]
        return SQLiteConnection(self, writing=False)

    def write(self) -> SQLiteConnection:  # type: ignore[override]
        return SQLiteConnection(self, writing=True)

    async def _begin_read(self) -> tuple[SyncConnection, _SQLiteDriverConnection]:
        conn = self._idle_readers.pop() if self._idle_readers else await self._another_reader()
        driver = conn.info["driver"]
        driver.execute("BEGIN")
        return conn, driver

    async def _another_reader(self) -> SyncConnection:
        """A new read connection while fewer than ``readers`` are open; else wait for a free one."""
        self._check_open()
        if self._open_readers < self.max_readers:
            self._open_readers += 1
            try:
                conn = self._engine.connect()
                conn.info["driver"] = conn.connection.dbapi_connection
                conn.exec_driver_sql("PRAGMA query_only=ON")
            except BaseException:
                self._open_readers -= 1
                raise
            return conn
        async with self._reader_freed:
            await self._reader_freed.wait_for(lambda: bool(self._idle_readers))
        return self._idle_readers.pop()

    async def _begin_write(self) -> tuple[SyncConnection, _SQLiteDriverConnection]:
        await self._write_lock.acquire()
        try:
            conn = self._writer or self._open_writer()
            driver = conn.info["driver"]
            try:
                driver.execute("BEGIN IMMEDIATE")  # the write lock, or SQLITE_BUSY at once
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                await asyncio.to_thread(self._begin_waiting, driver)  # another process holds it
            if not self._sequence_ready:  # in this transaction, so that it is rolled back with it
                driver.execute(_SEQUENCE_DDL)
        except BaseException:
            self._write_lock.release()
            raise
        return conn, driver

    async def _end(self, conn: SyncConnection, driver: _SQLiteDriverConnection, writing: bool, *, commit: bool) -> None:
        try:
            if writing and commit:
                try:
                    driver.commit()
                except BaseException:
                    driver.rollback()
                    raise
                self._sequence_ready = True
                self._after_commit()
            else:
                driver.rollback()
        finally:
            if conn.in_transaction():  # SQLAlchemy's own bookkeeping (the driver's is done)
                conn.rollback()
            if writing:
                self._write_lock.release()
            else:
                await self._release_reader(conn)

    async def _release_reader(self, conn: SyncConnection) -> None:
        self._idle_readers.append(conn)
        if self._open_readers >= self.max_readers:
            async with self._reader_freed:
                self._reader_freed.notify()

    def _open_writer(self) -> SyncConnection:
        self._check_open()
        conn = self._engine.connect()
        conn.info["driver"] = conn.connection.dbapi_connection
        self._writer = conn
        return conn

    def _begin_waiting(self, driver: _SQLiteDriverConnection) -> None:
        driver.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        try:
            driver.execute("BEGIN IMMEDIATE")
        finally:
            driver.execute("PRAGMA busy_timeout=0")

    def _after_commit(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and not (self._checkpointing and self._checkpointing.is_alive()):
            self._checkpointing = threading.Thread(target=self._checkpoint, name="summit-sqlite-checkpoint", daemon=True)
            self._checkpointing.start()

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database file, on a connection of its own (PASSIVE: it takes
        what no reader still needs and blocks nobody)."""
        with sqlite3.connect(self.path, timeout=0) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.close()

    async def ping(self) -> None:
        """``SELECT 1`` on a read connection's driver, outside any transaction (health checks call
        this on every probe: one call into SQLite, not a block's three)."""
        conn = self._idle_readers.pop() if self._idle_readers else await self._another_reader()
        try:
            conn.info["driver"].execute("SELECT 1").fetchall()
        finally:
            await self._release_reader(conn)

    async def _next_sequence(self, conn: Connection) -> int:
        return (await conn.execute(_NEXT)).scalar_one()

    # ---- life -------------------------------------------------------------------------------

    def in_use(self) -> int:
        """Connections lent to blocks right now (for tests and status)."""
        return self._open_readers - len(self._idle_readers) + (1 if self._write_lock.locked() else 0)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this database was closed")

    async def close(self) -> None:
        self._closed = True
        async with self._write_lock:
            checkpointing = self._checkpointing
            if checkpointing is not None:
                await asyncio.to_thread(checkpointing.join)
            connections = [*self._idle_readers, *([self._writer] if self._writer else [])]
            self._idle_readers.clear()
            self._writer = None
            for conn in connections:
                conn.close()
        self._engine.dispose()


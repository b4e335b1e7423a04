"""The sql port on SQLite (aiosqlite), in WAL mode: the embedded default of stage 1.

WAL lets readers proceed while one writer writes; ``busy_timeout`` makes a second writer wait for
the lock instead of failing at once. Writes take the lock at BEGIN (``BEGIN IMMEDIATE``), so a
transaction that reads and then writes cannot deadlock against another one doing the same.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from summit.ports.sql import Database, Features

_SEQUENCE_DDL = "CREATE TABLE IF NOT EXISTS summit_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)"
_NEXT = (
    "INSERT INTO summit_sequence (id, value) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET value = value + 1 RETURNING value"
)


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite URL (None for an in-memory database)."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:  # sqlite://relative/path is a common slip for sqlite:///relative/path
        raise ValueError(f"{url!r}: a sqlite URL has three slashes (sqlite:///relative or sqlite:////absolute)")
    return None if path in ("", ":memory:") else Path(path)


class SQLiteDatabase(Database):
    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000, pool_size: int = 8):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            poolclass=AsyncAdaptedQueuePool,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"timeout": busy_timeout_ms / 1000},
        )
        self.features = Features(dialect="sqlite")
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                f"busy_timeout={busy_timeout_ms}",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.execute(_SEQUENCE_DDL)
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("summit_write") else "BEGIN")

    @classmethod
    def from_url(cls, url: str) -> SQLiteDatabase:
        path = sqlite_path(url)
        if path is None:
            raise ValueError("the sql port needs a file: in-memory SQLite is not shared between connections")
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        unknown = set(query) - {"busy_timeout_ms"}
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}; the sql port on sqlite takes busy_timeout_ms")
        timeout = query.get("busy_timeout_ms", "10000")
        if not timeout.isdigit():
            raise ValueError(f"{url!r}: busy_timeout_ms must be a whole number of milliseconds, got {timeout!r}")
        return cls(path, busy_timeout_ms=int(timeout))

    @property
    def sync_url(self) -> str:
        return f"sqlite:///{self.path}"

    def write(self):  # type: ignore[override]
        return _WriteTransaction(self)

    async def _next_sequence(self, conn: AsyncConnection) -> int:
        return (await conn.execute(text(_NEXT))).scalar_one()


class _WriteTransaction:
    """``async with db.write() as conn``: BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, db: SQLiteDatabase):
        self.db = db

    async def __aenter__(self) -> AsyncConnection:
        self.conn = await self.db.engine.connect()
        self.conn.sync_connection.info["summit_write"] = True  # type: ignore[union-attr]
        try:
            self.tx = await self.conn.begin()
        except BaseException:  # e.g. "database is locked" after busy_timeout: give the connection back
            self.conn.sync_connection.info.pop("summit_write", None)  # type: ignore[union-attr]
            await self.conn.close()
            raise
        return self.conn

    async def __aexit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            if exc_type is None:
                await self.tx.commit()
            else:
                await self.tx.rollback()
        finally:
            self.conn.sync_connection.info.pop("summit_write", None)  # type: ignore[union-attr]
            await self.conn.close()

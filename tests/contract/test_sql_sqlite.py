"""What is particular to the sql port on SQLite: WAL, file URLs, the write lock, the loop bound
(the contract itself runs from ``test_sql.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from summit.adapters.sqlite.database import SQLiteDatabase, sqlite_path
from summit.wiring import WiringError, open_port


@pytest.fixture
async def db(tmp_path: Path):
    db = SQLiteDatabase.from_url(f"sqlite:///{tmp_path}/app.db")
    yield db
    await db.close()


async def test_wal_mode_is_on(db: SQLiteDatabase) -> None:
    async with db.read() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
    async with db.write() as conn:
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1


async def test_dialect(db: SQLiteDatabase) -> None:
    assert db.features.dialect == "sqlite"
    assert db.sync_url == f"sqlite:///{db.path}"


async def test_data_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    db = SQLiteDatabase.from_url(url)
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE t (v TEXT)"))
        await conn.execute(text("INSERT INTO t VALUES ('kept')"))
        first = await db.next_id(conn, 3)
    await db.close()
    db = SQLiteDatabase.from_url(url)
    try:
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalar_one() == "kept"
        async with db.write() as conn:
            assert await db.next_id(conn, 3) > first  # the sequence is stored in the file
    finally:
        await db.close()


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///.summit/app.db") == Path(".summit/app.db")
    assert sqlite_path("sqlite:////srv/app.db") == Path("/srv/app.db")
    assert sqlite_path("sqlite+aiosqlite:///data/app.db?busy_timeout_ms=50") == Path("data/app.db")
    db = SQLiteDatabase.from_url("sqlite:///nested/dir/app.db?busy_timeout_ms=500")
    assert db.path == Path("nested/dir/app.db")
    assert (tmp_path / "nested" / "dir").is_dir()


@pytest.mark.parametrize("url", ["sqlite://relative/app.db", "sqlite://.summit/app.db"])
def test_two_slashes_is_a_clear_error(url: str) -> None:
    with pytest.raises(ValueError, match="three slashes"):
        SQLiteDatabase.from_url(url)
    with pytest.raises(ValueError, match="three slashes"):
        open_port("sql", url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///"])
def test_in_memory_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="in-memory"):
        SQLiteDatabase.from_url(url)


def test_the_wiring_opens_sqlite_with_a_driver_suffix(tmp_path: Path) -> None:
    assert isinstance(open_port("sql", f"sqlite+aiosqlite:///{tmp_path}/x.db"), SQLiteDatabase)
    with pytest.raises(WiringError, match="did you mean sqlite://"):
        open_port("sql", f"sqlit:///{tmp_path}/x.db")


@pytest.mark.parametrize("url", ["sqlite:///x.db?busy_timout_ms=5", "sqlite:///x.db?busy_timeout_ms=abc"])
def test_bad_options_are_named(url: str) -> None:
    with pytest.raises(ValueError, match="busy_tim"):
        SQLiteDatabase.from_url(url)


async def test_a_write_that_cannot_get_the_lock_gives_its_connection_back(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "app.db"
    db = SQLiteDatabase.from_url(f"sqlite:///{path}?busy_timeout_ms=50")
    await db.ping()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        for _ in range(10):  # more attempts than the pool has connections
            with pytest.raises(Exception, match="locked"):
                async with db.write():
                    pass
        assert db.in_use() == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    async with db.write() as conn:  # and writing works again once the lock is free
        await conn.execute(text("SELECT 1"))
    await db.close()


async def test_a_read_moved_off_the_loop_keeps_its_snapshot(tmp_path: Path) -> None:
    """A statement that passes the inline deadline runs again on a thread, inside the same read
    transaction: it sees the block's snapshot, not a write committed meanwhile."""
    db = SQLiteDatabase.from_url(f"sqlite:///{tmp_path}/app.db?inline_ms=0")  # every read moves
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        slow = text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) "
                    "SELECT (SELECT count(*) FROM t) FROM c LIMIT 1 OFFSET 199999")
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
            async with db.write() as writer:  # committed while the read block is open
                await writer.execute(text("INSERT INTO t VALUES (2)"))
            assert (await conn.execute(slow)).scalar_one() == 1
        async with db.read() as conn:
            assert (await conn.execute(slow)).scalar_one() == 2
    finally:
        await db.close()


async def test_waiting_for_another_process_s_write_lock_leaves_the_loop_free(tmp_path: Path) -> None:
    import asyncio
    import sqlite3
    import threading

    path = tmp_path / "app.db"
    db = SQLiteDatabase.from_url(f"sqlite:///{path}?busy_timeout_ms=5000")
    await db.ping()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    threading.Timer(0.3, lambda: holder.execute("ROLLBACK")).start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.create_task(ticker())
    try:
        async with db.write() as conn:  # waits on a thread until the holder lets go
            await conn.execute(text("SELECT 1"))
        assert ticks >= 5, "the event loop stood still while the write waited for the lock"
    finally:
        running.cancel()
        holder.close()
        await db.close()


@pytest.mark.parametrize("url", ["sqlite:///x.db?inline_ms=-1", "sqlite:///x.db?readers=0", "sqlite:///x.db?readers=many"])
def test_bad_bounds_are_named(url: str) -> None:
    with pytest.raises(ValueError, match="inline_ms|readers"):
        SQLiteDatabase.from_url(url)

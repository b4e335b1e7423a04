"""The sql contract on SQLite, and what is particular to it: WAL, file URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from summit.adapters.sqlite.database import SQLiteDatabase, sqlite_path
from summit.testing.sql import DatabaseContract
from summit.wiring import WiringError, open_port


class TestSQLiteDatabase(DatabaseContract):
    @pytest.fixture
    async def db(self, tmp_path: Path):
        db = SQLiteDatabase.from_url(f"sqlite:///{tmp_path}/app.db")
        yield db
        await db.close()

    async def test_wal_mode_is_on(self, db: SQLiteDatabase) -> None:
        async with db.read() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        async with db.write() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1

    async def test_dialect(self, db: SQLiteDatabase) -> None:
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

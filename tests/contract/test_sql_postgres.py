"""What is particular to the sql port on PostgreSQL: the replica router. A replica whose replay is
paused keeps answering with older data, the way a lagging replica does; read-your-writes must hold
all the same, and a replica past the lag bound must leave the rotation (the contract itself runs
from ``test_sql.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from summit.adapters.postgres.database import PostgresDatabase
from summit.ports.sql import track_writes, untrack
from summit.wiring import WiringError, open_port

pytestmark = pytest.mark.postgres

notes = sa.Table("rw_notes", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(50)))


@pytest.fixture
async def db(postgres_db) -> AsyncIterator[PostgresDatabase]:  # noqa: ANN001
    database = open_port("sql", postgres_db.url + "&poll_ms=50&max_lag_ms=2000")
    async with database.write() as conn:
        await conn.run_sync(notes.metadata.create_all)
    await _settle(database)
    yield database
    await database.close()
    for replica in postgres_db.stage.replicas():
        postgres_db.stage.pause_replay(replica, paused=False)


async def _settle(db: PostgresDatabase, timeout: float = 10.0) -> None:
    """Wait until every replica is in rotation and has replayed the primary's latest position."""
    await db.monitor.first_poll()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        primary = db.monitor.primary_position()
        if primary and all(r.healthy and r.replayed >= primary for r in db.monitor.replicas):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"replicas did not catch up: {db.replica_status()}")


async def _count(db: PostgresDatabase, **read) -> int:  # noqa: ANN003
    async with db.read(**read) as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(notes))).scalar_one()


async def _write(db: PostgresDatabase, n: int) -> None:
    async with db.write() as conn:
        await conn.execute(sa.insert(notes).values(id=n, text=f"note {n}"))


def test_the_url_names_the_replicas_and_options(postgres_db) -> None:  # noqa: ANN001
    db = open_port("sql", postgres_db.url + "&max_lag_ms=500&replica_timeout_ms=800")
    assert db.features.has_replicas and db.features.concurrent_writers and db.features.skip_locked
    assert db.monitor.max_lag == 0.5 and db.replica_timeout == 0.8
    assert "replica" not in db.sync_url and "passfile" in db.sync_url  # what Alembic gets: libpq's options only
    for bad, name in (("&max_lag_ms=soon", "max_lag_ms"), ("&replica=nohost", "replica"), ("&prepared_statements=maybe", "prepared_statements")):
        with pytest.raises(ValueError, match=name):
            open_port("sql", postgres_db.url + bad)
    with pytest.raises(WiringError, match="did you mean postgres"):
        open_port("sql", "postgrse://x@127.0.0.1/db")


async def test_reads_go_to_a_replica_when_it_has_the_data(db: PostgresDatabase) -> None:
    await _write(db, 1)
    await _settle(db)
    async with db.read() as conn:
        assert await conn.scalar(sa.text("SELECT pg_is_in_recovery()")) is True
        assert await conn.scalar(sa.select(sa.func.count()).select_from(notes)) == 1
    async with db.read(after_write=True) as conn:  # the primary
        assert await conn.scalar(sa.text("SELECT pg_is_in_recovery()")) is False


async def test_a_client_reads_its_own_write_while_the_replica_lags(db: PostgresDatabase, postgres_db) -> None:  # noqa: ANN001
    replica = postgres_db.stage.replicas()[0]
    postgres_db.stage.pause_replay(replica)  # from here the replica answers with older and older data
    position, token = track_writes()
    try:
        await _write(db, 1)
        assert position.value  # the commit's position, to send back to the client
        for _ in range(20):  # every read of this client sees its write, though the replica has not got it
            assert await _count(db) == 1
        async with db.read() as conn:
            assert await conn.scalar(sa.text("SELECT pg_is_in_recovery()")) is False  # it was the primary
    finally:
        untrack(token)
    # another client (no position) may read the lagging replica within the lag bound: stale, by design
    assert await _count(db) == 0
    assert await _count(db, after_write=True) == 1  # ... unless it asks for every committed write


async def test_the_position_travels_to_another_process(db: PostgresDatabase, postgres_db) -> None:  # noqa: ANN001
    """A second web process (another adapter instance) honours the position the first one handed out."""
    replica = postgres_db.stage.replicas()[0]
    postgres_db.stage.pause_replay(replica)
    first, token = track_writes()
    try:
        await _write(db, 7)
    finally:
        untrack(token)
    other = open_port("sql", postgres_db.url)
    try:
        _, token = track_writes(first.value)  # what the client sent back in its cookie or header
        try:
            assert await _count(other) == 1
        finally:
            untrack(token)
    finally:
        await other.close()


async def test_a_replica_past_the_lag_bound_leaves_the_rotation_and_comes_back(db: PostgresDatabase, postgres_db) -> None:  # noqa: ANN001
    replica = postgres_db.stage.replicas()[0]
    postgres_db.stage.pause_replay(replica)
    await _write(db, 1)
    deadline = time.monotonic() + 10
    n = 100
    while db.monitor.replicas[0].staleness <= db.monitor.max_lag and time.monotonic() < deadline:
        n += 1
        await _write(db, n)  # the primary moves on
        await asyncio.sleep(0.1)
    assert db.monitor.replicas[0].staleness > db.monitor.max_lag
    assert db.monitor.choose(None) is None  # nothing eligible: reads go to the primary
    assert await _count(db) >= 1  # and see the data
    postgres_db.stage.pause_replay(replica, paused=False)
    await _settle(db)
    assert db.monitor.choose(None) is not None


async def test_a_commit_moves_the_position_forward_only(db: PostgresDatabase) -> None:
    position, token = track_writes("99999999999999")  # a client that wrote far ahead (or forged it)
    try:
        await _write(db, 1)
        assert position.value == "99999999999999"  # never moved back
        assert await _count(db) == 1  # no replica has that position: the primary answers
    finally:
        untrack(token)


async def test_the_first_writes_of_a_process_do_not_wait_on_each_other_behind_pgbouncer(postgres_db) -> None:  # noqa: ANN001
    """Regression: a process's first ``next_id`` created the ID sequence on a connection of its
    own while its block held a PgBouncer server connection; with every server connection (20 per
    database) held by blocks waiting for that creation, it waited for one of them: 30 s, until
    PgBouncer's query_wait_timeout."""
    database = open_port("sql", postgres_db.url + "&pool_size=40")
    holding, everyone_holds = 0, asyncio.Event()

    async def write() -> int:
        nonlocal holding
        async with database.write() as conn:
            await conn.execute(sa.text("SELECT 1"))  # this block now holds a server connection
            holding += 1
            if holding >= 20:  # PgBouncer's pool for the database is full
                everyone_holds.set()
            await asyncio.wait_for(everyone_holds.wait(), 10)
            return await database.next_id(conn, 1)

    try:
        made = await asyncio.wait_for(asyncio.gather(*(write() for _ in range(30))), 20)
        assert len(set(made)) == 30
    finally:
        await database.close()

"""The contract every adapter of the sql port passes.

    class TestDatabase(DatabaseContract):
        backend = backend_fixture("sql")      # one run per line of the sql table (summit.testing.backends)

The tables this suite needs are created (and dropped afterwards) by the ``tables`` fixture, with
SQLAlchemy Core only, so the same tests run on every dialect.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from summit.ids import EPOCH_MS, LOGICAL_SHARDS, parse_id
from summit.ports.sql import Database, DatabaseError, IntegrityError

metadata = sa.MetaData()
items = sa.Table(
    "contract_items",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
)
counters = sa.Table(
    "contract_counters",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)


class Boom(Exception):
    pass


async def _names(db: Database) -> list[str]:
    async with db.read(after_write=True) as conn:  # right after the test's writes (a replica may lag)
        return list((await conn.execute(sa.select(items.c.name).order_by(items.c.id))).scalars())


class DatabaseContract:
    @pytest.fixture
    def backend(self):  # noqa: ANN201
        raise NotImplementedError("a subclass sets `backend = backend_fixture('sql')` (summit.testing.backends)")

    @pytest.fixture
    async def db(self, backend):  # noqa: ANN001, ANN201
        """A fresh database of the adapter under test (a subclass may provide its own instead)."""
        db = backend.open("sql")
        yield db
        await db.close()

    @pytest.fixture
    async def tables(self, db: Database):
        async with db.write() as conn:
            await conn.run_sync(metadata.create_all)
        yield
        async with db.write() as conn:
            await conn.run_sync(metadata.drop_all)

    # transactions

    async def test_write_commits(self, db: Database, tables: None) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(items).values(id=1, name="first"))
            await conn.execute(sa.insert(items).values(id=2, name="second"))
        assert await _names(db) == ["first", "second"]

    async def test_an_exception_in_write_rolls_back(self, db: Database, tables: None) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(items).values(id=1, name="kept"))
        with pytest.raises(Boom):
            async with db.write() as conn:
                await conn.execute(sa.insert(items).values(id=2, name="rolled back"))
                await conn.execute(sa.update(items).where(items.c.id == 1).values(name="changed"))
                raise Boom
        assert await _names(db) == ["kept"]
        async with db.write() as conn:  # the database is usable afterwards
            await conn.execute(sa.insert(items).values(id=3, name="after"))
        assert await _names(db) == ["kept", "after"]

    async def test_read_sees_committed_writes_only(self, db: Database, tables: None) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(items).values(id=1, name="committed"))
            assert await _names(db) == []  # not yet committed: invisible to another connection
        assert await _names(db) == ["committed"]
        async with db.read(after_write=True) as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(items))).scalar_one() == 1

    async def test_unique_violation_raises_integrity_error(self, db: Database, tables: None) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(items).values(id=1, name="taken"))
        with pytest.raises(IntegrityError) as caught:
            async with db.write() as conn:
                await conn.execute(sa.insert(items).values(id=2, name="other"))
                await conn.execute(sa.insert(items).values(id=3, name="taken"))
        assert isinstance(caught.value, DatabaseError)
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await conn.execute(sa.insert(items).values(id=1, name="same id"))
        assert await _names(db) == ["taken"]

    async def test_concurrent_read_modify_write_loses_no_update(self, db: Database, tables: None) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(counters).values(name="c", value=0))
        query = sa.select(counters.c.value).where(counters.c.name == "c").with_for_update()

        async def bump(times: int) -> None:
            for _ in range(times):
                async with db.write() as conn:
                    value = (await conn.execute(query)).scalar_one()
                    await asyncio.sleep(0)  # let the other writers run in between
                    await conn.execute(sa.update(counters).where(counters.c.name == "c").values(value=value + 1))

        await asyncio.gather(*(bump(15) for _ in range(8)))
        async with db.read(after_write=True) as conn:
            assert (await conn.execute(sa.select(counters.c.value))).scalar_one() == 8 * 15

    async def test_results_are_fetched_before_the_block_ends(self, db: Database, tables: None) -> None:
        async with db.write() as conn:
            await conn.execute(sa.insert(items), [{"id": n, "name": f"n{n}"} for n in range(1, 6)])
        async with db.read(after_write=True) as conn:
            result = await conn.execute(sa.select(items.c.name).order_by(items.c.id))
            assert await conn.scalar(sa.select(sa.func.count()).select_from(items)) == 5
        assert result.scalars().all() == [f"n{n}" for n in range(1, 6)]  # read after the block ended

    async def test_a_read_block_refuses_to_write(self, db: Database, tables: None) -> None:
        with pytest.raises(DatabaseError):
            async with db.read() as conn:
                await conn.execute(sa.insert(items).values(id=1, name="sneaked in"))
        assert await _names(db) == []
        async with db.write() as conn:  # a refused write leaves the database usable
            await conn.execute(sa.insert(items).values(id=1, name="written"))
        assert await _names(db) == ["written"]

    async def test_a_long_read_lets_the_event_loop_run(self, db: Database) -> None:
        """A read that takes long never holds the loop: other coroutines keep running meanwhile,
        and the read still gives the right answer."""
        rows = 3_000_000
        count = sa.text(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT count(*) FROM c"
        )
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.005)
                ticks += 1

        async def long_read() -> tuple[int, int]:
            async with db.read() as conn:
                value = await conn.scalar(count, {"n": rows})
            done.set()
            return value, ticks

        running = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # the ticker starts first
        value, ticks_meanwhile = await long_read()
        await running
        assert value == rows
        assert ticks_meanwhile >= 3, "the event loop stood still while the read ran"

    async def test_writers_wait_for_each_other_without_holding_the_loop(self, db: Database, tables: None) -> None:
        """While one write block is open (even across awaits), the loop keeps serving reads, and a
        second writer either waits its turn (an engine with one writer at a time) or proceeds."""
        order: list[str] = []
        first_open = asyncio.Event()

        async def first() -> None:
            async with db.write() as conn:
                await conn.execute(sa.insert(items).values(id=1, name="first"))
                first_open.set()
                for _ in range(5):
                    await asyncio.sleep(0.01)
                    async with db.read() as reader:  # reads proceed while the write is open
                        order.append(f"read {await reader.scalar(sa.select(sa.func.count()).select_from(items))}")
                order.append("first commits")

        async def second() -> None:
            await first_open.wait()
            async with db.write() as conn:
                order.append("second begins")
                await conn.execute(sa.insert(items).values(id=2, name="second"))

        await asyncio.gather(first(), second())
        if db.features.concurrent_writers:  # the second writer proceeds beside the first (PostgreSQL)
            assert order.index("second begins") < order.index("first commits")
            assert len([entry for entry in order if entry.startswith("read")]) == 5
        else:  # one writer at a time (SQLite): the second begins once the first has committed
            assert order == ["read 0"] * 5 + ["first commits", "second begins"]
        assert await _names(db) == ["first", "second"]

    # identifiers

    @pytest.mark.parametrize("shard", [0, 1, 4095, LOGICAL_SHARDS - 1])
    async def test_next_id_is_on_the_requested_shard(self, db: Database, shard: int) -> None:
        before = time.time_ns() // 1_000_000
        async with db.write() as conn:
            minted = [await db.next_id(conn, shard) for _ in range(5)]
        after = time.time_ns() // 1_000_000
        assert len(set(minted)) == 5
        for value in minted:
            parts = parse_id(value)
            assert parts.shard == shard
            assert before <= parts.ms + EPOCH_MS <= after
            assert 0 < value < 1 << 63

    async def test_next_id_refuses_a_shard_out_of_range(self, db: Database) -> None:
        for shard in (-1, LOGICAL_SHARDS):
            with pytest.raises(ValueError):
                async with db.write() as conn:
                    await db.next_id(conn, shard)

    async def test_ids_increase_with_time(self, db: Database) -> None:
        minted = []
        for shard in (5, 0, 8000, 5):
            async with db.write() as conn:
                minted.append(await db.next_id(conn, shard))
            await asyncio.sleep(0.003)  # the next ID gets a later millisecond
        assert minted == sorted(minted)
        assert len(set(minted)) == len(minted)

    async def test_next_id_is_unique_across_concurrent_writers(self, db: Database) -> None:
        async def writer(shard: int) -> list[int]:
            minted = []
            for _ in range(20):
                async with db.write() as conn:
                    minted.append(await db.next_id(conn, shard))
            return minted

        shards = [n * 811 % LOGICAL_SHARDS for n in range(10)]
        results = await asyncio.gather(*(writer(shard) for shard in shards))
        every = [value for minted in results for value in minted]
        assert len(set(every)) == 10 * 20
        for shard, minted in zip(shards, results):
            assert {parse_id(value).shard for value in minted} == {shard}
            times = [parse_id(value).ms for value in minted]
            assert times == sorted(times)  # one writer's IDs never go back in time

    # the rest

    async def test_ping(self, db: Database) -> None:
        await db.ping()

    async def test_features(self, db: Database) -> None:
        assert isinstance(db.features.dialect, str) and db.features.dialect
        assert isinstance(db.sync_url, str) and db.sync_url

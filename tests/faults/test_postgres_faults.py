"""Faults in the data tier, on real processes: a stage of its own (primary, two replicas, a
PgBouncer in front of each), things killed or paused under a bounded load, and what the sql port
and the app make of it. Every load is bounded in count and time; everything runs on loopback."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from summit.blueprint import load_blueprint
from summit.ports.sql import DatabaseUnavailable, track_writes, untrack
from summit.testing.engines import PostgresStage, running_postgres
from summit.wiring import open_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

rows = sa.Table("fault_rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Integer))


@pytest.fixture(scope="module")
def stage() -> Iterator[PostgresStage]:
    with running_postgres(replicas=2) as running:
        yield running


@pytest.fixture
async def db(stage: PostgresStage) -> AsyncIterator:
    name = stage.create_database("fault")
    database = open_port("sql", stage.url(name, poll_ms=50, replica_timeout_ms=1000))
    async with database.write() as conn:
        await conn.run_sync(rows.metadata.create_all)
        await conn.execute(sa.insert(rows), [{"id": i, "v": i} for i in range(100)])
    yield database
    await database.close()
    stage.drop_database(name)


async def _wait_for(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(0.05)


async def _read_load(db, seconds: float, readers: int = 8, max_reads: int = 20_000) -> tuple[int, list[BaseException], set[str]]:  # noqa: ANN001
    """``readers`` tasks reading for ``seconds`` (at most ``max_reads`` in all): reads done, failures, servers seen."""
    done, failures, servers = 0, [], set()
    deadline = time.monotonic() + seconds

    async def reader() -> None:
        nonlocal done
        while time.monotonic() < deadline and done < max_reads:
            try:
                async with db.read() as conn:
                    assert (await conn.execute(sa.select(sa.func.count()).select_from(rows))).scalar_one() == 100
                    servers.add(str(await conn.scalar(sa.text("SELECT inet_server_port()"))))
                done += 1
            except Exception as error:  # noqa: BLE001  (counted: the assertion is that there are none)
                failures.append(error)
            await asyncio.sleep(0.002)

    await asyncio.gather(*(reader() for _ in range(readers)))
    return done, failures, servers


async def test_killing_a_replica_under_read_load_fails_no_read_and_it_rejoins(stage: PostgresStage, db) -> None:  # noqa: ANN001
    await db.monitor.first_poll()
    await _wait_for(lambda: all(r.healthy for r in db.monitor.replicas), 10, "both replicas in rotation")
    victim = stage.unit("postgres-replica-1")

    async def kill_soon() -> None:
        await asyncio.sleep(1.0)
        victim.process.kill(signal.SIGKILL)

    killer = asyncio.create_task(kill_soon())
    done, failures, servers = await _read_load(db, seconds=3.0)
    await killer
    assert failures == [], f"{len(failures)} of {done + len(failures)} reads failed: {failures[:3]}"
    assert done > 100 and len(servers) >= 2
    assert not db.monitor.replicas[0].healthy  # out of rotation while it is down
    await asyncio.to_thread(stage.restart, "postgres-replica-1")
    await _wait_for(lambda: db.monitor.replicas[0].healthy, 20, "the restarted replica rejoining the rotation")


async def test_pausing_a_replica_moves_reads_away_and_read_your_writes_holds(stage: PostgresStage, db) -> None:  # noqa: ANN001
    await db.monitor.first_poll()
    await _wait_for(lambda: all(r.healthy for r in db.monitor.replicas), 20, "both replicas in rotation")
    stage.freeze("postgres-replica-2")  # it neither answers nor replays
    try:
        await _wait_for(lambda: not db.monitor.replicas[1].healthy, 5, "the paused replica leaving the rotation")
        position, token = track_writes()
        try:
            for n in range(20):  # each write is read back at once, whatever the replicas do
                async with db.write() as conn:
                    await conn.execute(sa.update(rows).where(rows.c.id == 0).values(v=1000 + n))
                async with db.read() as conn:
                    assert (await conn.execute(sa.select(rows.c.v).where(rows.c.id == 0))).scalar_one() == 1000 + n
        finally:
            untrack(token)
        started = time.monotonic()
        done, failures, _ = await _read_load(db, seconds=1.0, readers=4)
        assert failures == [] and done > 20
        assert time.monotonic() - started < 5  # no read waited on the frozen replica
    finally:
        stage.freeze("postgres-replica-2", frozen=False)
    await _wait_for(lambda: db.monitor.replicas[1].healthy, 20, "the resumed replica rejoining the rotation")


async def test_no_acknowledged_write_is_lost_across_a_clean_restart_of_the_primary(stage: PostgresStage, db) -> None:  # noqa: ANN001
    acknowledged: list[int] = []
    failed = 0
    restarted = asyncio.Event()

    async def writer(first: int) -> None:
        """Writes until 50 writes after the restart (at most 5,000: a fast machine must not finish
        before the restart begins, a slow one must not write forever)."""
        nonlocal failed
        after = 0
        for n in range(first, first + 5000):
            if restarted.is_set():
                after += 1
                if after > 50:
                    return
            try:
                async with db.write() as conn:
                    await conn.execute(sa.insert(rows).values(id=n, v=n))
                acknowledged.append(n)
            except (DatabaseUnavailable, Exception):  # noqa: BLE001
                failed += 1
                await asyncio.sleep(0.05)

    async def restart_primary() -> None:
        await asyncio.sleep(0.5)
        primary = stage.unit("postgres-primary")
        try:
            await asyncio.to_thread(primary.process.stop)  # SIGINT: a clean, fast shutdown
            await asyncio.to_thread(stage.restart, "postgres-primary")
        finally:
            restarted.set()

    await asyncio.wait_for(asyncio.gather(writer(10_000), writer(20_000), restart_primary()), 120)
    assert failed > 0, "the restart came after every write: the test proved nothing"
    async with db.read(after_write=True) as conn:
        stored = set((await conn.execute(sa.select(rows.c.id).where(rows.c.id >= 10_000))).scalars())
    assert set(acknowledged) <= stored, f"acknowledged but lost: {sorted(set(acknowledged) - stored)[:10]}"


@pytest.fixture
async def app_on_stage(stage: PostgresStage, tmp_path) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    from photos.app import create_app

    name = stage.create_database("app")
    url = stage.url(name)
    blueprint = load_blueprint(environ={}, overrides={
        "data_dir": str(tmp_path / "data"), "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024},
        "ports": {"sql": url, "queue": url + "&max_receives=5"},
    })
    application = create_app(blueprint)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as client:
            yield client
    stage.drop_database(name)


@pytest.mark.parametrize("victim", ["pgbouncer-primary", "postgres-primary"])
async def test_losing_the_primary_or_its_pooler_gives_503_and_the_app_recovers(stage: PostgresStage, app_on_stage, victim: str) -> None:  # noqa: ANN001
    client = app_on_stage
    sign_up = {"username": "before", "email": "before@example.com", "password": "correct horse 1"}
    assert (await client.post("/api/v1/accounts", json=sign_up)).status_code == 201
    unit = stage.unit(victim)
    unit.process.kill(signal.SIGKILL)
    await asyncio.to_thread(unit.process.stop, 5)  # reap it and whatever its group left
    try:
        r = await client.post("/api/v1/accounts", json={**sign_up, "username": "during", "email": "during@example.com"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable" and "retry" in r.json()["error"]["message"]
        assert r.headers["retry-after"]
        assert (await client.get("/healthz")).status_code == 503
    finally:  # the supervisor notices the dead process and starts it again after its backoff
        deadline = time.monotonic() + 30
        while stage.unit(victim).state != "running" or not stage.unit(victim).process.running():
            assert time.monotonic() < deadline, f"the supervisor did not restart {victim}"
            await stage.supervisor.check_once()
            await asyncio.sleep(0.2)
        assert stage.unit(victim).restarts >= 1
    deadline = time.monotonic() + 30
    while True:  # the app recovers by itself: no restart of the app, pools reconnect
        r = await client.post("/api/v1/accounts", json={**sign_up, "username": "after", "email": "after@example.com"})
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        assert r.status_code == 503, r.text
        await asyncio.sleep(0.5)
    assert r.status_code == 201, r.text
    assert (await client.get("/healthz")).status_code == 200


async def test_a_read_on_a_replica_that_freezes_mid_flight_runs_again_elsewhere(stage: PostgresStage) -> None:
    """The monitor polls rarely here, so the reads themselves meet the frozen replicas: each is cut
    off at replica_timeout_ms and answered by another server, correctly."""
    name = stage.create_database("frozen")
    db = open_port("sql", stage.url(name, poll_ms=60_000, replica_timeout_ms=500))
    try:
        async with db.write() as conn:
            await conn.run_sync(rows.metadata.create_all)
            await conn.execute(sa.insert(rows), [{"id": i, "v": i} for i in range(10)])
        await asyncio.sleep(0.5)  # the replicas replay it before the one poll the test allows
        await db.monitor.first_poll()
        assert all(r.healthy for r in db.monitor.replicas)
        for _ in range(6):  # connections to both replicas are open and pooled, as in a running stage
            async with db.read() as conn:
                await conn.execute(sa.select(rows.c.id).limit(1))
        for replica in stage.replicas():
            stage.freeze(replica)
        try:
            for _ in range(4):
                started = time.monotonic()
                async with db.read() as conn:
                    assert (await conn.execute(sa.select(sa.func.count()).select_from(rows))).scalar_one() == 10
                assert time.monotonic() - started < 3.0
            assert not any(r.healthy for r in db.monitor.replicas)  # both met, both out of rotation
        finally:
            for replica in stage.replicas():
                stage.freeze(replica, frozen=False)
    finally:
        await db.close()
        stage.drop_database(name)


@pytest.fixture(scope="module")
def sync_stage() -> Iterator[PostgresStage]:
    with running_postgres(replicas=1, synchronous=True) as running:
        yield running


async def test_a_commit_waiting_for_a_frozen_synchronous_replica_is_reported_unknown_not_hung(sync_stage: PostgresStage) -> None:
    """With synchronous replication, a commit waits for a replica: when none answers, the commit is
    cut off at commit_timeout_ms and reported as CommitUnknown (it may have been applied: it was,
    on the primary), and the next writes and reads go on once the replica is back."""
    from summit.ports.sql import CommitUnknown

    name = sync_stage.create_database("sync")
    url = sync_stage.url(name, commit_timeout_ms=1000)
    assert "synchronous=on" in url
    db = open_port("sql", url)
    try:
        async with db.write() as conn:
            await conn.run_sync(rows.metadata.create_all)
        sync_stage.freeze("postgres-replica-1")
        try:
            started = time.monotonic()
            with pytest.raises(CommitUnknown, match="may or may not have been applied"):
                async with db.write() as conn:
                    await conn.execute(sa.insert(rows).values(id=1, v=1))
            assert time.monotonic() - started < 5
        finally:
            sync_stage.freeze("postgres-replica-1", frozen=False)
        async with db.write() as conn:  # the replica is back: commits are confirmed again
            await conn.execute(sa.insert(rows).values(id=2, v=2))
        async with db.read(after_write=True) as conn:
            assert set((await conn.execute(sa.select(rows.c.id))).scalars()) == {1, 2}  # the unknown one was applied
    finally:
        await db.close()

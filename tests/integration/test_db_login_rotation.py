"""Rotating the app's PostgreSQL login live, on real engines: a stage of its own (a primary and a
replica, a PgBouncer in front of each) whose app login is the secret ``db/app`` (two users that
take turns, as ``summit up`` makes them). Rotations run while a bounded load of sql-port blocks,
queue calls and fresh connections runs (bounded in count and time, loopback only): no call fails,
new connections log in as the new user after finish, a second rotation switches back, and a
rotation whose test fails is rolled back with the old login still working."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from summit.engines.postgres import APP_USERS
from summit.ops.dblogin import SECRET, StageLogin
from summit.ports.sql import Database
from summit.security.secrets import Rotation, RotationFailed, SecretsManager
from summit.security.secrets.postgres import PostgresAlternatingUsers
from summit.testing.engines import PostgresStage, running_postgres
from summit.wiring import open_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

rows = sa.Table("rotation_rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("who", sa.Text, nullable=False))  # fmt: skip
WHO = sa.text("SELECT session_user")
MAX_CALLS = 4000  # the load's bound in calls, besides its bound in time
MAX_SECONDS = 60.0


@pytest.fixture(scope="module")
def stage() -> Iterator[PostgresStage]:
    with running_postgres(replicas=1, app_login=True) as running:
        yield running


@pytest.fixture
def secrets(stage: PostgresStage) -> SecretsManager:
    return SecretsManager.for_data_dir(stage.stage.layout.data_dir)


@pytest.fixture
async def db(stage: PostgresStage) -> AsyncIterator[Database]:
    database = open_port("sql", stage.url(pool_size=4))
    async with database.write() as conn:
        await conn.run_sync(rows.metadata.create_all)
    yield database
    async with database.write() as conn:
        await conn.run_sync(rows.metadata.drop_all)
    await database.close()


def current_user(secrets: SecretsManager) -> str:
    return secrets.get_secret_value(SECRET).json()["username"]


async def fresh_login(stage: PostgresStage) -> str:
    """The user a brand-new sql port logs in as (its first connection)."""
    database = open_port("sql", stage.url(pool_size=1))
    try:
        async with database.write() as conn:
            return (await conn.execute(WHO)).scalar_one()
    finally:
        await database.close()


@dataclass
class Load:
    """Bounded load: write blocks, read blocks, queue calls and fresh connections, until stopped."""

    stage: PostgresStage
    db: Database
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    written: int = 0
    users: Counter = field(default_factory=Counter)  # session users seen by the write blocks
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def going(self, deadline: float) -> bool:
        return not self.stop.is_set() and self.calls < MAX_CALLS and time.monotonic() < deadline

    async def _call(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        self.calls += 1
        try:
            await work()
        except Exception as error:  # noqa: BLE001  (every failure is counted, and the test fails on any)
            self.failures.append(f"{what}: {type(error).__name__}: {error}")

    async def writer(self, deadline: float) -> None:
        async def write() -> None:
            async with self.db.write() as conn:
                who = (await conn.execute(WHO)).scalar_one()
                await conn.execute(sa.insert(rows).values(who=who))
            self.users[who] += 1
            self.written += 1

        while self.going(deadline):
            await self._call("write", write)
            await asyncio.sleep(0.002)

    async def reader(self, deadline: float) -> None:
        async def read() -> None:
            async with self.db.read() as conn:
                (await conn.execute(sa.select(sa.func.count()).select_from(rows))).scalar_one()

        while self.going(deadline):
            await self._call("read", read)
            await asyncio.sleep(0.002)

    async def queue(self, deadline: float) -> None:
        queue = open_port("queue", self.stage.url())

        async def round_trip() -> None:
            await queue.send("rotation", b"x")
            for message in await queue.receive("rotation", max_messages=10):
                await queue.ack("rotation", message.receipt)

        try:
            while self.going(deadline):
                await self._call("queue", round_trip)
                await asyncio.sleep(0.005)
        finally:
            await queue.close()

    async def churn(self, deadline: float) -> None:
        """A new sql port every few milliseconds: logins at every moment of the rotations."""
        async def connect() -> None:
            await fresh_login(self.stage)

        while self.going(deadline):
            await self._call("connect", connect)
            await asyncio.sleep(0.01)

    async def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        await asyncio.gather(*(self.writer(deadline) for _ in range(3)), self.reader(deadline), self.queue(deadline), self.churn(deadline))


async def under_load(stage: PostgresStage, db: Database, work: Callable[[], object]) -> tuple[Load, object]:
    """Run ``work`` (blocking: a rotation) in a thread while the load runs; stop the load after it."""
    load = Load(stage, db)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(0.3)  # the load is going before the rotation starts
    try:
        outcome = await asyncio.to_thread(work)
    except Exception as error:  # noqa: BLE001  (the caller checks what it expects)
        outcome = error
    await asyncio.sleep(1.5)  # and keeps going after it: the pool retires the old login's connections
    load.stop.set()
    await running
    return load, outcome


async def test_rotations_under_load_fail_nothing_and_switch_users(stage: PostgresStage, secrets: SecretsManager, db: Database) -> None:
    first = current_user(secrets)
    assert first in APP_USERS and await fresh_login(stage) == first
    other = APP_USERS[1] if first == APP_USERS[0] else APP_USERS[0]

    load, result = await under_load(stage, db, lambda: secrets.rotate(SECRET))
    assert not isinstance(result, Exception), result
    assert load.failures == [], load.failures[:5]
    assert load.calls > 100, load.calls  # the load really ran across the rotation
    assert current_user(secrets) == other
    assert await fresh_login(stage) == other  # new connections: the new user
    assert load.users[other] > 0  # the pool moved over once its old connections came back
    async with db.write() as conn:  # a connection of the old login in use now would be a leak
        assert (await conn.execute(WHO)).scalar_one() == other
        assert (await conn.execute(sa.select(sa.func.count()).select_from(rows))).scalar_one() == load.written

    second, result = await under_load(stage, db, lambda: secrets.rotate(SECRET))
    assert not isinstance(result, Exception), result
    assert second.failures == [], second.failures[:5]
    assert current_user(secrets) == first and await fresh_login(stage) == first  # switched back
    # a table made after the switches (as the other user) serves both: it belongs to the group
    async with db.write() as conn:
        await conn.execute(sa.text("CREATE TABLE made_after_switch (id int)"))
        owner = (await conn.execute(sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'made_after_switch'"))).scalar_one()
        await conn.execute(sa.text("DROP TABLE made_after_switch"))
    assert owner == "summit"


class Forgetful(StageLogin):
    """set_secret that changes the password in PostgreSQL but never tells PgBouncer: the login
    through PgBouncer at test_secret fails, as it would with a pooler that missed the reload."""

    def set_secret(self, rotation: Rotation) -> None:
        PostgresAlternatingUsers.set_secret(self, rotation)


async def test_a_failed_rotation_rolls_back_under_load(stage: PostgresStage, secrets: SecretsManager, db: Database) -> None:
    before = secrets.get_secret_value(SECRET)
    delivered = json.loads(stage.stage.layout.app_login.read_text())["AWSCURRENT"]["version_id"]
    assert delivered == before.version_id
    strategy = Forgetful(str(stage.stage.layout.data_dir))

    load, outcome = await under_load(stage, db, lambda: secrets.rotate(SECRET, strategy))
    assert isinstance(outcome, RotationFailed), outcome
    assert outcome.step == "test_secret" and outcome.undo_error is None, outcome
    assert "authentication failed" in str(outcome)  # PgBouncer: "SASL authentication failed"
    assert load.failures == [], load.failures[:5]
    after = secrets.get_secret_value(SECRET)
    assert after.version_id == before.version_id  # AWSCURRENT did not move
    assert "AWSPENDING" not in {s for v in secrets.describe(SECRET).versions for s in v.stages}
    assert json.loads(stage.stage.layout.app_login.read_text())["AWSCURRENT"]["version_id"] == before.version_id
    doc = before.json()
    assert await fresh_login(stage) == doc["username"]  # the old login still works, through PgBouncer
    with psycopg.connect(host=doc["host"], port=doc["port"], dbname=doc["dbname"], user=doc["username"],
                         password=doc["password"], connect_timeout=5) as conn:  # fmt: skip
        assert conn.execute("SELECT session_user").fetchone()[0] == doc["username"]
    result = secrets.rotate(SECRET)  # and the next rotation goes through
    assert current_user(secrets) != doc["username"] and result.previous_version_id == before.version_id


def test_the_command_rotates_a_running_stage_and_says_what_it_does(stage: PostgresStage, secrets: SecretsManager,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from summit.cli import main
    from summit.cli import secrets as secrets_cli  # noqa: F401  (registers the commands)

    monkeypatch.setattr(main.console, "width", 250)  # the console's width was taken at import
    before = current_user(secrets)
    result = CliRunner().invoke(main.app, ["secrets", "rotate", SECRET, "--data-dir", str(stage.stage.layout.data_dir)],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    for step in ("create_secret", "set_secret", "test_secret", "finish_secret", "reloaded pgbouncer-primary, pgbouncer-replica-1"):
        assert step in result.output, result.output
    assert "password" not in result.output.replace("set the password of", "")  # says what it did, never a value
    assert current_user(secrets) != before

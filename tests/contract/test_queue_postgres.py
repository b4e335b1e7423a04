"""What is particular to the queue port on PostgreSQL: consumers of several instances (as several
processes would have) sharing one table, its URLs, and a server that is down or drops connections
(the queue contract runs on it in ``test_queue.py``)."""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from summit.adapters.postgres.queue import PostgresQueue
from summit.ports.queue import QueueError, QueueStats
from summit.testing.clock import ManualClock
from summit.wiring import open_port

PATIENCE = 10.0  # an upper bound, in real seconds, for what should happen soon


@pytest.mark.postgres
async def test_two_instances_never_receive_the_same_message(postgres_db) -> None:  # noqa: ANN001
    """Each instance has its own connections, so only the database keeps them apart (SKIP LOCKED)."""
    first, second = (PostgresQueue.from_url(postgres_db.url) for _ in range(2))
    try:
        # both create the table at once on a fresh database: the loser of that race carries on
        assert await asyncio.gather(first.stats("jobs"), second.stats("jobs")) == [QueueStats(0, 0, 0)] * 2
        sent = set(await asyncio.gather(*(first.send("jobs", b"%d" % i) for i in range(200))))
        assert len(sent) == 200
        received: dict[PostgresQueue, list[str]] = {first: [], second: []}
        deadline = time.monotonic() + 6 * PATIENCE

        async def consume(queue: PostgresQueue, batch: int) -> None:
            while sum(map(len, received.values())) < 200 and time.monotonic() < deadline:
                for message in await queue.receive("jobs", max_messages=batch, visibility_timeout=300, wait=0.1):
                    received[queue].append(message.id)
                    if int(message.body) % 2:  # ack the odd ones, leave the even ones in flight
                        await first.ack("jobs", message.receipt)

        await asyncio.gather(*(consume(queue, batch) for queue in (first, second) for batch in (1, 3, 5)))
        counts = collections.Counter(received[first] + received[second])
        assert [id_ for id_, n in counts.items() if n > 1] == []
        assert set(counts) == sent
        assert received[first] and received[second], "both instances should have taken part"
        assert await second.stats("jobs") == QueueStats(visible=0, in_flight=100, delayed=0)
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_stored_times_are_unix_seconds_of_the_queue_clock(postgres_db) -> None:  # noqa: ANN001
    """Instances in different processes compare the stored times: the default clock is the wall clock."""
    assert PostgresQueue.from_url(postgres_db.url).clock is time.time
    an_hour_ago = ManualClock(time.time() - 3600)
    early = PostgresQueue.from_url(postgres_db.url, clock=an_hour_ago)
    wall = PostgresQueue.from_url(postgres_db.url)
    try:
        await early.send("jobs", b"in a minute \x00\xff", delay=60)
        assert await early.receive("jobs") == []  # not yet, on its clock
        [message] = await wall.receive("jobs")  # on the wall clock, that minute passed long ago
        assert message.body == b"in a minute \x00\xff"
        assert message.sent_at == pytest.approx(an_hour_ago())
    finally:
        await early.close()
        await wall.close()


@pytest.mark.postgres
async def test_wiring_opens_the_stage_url_and_ignores_the_sql_options(postgres_db) -> None:  # noqa: ANN001
    url = postgres_db.url + "&pool_size=3&max_lag_ms=500&poll_ms=50&synchronous=off&commit_timeout_ms=100&max_receives=7"
    assert "replica=" in url and "prepared_statements=off" in url
    queue = open_port("queue", url)
    try:
        assert isinstance(queue, PostgresQueue)
        assert queue.max_receives == 7
        assert not queue.prepared_statements
        assert "passfile" in queue.conninfo
        assert not {"replica", "pool_size", "max_lag_ms", "synchronous", "prepared_statements"} & set(queue.conninfo)
        await queue.send("jobs", b"x")
        assert [conn.prepare_threshold for conn in queue._idle] == [None]  # PgBouncer keeps no prepared statements
    finally:
        await queue.close()


def test_url_options() -> None:
    queue = PostgresQueue.from_url("postgres://app:s%40cret@db.example:6432/summit?sslmode=require&connect_timeout=2")
    assert queue.max_receives == 5 and queue.prepared_statements
    assert queue.conninfo == {
        "host": "db.example", "port": 6432, "dbname": "summit", "user": "app", "password": "s@cret",
        "sslmode": "require", "connect_timeout": "2",
    }
    assert "s@cret" not in repr(queue)
    defaults = PostgresQueue.from_url("postgresql://db.example/summit?replica=db2:5432&replica_timeout_ms=9&max_receives=1")
    assert defaults.max_receives == 1
    assert defaults.conninfo == {"host": "db.example", "port": 5432, "dbname": "summit", "connect_timeout": "5"}


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sqlite:///queue.db", "postgresql://"),
        ("postgresql://db.example", "names a host and a database"),
        ("postgresql:///summit", "names a host and a database"),
        ("postgresql://db.example/summit?max_receives=0", "max_receives must be an integer >= 1"),
        ("postgresql://db.example/summit?max_receives=many", "max_receives must be an integer"),
        ("postgresql://db.example/summit?max_receives=", "max_receives must be an integer"),
        ("postgresql://db.example/summit?prepared_statements=maybe", "prepared_statements"),
    ],
)
def test_bad_urls_are_rejected(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PostgresQueue.from_url(url)


def test_the_clock_is_a_callable() -> None:
    with pytest.raises(TypeError, match="clock"):
        PostgresQueue({"host": "db.example", "port": 5432, "dbname": "summit"}, clock=1_767_225_600.0)  # type: ignore[arg-type]


async def test_an_unreachable_server_is_a_queue_error_not_a_hang() -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    queue = PostgresQueue.from_url(f"postgresql://summit@127.0.0.1:{port}/summit?connect_timeout=2&max_receives=3")
    try:
        for call in (lambda: queue.send("jobs", b"x"), lambda: queue.receive("jobs", wait=0.5), lambda: queue.stats("jobs")):
            start = time.monotonic()
            with pytest.raises(QueueError, match="127.0.0.1"):
                await call()
            assert time.monotonic() - start < PATIENCE
    finally:
        await queue.close()


@pytest.mark.postgres
async def test_connections_the_server_dropped_are_replaced(postgres_db) -> None:  # noqa: ANN001
    """Straight to the primary (past PgBouncer): idle pooled connections that the server closed are
    replaced before anything is sent on them, so the caller sees no error."""
    parts = urlsplit(postgres_db.url)
    primary = postgres_db.stage.primary
    url = urlunsplit(parts._replace(netloc=f"{parts.username}@{primary.host}:{primary.port}"))
    queue = PostgresQueue.from_url(url)
    try:
        await asyncio.gather(*(queue.send("jobs", b"%d" % i) for i in range(4)))  # several pooled connections
        assert len(queue._idle) > 1
        with postgres_db.stage.superuser() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (postgres_db.name,),
            )
        await asyncio.sleep(0.1)
        assert (await queue.stats("jobs")).visible == 4
        assert len(await queue.receive("jobs", max_messages=10)) == 4
    finally:
        await queue.close()


@pytest.mark.postgres
async def test_a_closed_queue_refuses_calls(postgres_db) -> None:  # noqa: ANN001
    queue = PostgresQueue.from_url(postgres_db.url)
    await queue.send("jobs", b"x")
    await queue.close()
    assert queue._idle == []
    with pytest.raises(QueueError, match="closed"):
        await queue.send("jobs", b"x")
    with pytest.raises(QueueError, match="closed"):
        await queue.receive("jobs")

"""The worker runner, on a real SQLite queue."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from summit.adapters.sqlite.queue import SQLiteQueue
from summit.ports.queue import QueueError, QueueStats
from summit.workers import Worker, default_retry_delay

EMPTY = QueueStats(visible=0, in_flight=0, delayed=0)


@pytest.fixture
async def queue(tmp_path: Path):
    queue = SQLiteQueue.from_url(f"sqlite:///{tmp_path}/queue.db?max_receives=3")
    yield queue
    await queue.close()


def make_worker(queue: SQLiteQueue, **options) -> Worker:
    options.setdefault("poll_interval", 0.05)
    options.setdefault("retry_delay", lambda receive_count: 0)
    return Worker(queue, **options)


async def test_handlers_run_and_ack(queue: SQLiteQueue) -> None:
    worker = make_worker(queue)
    seen: dict[str, list[bytes]] = {"mail": [], "thumbs": []}

    @worker.handle("mail")
    async def send_mail(body: bytes) -> None:
        seen["mail"].append(body)

    async def make_thumbnail(body: bytes) -> None:
        seen["thumbs"].append(body)

    worker.add_handler("thumbs", make_thumbnail)
    for i in range(10):
        await queue.send("mail", b"mail %d" % i)
        await queue.send("thumbs", b"thumb %d" % i)
    await worker.start()
    try:
        await worker.drain(timeout=30)
    finally:
        assert await worker.stop(timeout=10)
    assert sorted(seen["mail"]) == sorted(b"mail %d" % i for i in range(10))
    assert sorted(seen["thumbs"]) == sorted(b"thumb %d" % i for i in range(10))
    assert (worker.processed, worker.failed) == (20, 0)
    assert await queue.stats("mail") == await queue.stats("thumbs") == EMPTY


async def test_a_failing_handler_is_retried_then_dead_lettered(
    queue: SQLiteQueue, caplog: pytest.LogCaptureFixture
) -> None:
    delays_asked: list[int] = []

    def retry_delay(receive_count: int) -> float:
        delays_asked.append(receive_count)
        return 0.05

    worker = make_worker(queue, retry_delay=retry_delay)
    attempts: list[bytes] = []

    @worker.handle("jobs")
    async def handler(body: bytes) -> None:
        attempts.append(body)
        if body == b"poison" or attempts.count(body) == 1:  # "flaky" fails once, "poison" always
            raise RuntimeError(f"cannot handle {body!r}")

    await queue.send("jobs", b"poison")
    await queue.send("jobs", b"flaky")
    async with worker:
        await worker.drain(timeout=30)
    assert attempts.count(b"poison") == 3 and attempts.count(b"flaky") == 2
    assert (worker.processed, worker.failed) == (1, 4)
    assert sorted(delays_asked) == [1, 1, 2, 3]
    assert await queue.stats("jobs") == EMPTY
    [dead] = await queue.receive("jobs.dead")
    assert dead.body == b"poison"
    failures = [r for r in caplog.records if r.name == "summit.workers" and r.levelno == logging.ERROR]
    assert len(failures) == 4
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures)


async def test_stop_lets_running_handlers_finish(queue: SQLiteQueue) -> None:
    worker = make_worker(queue)
    started, finished = asyncio.Event(), asyncio.Event()

    @worker.handle("jobs")
    async def handler(body: bytes) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    await queue.send("jobs", b"x")
    await worker.start()
    await asyncio.wait_for(started.wait(), 30)
    assert await worker.stop(timeout=30)
    assert finished.is_set()
    assert worker.processed == 1
    assert await queue.stats("jobs") == EMPTY
    assert not worker.running
    await queue.send("jobs", b"after stop")  # nobody consumes it any more
    await asyncio.sleep(0.2)
    assert await queue.stats("jobs") == QueueStats(visible=1, in_flight=0, delayed=0)


async def test_stop_cancels_handlers_that_overrun_the_timeout(queue: SQLiteQueue) -> None:
    worker = make_worker(queue, visibility_timeout=60)
    started = asyncio.Event()

    @worker.handle("jobs")
    async def handler(body: bytes) -> None:
        started.set()
        await asyncio.sleep(60)

    await queue.send("jobs", b"x")
    await worker.start()
    await asyncio.wait_for(started.wait(), 30)
    assert not await worker.stop(timeout=0.1)
    assert (worker.processed, worker.failed) == (0, 0)
    # not acked: the message comes back once its visibility timeout passes
    assert await queue.stats("jobs") == QueueStats(visible=0, in_flight=1, delayed=0)


async def test_handlers_run_concurrently(queue: SQLiteQueue) -> None:
    worker = make_worker(queue, concurrency=3)
    active, peak = 0, 0

    @worker.handle("jobs")
    async def handler(body: bytes) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.3)
        active -= 1

    for i in range(6):
        await queue.send("jobs", b"%d" % i)
    async with worker:
        await worker.drain(timeout=30)
    assert worker.processed == 6
    assert 2 <= peak <= 3


async def test_drain_times_out_when_nothing_consumes(queue: SQLiteQueue) -> None:
    worker = make_worker(queue)

    @worker.handle("jobs")
    async def handler(body: bytes) -> None:
        pass

    await queue.send("jobs", b"x")
    with pytest.raises(TimeoutError):
        await worker.drain(timeout=0.2)


async def test_registration_errors(queue: SQLiteQueue) -> None:
    worker = make_worker(queue)
    with pytest.raises(RuntimeError, match="no handlers"):
        await worker.start()

    def not_async(body: bytes) -> None:
        pass

    with pytest.raises(TypeError, match="async"):
        worker.add_handler("jobs", not_async)  # type: ignore[arg-type]
    with pytest.raises(QueueError, match="name"):
        worker.add_handler("bad name", handler := _noop)
    worker.add_handler("jobs", handler)
    with pytest.raises(ValueError, match="already has a handler"):
        worker.add_handler("jobs", _noop)
    await worker.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await worker.start()
        with pytest.raises(RuntimeError, match="before the worker starts"):
            worker.add_handler("other", _noop)
    finally:
        await worker.stop()
    with pytest.raises(ValueError):
        Worker(queue, concurrency=0)


def test_default_retry_delay_backs_off_to_a_minute() -> None:
    assert [default_retry_delay(n) for n in (1, 2, 3, 6, 20)] == [2, 4, 8, 60, 60]


async def _noop(body: bytes) -> None:
    pass

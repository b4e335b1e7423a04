"""What is particular to the SQLite queue: durability, URLs, its clock, and several processes on one
file (the queue contract runs on it in ``test_queue.py``)."""

from __future__ import annotations

import asyncio
import collections
import sys
import textwrap
import time
from pathlib import Path

import pytest

from summit.adapters.sqlite.queue import SQLiteQueue
from summit.ports.queue import QueueError, QueueStats
from summit.testing.clock import ManualClock
from summit.wiring import open_port


async def test_messages_survive_closing_and_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/queue.db"
    queue = SQLiteQueue.from_url(url)
    await queue.send("jobs", b"in flight")
    [in_flight] = await queue.receive("jobs", visibility_timeout=60)
    sent_id = await queue.send("jobs", b"kept \x00\xff")
    await queue.send("jobs", b"later", delay=60)
    await queue.close()

    reopened = SQLiteQueue.from_url(url)
    try:
        assert await reopened.stats("jobs") == QueueStats(visible=1, in_flight=1, delayed=1)
        [kept] = await reopened.receive("jobs", max_messages=10)
        assert (kept.id, kept.body, kept.receive_count) == (sent_id, b"kept \x00\xff", 1)
        await reopened.ack("jobs", in_flight.receipt)  # receipts are durable too
        await reopened.ack("jobs", kept.receipt)
        assert await reopened.stats("jobs") == QueueStats(visible=0, in_flight=0, delayed=1)
    finally:
        await reopened.close()


async def test_stored_times_are_unix_seconds_of_the_queue_clock(tmp_path: Path) -> None:
    """Processes compare the stored times, so the default clock is the wall clock."""
    url = f"sqlite:///{tmp_path}/queue.db"
    assert SQLiteQueue.from_url(url).clock is time.time
    an_hour_ago = ManualClock(time.time() - 3600)
    early = SQLiteQueue.from_url(url, clock=an_hour_ago)
    await early.send("jobs", b"in a minute", delay=60)
    assert await early.receive("jobs") == []  # not yet, on its clock
    await early.close()
    wall = SQLiteQueue.from_url(url)  # on the wall clock, that minute passed long ago
    try:
        [message] = await wall.receive("jobs")
        assert message.body == b"in a minute"
        assert message.sent_at == pytest.approx(an_hour_ago())
    finally:
        await wall.close()


def test_the_clock_is_a_callable() -> None:
    with pytest.raises(TypeError, match="clock"):
        SQLiteQueue(None, clock=1_767_225_600.0)  # type: ignore[arg-type]


async def test_a_closed_queue_refuses_calls(tmp_path: Path) -> None:
    queue = SQLiteQueue.from_url(f"sqlite:///{tmp_path}/queue.db")
    await queue.close()
    with pytest.raises(QueueError, match="closed"):
        await queue.send("jobs", b"x")


async def test_wiring_opens_the_preset_url(tmp_path: Path) -> None:
    queue = open_port("queue", f"sqlite:///{tmp_path}/queue.db?max_receives=5")
    try:
        assert isinstance(queue, SQLiteQueue)
        assert queue.max_receives == 5
        assert queue.path == tmp_path / "queue.db"
        await queue.send("jobs", b"x")
        assert (tmp_path / "queue.db").exists()
    finally:
        await queue.close()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sqlite://relative/queue.db", "three slashes"),
        ("postgresql:///queue", "sqlite:///"),
        ("sqlite:///queue.db?max_receives=0", "max_receives"),
        ("sqlite:///queue.db?max_receives=many", "max_receives must be an integer"),
        ("sqlite:///queue.db?max_receives=", "max_receives must be an integer"),
        ("sqlite:///queue.db?colour=blue", "unknown parameter"),
        ("sqlite:///queue.db?busy_timeout_ms=-1", "busy_timeout_ms"),
    ],
)
def test_bad_urls_are_rejected(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SQLiteQueue.from_url(url)


# A consumer in its own process: says "ready" once connected, waits for the go file, then receives
# (acking every other message) until the queue has nothing visible, printing each message id.
CONSUMER = textwrap.dedent(
    """
    import asyncio, os, sys
    from summit.adapters.sqlite.queue import SQLiteQueue

    async def main(url, go):
        queue = SQLiteQueue.from_url(url)
        await queue.stats("jobs")
        print("ready", flush=True)
        while not os.path.exists(go):
            await asyncio.sleep(0.01)
        while True:
            batch = await queue.receive("jobs", max_messages=3, visibility_timeout=300)
            if not batch:
                break
            for message in batch:
                print(message.id, flush=True)
                if int(message.body) % 2:
                    await queue.ack("jobs", message.receipt)
            await asyncio.sleep(0.005)
        await queue.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_two_processes_never_receive_the_same_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    queue = SQLiteQueue.from_url(url)
    sent = {await queue.send("jobs", b"%d" % i) for i in range(200)}
    go = tmp_path / "go"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CONSUMER, url, str(go), stdout=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line == b"ready\n"
        go.touch()
        outputs = [await asyncio.wait_for(process.communicate(), 60) for process in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert [process.returncode for process in processes] == [0, 0]
    received = [out.decode().split() for out, _ in outputs]
    counts = collections.Counter(received[0] + received[1])
    assert [id_ for id_, n in counts.items() if n > 1] == []
    assert set(counts) == sent
    assert all(received), "both processes should have taken part"
    # the odd ones were acked, the even ones are still in flight
    assert await queue.stats("jobs") == QueueStats(visible=0, in_flight=100, delayed=0)
    await queue.close()

"""The queue port's contract: every Queue adapter passes it (see ``summit.ports.queue``).

    class TestQueue(QueueContract):
        backend = backend_fixture("queue")   # the adapters of summit.testing.backends

The suite opens each adapter from its URL (which sets ``max_receives=3``) on a ``ManualClock``:
visibility timeouts and delays run out when a test advances the clock, so "not yet" and "visible
again" are asserted exactly, on any machine, without sleeping. One test per adapter runs on the
wall clock (a short timeout, bounded), and the long-poll tests wait in real time, as ``wait``
does; no other test depends on how fast the machine is. A subclass may instead provide the
fixtures ``queue`` (a fresh, empty adapter on the ``clock`` fixture) and ``wall_clock_queue``
(one on its default clock) itself, each closed afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time

import pytest

from summit.ports.queue import Queue, QueueError, QueueStats, ReceiptInvalid, dead_letter_queue
from summit.testing.backends import Backend
from summit.testing.clock import ManualClock

MAX_RECEIVES = 3
TIMEOUT = 30.0  # a visibility timeout, on the manual clock
DELAY = 20.0  # a delay, on the manual clock
SHORT = 0.3  # a visibility timeout or wait that the real-time tests wait out
PATIENCE = 10.0  # an upper bound for what should happen "soon" in real time
EMPTY = QueueStats(visible=0, in_flight=0, delayed=0)
BAD_NAMES = ["", "has space", "x" * 76, "jobs\n", "slash/name", "ünïcode", "tab\t", None, 42]


async def receive_one(queue: Queue, name: str = "jobs", **options):
    """The one message that is visible (an adapter may take a moment to deliver it)."""
    options.setdefault("wait", PATIENCE)
    messages = await queue.receive(name, **options)
    assert len(messages) == 1, messages
    return messages[0]


async def assert_nothing_visible(queue: Queue, name: str = "jobs") -> None:
    assert await queue.receive(name) == []


class QueueContract:
    """Tests every Queue adapter passes; subclasses set ``backend`` or provide ``queue``."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError('a subclass sets backend = backend_fixture("queue"), or provides `queue`')

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def queue(self, backend: Backend, clock: ManualClock):
        queue = backend.open("queue", clock=clock)
        yield queue
        await queue.close()

    @pytest.fixture
    async def wall_clock_queue(self, backend: Backend):
        """The same adapter on its default clock, as production builds it."""
        queue = backend.open("queue")
        yield queue
        await queue.close()

    async def test_starts_empty_with_max_receives(self, queue: Queue) -> None:
        assert queue.max_receives == MAX_RECEIVES
        assert await queue.stats("jobs") == EMPTY
        assert await queue.receive("jobs") == []

    @pytest.mark.parametrize(
        "body", [b"", b"hello", bytes(range(256)), b"\x00" * 3, "žluťoučký".encode(), bytes(range(256)) * 1000]
    )
    async def test_send_receive_roundtrip(self, queue: Queue, clock: ManualClock, body: bytes) -> None:
        sent_at = clock()
        message_id = await queue.send("jobs", body)
        clock.advance(5)
        message = await receive_one(queue)
        assert isinstance(message.body, bytes)
        assert message.body == body
        assert message.id == message_id
        assert message.receive_count == 1
        assert isinstance(message.receipt, str) and message.receipt
        assert message.sent_at == pytest.approx(sent_at, abs=1e-3)  # when it was sent, on the queue's clock

    async def test_ids_and_receipts_are_unique(self, queue: Queue) -> None:
        ids = [await queue.send("jobs", b"same") for _ in range(20)]
        messages = await queue.receive("jobs", max_messages=20)
        assert len(set(ids)) == 20
        assert sorted(m.id for m in messages) == sorted(ids)
        assert len({m.receipt for m in messages}) == 20

    async def test_oldest_first(self, queue: Queue) -> None:
        for i in range(10):
            await queue.send("jobs", b"%d" % i)
        batch = await queue.receive("jobs", max_messages=4)
        assert [m.body for m in batch] == [b"0", b"1", b"2", b"3"]
        rest = [(await receive_one(queue)).body for _ in range(6)]
        assert rest == [b"%d" % i for i in range(4, 10)]

    async def test_received_message_is_invisible_until_its_timeout(self, queue: Queue, clock: ManualClock) -> None:
        await queue.send("jobs", b"x")
        first = await receive_one(queue, visibility_timeout=TIMEOUT)
        assert await queue.stats("jobs") == QueueStats(visible=0, in_flight=1, delayed=0)
        await assert_nothing_visible(queue)
        clock.advance(TIMEOUT - 1)
        assert await queue.stats("jobs") == QueueStats(visible=0, in_flight=1, delayed=0)
        await assert_nothing_visible(queue)
        clock.advance(2)
        assert await queue.stats("jobs") == QueueStats(visible=1, in_flight=0, delayed=0)
        again = await receive_one(queue, visibility_timeout=TIMEOUT)
        assert (again.id, again.body, again.receive_count) == (first.id, b"x", 2)
        assert again.receipt != first.receipt

    async def test_ack_deletes(self, queue: Queue, clock: ManualClock) -> None:
        await queue.send("jobs", b"x")
        message = await receive_one(queue, visibility_timeout=TIMEOUT)
        await queue.ack("jobs", message.receipt)
        assert await queue.stats("jobs") == EMPTY
        clock.advance(TIMEOUT + 1)
        assert await queue.receive("jobs") == []
        assert await queue.stats("jobs") == EMPTY

    async def test_stale_receipt_is_invalid(self, queue: Queue, clock: ManualClock) -> None:
        await queue.send("jobs", b"x")
        first = await receive_one(queue, visibility_timeout=TIMEOUT)
        clock.advance(TIMEOUT + 1)
        second = await receive_one(queue, visibility_timeout=TIMEOUT)  # after the first timed out
        with pytest.raises(ReceiptInvalid):
            await queue.ack("jobs", first.receipt)
        with pytest.raises(ReceiptInvalid):
            await queue.release("jobs", first.receipt)
        await queue.ack("jobs", second.receipt)
        with pytest.raises(ReceiptInvalid):
            await queue.ack("jobs", second.receipt)
        with pytest.raises(ReceiptInvalid):
            await queue.release("jobs", second.receipt)
        with pytest.raises(ReceiptInvalid):
            await queue.ack("jobs", "no-such-receipt")
        assert issubclass(ReceiptInvalid, QueueError)

    async def test_release_makes_visible_again(self, queue: Queue) -> None:
        await queue.send("jobs", b"x")
        first = await receive_one(queue, visibility_timeout=30)
        await queue.release("jobs", first.receipt)
        assert (await queue.stats("jobs")).visible == 1
        again = await receive_one(queue, wait=0.0)
        assert (again.id, again.receive_count) == (first.id, 2)
        with pytest.raises(ReceiptInvalid):  # released: the old receipt is spent
            await queue.ack("jobs", first.receipt)
        await queue.ack("jobs", again.receipt)

    async def test_release_with_delay(self, queue: Queue, clock: ManualClock) -> None:
        await queue.send("jobs", b"x")
        first = await receive_one(queue, visibility_timeout=TIMEOUT)
        await queue.release("jobs", first.receipt, delay=DELAY)
        stats = await queue.stats("jobs")
        assert stats.visible == 0 and stats.in_flight + stats.delayed == 1
        await assert_nothing_visible(queue)
        clock.advance(DELAY - 1)
        await assert_nothing_visible(queue)
        clock.advance(2)
        again = await receive_one(queue)
        assert (again.id, again.receive_count) == (first.id, 2)

    async def test_send_with_delay(self, queue: Queue, clock: ManualClock) -> None:
        message_id = await queue.send("jobs", b"later", delay=DELAY)
        assert await queue.stats("jobs") == QueueStats(visible=0, in_flight=0, delayed=1)
        await assert_nothing_visible(queue)
        clock.advance(DELAY - 1)
        assert await queue.stats("jobs") == QueueStats(visible=0, in_flight=0, delayed=1)
        await assert_nothing_visible(queue)
        clock.advance(2)
        assert await queue.stats("jobs") == QueueStats(visible=1, in_flight=0, delayed=0)
        message = await receive_one(queue)
        assert (message.id, message.body, message.receive_count) == (message_id, b"later", 1)

    async def test_dead_letter_after_max_receives(self, queue: Queue) -> None:
        await queue.send("jobs", b"poison")
        for count in range(1, MAX_RECEIVES + 1):
            message = await receive_one(queue)
            assert (message.body, message.receive_count) == (b"poison", count)
            await queue.release("jobs", message.receipt)
        await queue.send("jobs", b"fine")
        # the next receive moves the poison message to jobs.dead and delivers the next one instead
        [fine] = await queue.receive("jobs", max_messages=10)
        assert fine.body == b"fine"
        await queue.ack("jobs", fine.receipt)
        assert await queue.stats("jobs") == EMPTY
        dead = dead_letter_queue("jobs")
        assert await queue.stats(dead) == QueueStats(visible=1, in_flight=0, delayed=0)
        corpse = await receive_one(queue, dead, wait=0.0)
        assert corpse.body == b"poison"
        assert corpse.sent_at == pytest.approx(message.sent_at)
        assert corpse.receive_count == 1
        await queue.ack(dead, corpse.receipt)
        assert await queue.stats(dead) == EMPTY

    async def test_expired_receives_count_towards_dead_letter(self, queue: Queue, clock: ManualClock) -> None:
        await queue.send("jobs", b"slow")
        for count in range(1, MAX_RECEIVES + 1):
            message = await receive_one(queue, visibility_timeout=TIMEOUT)
            assert message.receive_count == count
            clock.advance(TIMEOUT + 1)  # never acked: its timeout runs out
        assert await queue.receive("jobs") == []  # nothing is delivered a fourth time
        assert await queue.stats("jobs") == EMPTY
        assert (await receive_one(queue, dead_letter_queue("jobs"))).body == b"slow"

    # the long poll waits in real time

    async def test_wait_returns_when_a_message_arrives(self, queue: Queue) -> None:
        async def send_later() -> None:
            await asyncio.sleep(0.2)
            await queue.send("jobs", b"late")

        sender = asyncio.create_task(send_later())
        start = time.monotonic()
        messages = await queue.receive("jobs", wait=2 * PATIENCE)
        await sender
        assert [m.body for m in messages] == [b"late"]
        assert time.monotonic() - start < PATIENCE

    async def test_wait_gives_up_empty_handed(self, queue: Queue) -> None:
        start = time.monotonic()
        assert await queue.receive("jobs", wait=SHORT) == []
        assert SHORT - 0.05 <= time.monotonic() - start < PATIENCE

    async def test_on_the_wall_clock_a_timeout_and_a_delay_run_out(self, wall_clock_queue: Queue) -> None:
        queue = wall_clock_queue
        before = time.time()
        await queue.send("jobs", b"x")
        start = time.monotonic()
        first = await receive_one(queue, visibility_timeout=SHORT)
        assert before - 1 <= first.sent_at <= time.time() + 1
        messages = await queue.receive("jobs")
        if time.monotonic() < start + SHORT:  # "not yet", while the real clock says so
            assert messages == []
        again = await receive_one(queue, visibility_timeout=60, wait=PATIENCE)
        assert SHORT - 0.05 <= time.monotonic() - start < PATIENCE + SHORT
        assert (again.id, again.receive_count) == (first.id, 2)
        await queue.ack("jobs", again.receipt)
        start = time.monotonic()
        later = await queue.send("jobs", b"later", delay=SHORT)
        delayed = await receive_one(queue, wait=PATIENCE)
        assert SHORT - 0.05 <= time.monotonic() - start < PATIENCE + SHORT
        assert (delayed.id, delayed.body) == (later, b"later")

    async def test_max_messages(self, queue: Queue) -> None:
        for i in range(5):
            await queue.send("jobs", b"%d" % i)
        first = await queue.receive("jobs", max_messages=3)
        rest = await queue.receive("jobs", max_messages=100)
        assert [m.body for m in first + rest] == [b"0", b"1", b"2", b"3", b"4"]
        assert await queue.receive("jobs", max_messages=100) == []
        for bad in (0, -1, 101, 2.5, True):
            with pytest.raises((ValueError, TypeError)):
                await queue.receive("jobs", max_messages=bad)

    async def test_stats(self, queue: Queue) -> None:
        await queue.send("jobs", b"a")
        await queue.send("jobs", b"b")
        await queue.send("jobs", b"c", delay=60)
        message = await receive_one(queue, visibility_timeout=60)
        assert await queue.stats("jobs") == QueueStats(visible=1, in_flight=1, delayed=1)
        await queue.ack("jobs", message.receipt)
        assert await queue.stats("jobs") == QueueStats(visible=1, in_flight=0, delayed=1)

    async def test_purge(self, queue: Queue) -> None:
        await queue.send("jobs", b"a")
        await queue.send("jobs", b"b")
        await queue.send("jobs", b"c", delay=60)
        await queue.send("other", b"kept")
        message = await receive_one(queue, visibility_timeout=60)
        await queue.purge("jobs")
        assert await queue.stats("jobs") == EMPTY
        assert await queue.receive("jobs") == []
        with pytest.raises(ReceiptInvalid):
            await queue.ack("jobs", message.receipt)
        assert await queue.stats("other") == QueueStats(visible=1, in_flight=0, delayed=0)
        await queue.purge("never-used")  # purging an unknown queue is fine

    async def test_invalid_names_are_rejected(self, queue: Queue) -> None:
        for name in BAD_NAMES:
            for call in (
                lambda: queue.send(name, b"x"),
                lambda: queue.receive(name),
                lambda: queue.ack(name, "receipt"),
                lambda: queue.release(name, "receipt"),
                lambda: queue.stats(name),
                lambda: queue.purge(name),
            ):
                with pytest.raises(QueueError, match="name"):
                    await call()
        for name in ("x" * 75, "A-z_0.9", "photos.resize", "x" * 75 + ".dead"):
            await queue.send(name, b"ok")
            assert (await receive_one(queue, name)).body == b"ok"

    async def test_invalid_bodies_are_rejected(self, queue: Queue) -> None:
        for body in ("text", None, 42, [1, 2]):
            with pytest.raises(TypeError):
                await queue.send("jobs", body)  # type: ignore[arg-type]
        assert await queue.stats("jobs") == EMPTY

    async def test_invalid_durations_are_rejected(self, queue: Queue) -> None:
        await queue.send("jobs", b"x")
        for bad in (0, -1, math.nan, math.inf):
            with pytest.raises(ValueError):
                await queue.receive("jobs", visibility_timeout=bad)
        with pytest.raises(ValueError):
            await queue.receive("jobs", wait=-1)
        with pytest.raises(ValueError):
            await queue.send("jobs", b"x", delay=-1)
        message = await receive_one(queue)
        with pytest.raises(ValueError):
            await queue.release("jobs", message.receipt, delay=-1)
        await queue.ack("jobs", message.receipt)  # the failed release changed nothing
        assert await queue.stats("jobs") == EMPTY

    async def test_queues_are_isolated(self, queue: Queue) -> None:
        await queue.send("a", b"for a")
        await queue.send("b", b"for b")
        message_a = await receive_one(queue, "a")
        assert message_a.body == b"for a"
        with pytest.raises(ReceiptInvalid):
            await queue.ack("b", message_a.receipt)
        assert await queue.stats("b") == QueueStats(visible=1, in_flight=0, delayed=0)
        await queue.purge("a")
        assert (await receive_one(queue, "b")).body == b"for b"

    async def test_concurrent_consumers_get_each_message_once(self, queue: Queue) -> None:
        count, consumers = 120, 6
        sent = await asyncio.gather(*(queue.send("jobs", b"%d" % i) for i in range(count)))
        assert len(set(sent)) == count
        received: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + 4 * PATIENCE

        async def consume(batch: int) -> None:
            while len(received) < count and time.monotonic() < deadline:
                for message in await queue.receive("jobs", max_messages=batch, visibility_timeout=60, wait=0.1):
                    received.append((message.id, message.body))
                    await queue.ack("jobs", message.receipt)

        await asyncio.gather(*(consume(1 + i % 3) for i in range(consumers)))
        duplicates = [i for i, n in collections.Counter(i for i, _ in received).items() if n > 1]
        assert duplicates == []
        assert sorted(received) == sorted(zip(sent, (b"%d" % i for i in range(count))))
        assert await queue.stats("jobs") == EMPTY

    async def test_close_twice(self, queue: Queue) -> None:
        await queue.send("jobs", b"x")
        await queue.close()
        await queue.close()

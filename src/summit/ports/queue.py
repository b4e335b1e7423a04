"""The queue port: durable work queues with SQS semantics.

- At-least-once: a received message stays invisible for ``visibility_timeout`` seconds; unless it
  is acknowledged in that time it becomes visible again and is delivered again.
- Each receive gets a fresh receipt; only the latest receipt of a message can ack or release it.
- A message received more than ``max_receives`` times is moved to the dead-letter queue
  ``<queue>.dead`` instead of being delivered again (SQS's maxReceiveCount).
- Queues exist on first use; names are 1-80 characters of letters, digits, '-', '_' and '.'
  (a name that ends in '.dead' is a dead-letter queue, so other names stop at 75).
- Time (``sent_at``, visibility timeouts, delays) is read from the adapter's ``clock``, a callable
  returning unix seconds: ``time.time`` unless ``from_url(url, clock=...)`` is given another. Tests
  pass a clock they advance by hand, so "not yet visible" and "visible again" are exact on any
  machine; ``receive(wait=...)`` still long-polls in real time.
"""

from __future__ import annotations

import abc
import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from summit import telemetry

DEAD_SUFFIX = ".dead"
DEFAULT_MAX_RECEIVES = 5
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,75}")

Clock = Callable[[], float]  # unix seconds, as time.time


class QueueError(Exception):
    """Base of the queue port's errors; adapters wrap their driver's errors in it."""


class ReceiptInvalid(QueueError):
    """The receipt is unknown or stale (the message was received again, or already acked)."""


@dataclass(frozen=True)
class Message:
    id: str
    body: bytes
    receipt: str
    receive_count: int
    sent_at: float  # unix seconds, on the queue's clock


@dataclass(frozen=True)
class QueueStats:
    visible: int  # ready to be received now
    in_flight: int  # received, not yet acked, still invisible
    delayed: int  # sent with a delay that has not passed yet


def dead_letter_queue(name: str) -> str:
    return name + DEAD_SUFFIX


def check_name(name: str) -> str:
    base = name[: -len(DEAD_SUFFIX)] if isinstance(name, str) and name.endswith(DEAD_SUFFIX) else name
    if not isinstance(base, str) or not _NAME.fullmatch(base):
        raise QueueError(f"invalid queue name {name!r}: use 1-75 letters, digits, '-', '_' or '.'")
    return name


def check_seconds(name: str, value: float, *, positive: bool) -> float:
    """A duration argument as float seconds, or TypeError/ValueError naming it (finite, >= 0, or > 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} is a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number of seconds {'> 0' if positive else '>= 0'}, not {value!r}")
    return float(value)


class Queue(abc.ABC):
    """The port. Its public methods check their arguments, long-poll, and turn a stale receipt into
    ReceiptInvalid, once for every adapter; an adapter implements the ``_`` methods below."""

    max_receives: int = DEFAULT_MAX_RECEIVES
    poll_interval: float = 0.05  # seconds between two looks for a message while a receive waits

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "queue", {op: op for op in OPERATIONS})  # an adapter that overrides one

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, *, clock: Clock = time.time) -> Queue:
        """The adapter that ``url`` names, keeping time with ``clock``."""

    async def send(self, queue: str, body: bytes, *, delay: float = 0.0) -> str:
        """Enqueue ``body``; it becomes visible after ``delay`` seconds. Returns the message id."""
        check_name(queue)
        if not isinstance(body, bytes):
            raise TypeError(f"a message body is bytes, not {type(body).__name__}")
        return await self._send(queue, body, check_seconds("delay", delay, positive=False))

    async def receive(
        self, queue: str, *, max_messages: int = 1, visibility_timeout: float = 30.0, wait: float = 0.0
    ) -> list[Message]:
        """Up to ``max_messages`` visible messages, oldest first; waits up to ``wait`` seconds for one."""
        check_name(queue)
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not 1 <= max_messages <= 100:
            raise ValueError(f"max_messages must be an integer from 1 to 100, not {max_messages!r}")
        visibility_timeout = check_seconds("visibility_timeout", visibility_timeout, positive=True)
        deadline = time.monotonic() + check_seconds("wait", wait, positive=False)
        while True:
            messages = await self._receive(queue, max_messages, visibility_timeout)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def ack(self, queue: str, receipt: str) -> None:
        """Delete the received message; raise ReceiptInvalid if the receipt is stale."""
        check_name(queue)
        if not isinstance(receipt, str) or not await self._ack(queue, receipt):
            raise ReceiptInvalid(f"receipt {receipt!r} of queue {queue!r} is stale or unknown")

    async def release(self, queue: str, receipt: str, *, delay: float = 0.0) -> None:
        """Make the received message visible again after ``delay`` seconds (a negative ack)."""
        check_name(queue)
        delay = check_seconds("delay", delay, positive=False)
        if not isinstance(receipt, str) or not await self._release(queue, receipt, delay):
            raise ReceiptInvalid(f"receipt {receipt!r} of queue {queue!r} is stale or unknown")

    async def stats(self, queue: str) -> QueueStats:
        """Counts of the queue's messages by state."""
        return await self._stats(check_name(queue))

    async def purge(self, queue: str) -> None:
        """Delete every message of the queue."""
        await self._purge(check_name(queue))

    async def close(self) -> None:
        """Release connections; the queue is not used after this."""

    # ---- what an adapter implements (arguments already checked) ---------------------------------

    @abc.abstractmethod
    async def _send(self, queue: str, body: bytes, delay: float) -> str: ...

    @abc.abstractmethod
    async def _receive(self, queue: str, limit: int, visibility_timeout: float) -> list[Message]:
        """Claim up to ``limit`` visible messages at once (moving those received ``max_receives``
        times to the dead-letter queue); [] when none is visible: ``receive`` does the waiting."""

    @abc.abstractmethod
    async def _ack(self, queue: str, receipt: str) -> bool:
        """Delete the message whose latest receipt this is; False if there is none."""

    @abc.abstractmethod
    async def _release(self, queue: str, receipt: str, delay: float) -> bool:
        """Make that message visible at now + ``delay``; False if the receipt is not its latest."""

    @abc.abstractmethod
    async def _stats(self, queue: str) -> QueueStats: ...

    @abc.abstractmethod
    async def _purge(self, queue: str) -> None: ...


OPERATIONS = ("send", "receive", "ack", "release", "stats", "purge")
telemetry.instrument(Queue, "queue", {op: op for op in OPERATIONS})  # counted once, for every adapter

"""Run queue consumers as asyncio tasks inside a process: the worker tier's runner.

    worker = Worker(platform.queue, concurrency=4)

    @worker.handle("thumbnails")
    async def make_thumbnail(body: bytes) -> None: ...

    await worker.start()
    ...
    await worker.stop()

Each registered queue gets ``concurrency`` consumer tasks. A consumer receives one message at a
time; when its handler returns the message is acked, when it raises the message is released with
``retry_delay(receive_count)`` seconds of delay, and after the queue's ``max_receives`` receives it
lands in ``<queue>.dead``. Delivery is at least once, so handlers must be idempotent; a handler that
runs longer than ``visibility_timeout`` may see its message delivered again meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable

from summit.ports import sql
from summit.ports.queue import Message, Queue, ReceiptInvalid, check_name

Handler = Callable[[bytes], Awaitable[None]]
logger = logging.getLogger("summit.workers")


def default_retry_delay(receive_count: int) -> float:
    """Exponential backoff: 2, 4, 8, ... seconds, at most a minute."""
    return min(60, 2**receive_count)


class Worker:
    def __init__(
        self,
        queue: Queue,
        *,
        concurrency: int = 2,
        visibility_timeout: float = 60.0,
        poll_interval: float = 0.2,
        retry_delay: Callable[[int], float] = default_retry_delay,
    ):
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, not {concurrency!r}")
        if not visibility_timeout > 0 or not poll_interval > 0:
            raise ValueError("visibility_timeout and poll_interval must be > 0 seconds")
        self.queue = queue
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.handlers: dict[str, Handler] = {}
        # counters for metrics: handler successes and failures (a retried message fails each time)
        self.processed = 0
        self.failed = 0
        self._active = 0  # handlers running now
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def handle(self, queue_name: str) -> Callable[[Handler], Handler]:
        """Decorator: ``@worker.handle("mail") async def send_mail(body: bytes) -> None``."""

        def register(fn: Handler) -> Handler:
            self.add_handler(queue_name, fn)
            return fn

        return register

    def add_handler(self, queue_name: str, fn: Handler) -> None:
        check_name(queue_name)
        if not (inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))):
            raise TypeError(f"a handler is an async function taking the body (bytes), not {fn!r}")
        if queue_name in self.handlers:
            raise ValueError(f"queue {queue_name!r} already has a handler: {self.handlers[queue_name]!r}")
        if self.running:
            raise RuntimeError("add handlers before the worker starts")
        self.handlers[queue_name] = fn

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("the worker is already running")
        if not self.handlers:
            raise RuntimeError("the worker has no handlers: register one with worker.handle(queue_name)")
        self._stopping = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._consume(name, fn), name=f"summit-worker:{name}:{i}")
            for name, fn in self.handlers.items()
            for i in range(self.concurrency)
        ]
        logger.info("worker started: %s x%d", ", ".join(self.handlers), self.concurrency)

    async def stop(self, timeout: float = 30.0) -> bool:
        """Let running handlers finish (for up to ``timeout`` seconds), then stop.

        Returns False if handlers were still running at the timeout and were cancelled: their
        messages are delivered again once their visibility timeout passes.
        """
        if not self.running:
            return True
        assert self._stopping is not None
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pending:
            logger.warning("worker stopped: %d consumer(s) cancelled after %.1f s", len(pending), timeout)
        else:
            logger.info("worker stopped")
        return not pending

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every registered queue has no visible, in-flight or delayed message.

        Raises TimeoutError if that does not happen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self._active == 0:
                stats = [await self.queue.stats(name) for name in self.handlers]
                if all(s.visible == s.in_flight == s.delayed == 0 for s in stats):
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"queues {', '.join(self.handlers)} not drained after {timeout} s")
            await asyncio.sleep(min(0.05, self.poll_interval))

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _consume(self, name: str, handler: Handler) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                messages = await self.queue.receive(name, visibility_timeout=self.visibility_timeout)
            except Exception:
                logger.exception("receiving from queue %r failed", name)
                messages = []
            if not messages:  # idle (or failing): wait a poll interval, or less if we are stopped
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.poll_interval)
                except TimeoutError:
                    pass
                continue
            for message in messages:
                await self._process(name, handler, message)

    async def _process(self, name: str, handler: Handler, message: Message) -> None:
        self._active += 1
        _, tracking = sql.track_writes()  # a job reads its own writes, as a request does
        try:
            try:
                await handler(message.body)
            except Exception:
                self.failed += 1
                try:
                    delay = max(0.0, float(self.retry_delay(message.receive_count)))
                except Exception:
                    logger.exception("retry_delay(%d) failed; retrying at once", message.receive_count)
                    delay = 0.0
                logger.exception(
                    "handler for queue %r failed on message %s (receive %d); retry in %.1f s",
                    name, message.id, message.receive_count, delay,
                )
                await self._settle(self.queue.release(name, message.receipt, delay=delay), name, message)
            else:
                self.processed += 1
                await self._settle(self.queue.ack(name, message.receipt), name, message)
        finally:
            sql.untrack(tracking)
            self._active -= 1

    async def _settle(self, call: Awaitable[None], name: str, message: Message) -> None:
        try:
            await call
        except ReceiptInvalid:
            logger.warning(
                "message %s of queue %r outlived its visibility timeout (%.1f s): it may run twice",
                message.id, name, self.visibility_timeout,
            )
        except Exception:
            logger.exception("settling message %s of queue %r failed", message.id, name)

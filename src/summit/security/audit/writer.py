"""The audit log's writer: one chain per process, appended by one thread, fsynced per batch.

``record()`` hands the event to the writer thread and waits; the thread writes every record that
is waiting (one batch), fdatasyncs the file once, then acknowledges the whole batch. So a record
is on disk when ``await record()`` returns, and under load many records share one fsync (group
commit) without any of them waiting for a timer.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import NamedTuple, Union

import orjson

from summit.security.audit.chain import Chain
from summit.security.audit.format import AUDIT_DIR, AuditError, AuditEvent, Origin, make_event
from summit.security.audit.keys import load_or_create_signing_key

log = logging.getLogger("summit.audit")
_CLOSE = object()
MAX_BATCH = 4096


class AuditLog:
    """This process's audit chain under ``<data_dir>/audit/<chain id>/``.

    Create one per process, after any fork (in the app's lifespan), start it, record, close it::

        audit = AuditLog(blueprint.data_dir)
        await asyncio.to_thread(audit.start)     # or: async with AuditLog(...) as audit:
        await audit.record("posts:Create", user_id="42", resource="arn:summit:photos:::post/7", status=201)
        await asyncio.to_thread(audit.close)     # seals the last file with a final digest

    A file is sealed (its SHA-256 signed into the chain) when the clock enters a new period of
    ``max_file_seconds`` (an hour by default, checked every ``tick`` seconds even when idle) or
    when the next record would take it past ``max_file_bytes``.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        max_file_bytes: int = 16 * 1024 * 1024,
        max_file_seconds: int = 3600,
        tick: float = 1.0,
    ):
        if not 1 <= max_file_seconds <= 3600:
            raise ValueError("max_file_seconds must be between 1 and 3600: files are sealed at least hourly")
        if max_file_bytes < 1024:
            raise ValueError("max_file_bytes must be at least 1024")
        self.data_dir = Path(data_dir)
        self.directory = self.data_dir / AUDIT_DIR
        self.clock = clock
        self.max_file_bytes = max_file_bytes
        self.max_file_seconds = max_file_seconds
        self.tick = tick
        self.chain_id: str | None = None
        self._chain: Chain | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._state = "new"  # new -> open -> closing -> closed; or failed
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # --- life cycle ---

    def start(self) -> AuditLog:
        """Begin a new chain (blocking: key, directories, first digest, first file)."""
        with self._lock:
            if self._state != "new":
                raise AuditError(f"audit log already {self._state}")
            key = load_or_create_signing_key(self.data_dir / "keys")
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            chain = Chain(self.directory, key, self.clock, self.max_file_bytes, self.max_file_seconds)
            try:
                chain.begin()
            except BaseException:
                chain.release()  # what was made stays, and reads as a chain that died while starting
                raise
            self._chain, self.chain_id = chain, chain.chain_id
            self._thread = threading.Thread(target=self._run, name=f"audit-{self.chain_id}", daemon=True)
            self._thread.start()
            self._state = "open"
        atexit.register(self.close)  # an exit without close() still seals the chain
        return self

    def close(self) -> None:
        """Write what is queued, seal the last file with the chain's final digest, release the
        chain. Idempotent. Raises AuditError if the final seal fails."""
        with self._lock:
            if self._state in ("new", "closed"):
                self._state = "closed"
                return
            if self._state == "open":
                self._state = "closing"
                self._queue.put(_CLOSE)
        atexit.unregister(self.close)
        assert self._thread is not None and self._chain is not None
        self._thread.join()
        with self._lock:
            failed, self._state = self._state == "failed", "closed"
        self._chain.release()
        if failed and self._chain.close_error is not None:
            raise AuditError(f"audit log could not seal its last file: {self._chain.close_error}")

    async def __aenter__(self) -> AuditLog:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # --- records ---

    async def record(
        self,
        action: str,
        *,
        user_id: str | int | None = None,
        resource: str | None = None,
        result: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        origin: Origin | None = None,
        details: Mapping | None = None,
    ) -> AuditEvent:
        """Record one event; returns once it is written and fsynced.

        ``origin`` defaults to the one bound for the current request (``bind_origin``);
        ``result`` defaults from ``status`` (failure from 400 up). Raises ValueError for a bad
        field and AuditError when the log cannot write.
        """
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        fields = {"user_id": user_id, "resource": resource, "result": result, "status": status, "reason": reason}
        self._enqueue(action, {**fields, "origin": origin, "details": details}, (loop, waiter))
        return await waiter

    def submit(self, action: str, **fields) -> Future[AuditEvent]:  # noqa: ANN003
        """``record()`` for code outside an event loop: the future resolves when the event is on
        disk (``submit(...).result()`` blocks until then). Same keyword arguments."""
        if unknown := set(fields) - set(_FIELDS):
            raise TypeError(f"unknown audit field(s): {', '.join(sorted(unknown))}")
        future: Future[AuditEvent] = Future()
        self._enqueue(action, fields, future)
        return future

    def _enqueue(self, action: str, fields: dict, waiter: _Waiter) -> None:
        if os.getpid() != self._pid:
            raise AuditError("this audit log belongs to the parent process: create one per process, after fork")
        epoch_ms = int(self.clock() * 1000)
        event = make_event(action, epoch_ms=epoch_ms, **{k: fields.get(k) for k in _FIELDS})
        line = orjson.dumps({k: v for k, v in event.as_dict().items() if k != "details" or v}) + b"\n"
        with self._lock:
            if self._state != "open":
                raise AuditError(f"audit log is {self._state}" + (f": {self._error}" if self._error else ""))
            self._queue.put(_Item(line, epoch_ms, event, waiter))

    # --- the writer thread ---

    def _run(self) -> None:
        chain = self._chain
        assert chain is not None
        while True:
            try:
                items = [self._queue.get(timeout=chain.seconds_to_roll(self.tick))]
            except queue.Empty:
                items = []
            except BaseException as error:  # noqa: BLE001  (a clock that fails: nobody may wait forever)
                self._fail(error, [])
                return
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [item for item in items if item is not _CLOSE]
            closing = len(records) < len(items)
            try:
                if not closing:  # at close, the open file is sealed as the final one instead
                    chain.roll_if_due()
                for item in records:
                    chain.append(item.line, item.epoch_ms, item.event.time)
                if records:
                    chain.sync()
            except BaseException as error:  # noqa: BLE001  (every waiter must hear of it)
                self._fail(error, records)
                return
            _settle(records)
            if closing:
                try:
                    chain.finish()
                except BaseException as error:  # noqa: BLE001
                    chain.close_error = error
                    self._fail(error, [])
                return

    def _fail(self, error: BaseException, waiting: list[_Item]) -> None:
        log.error("audit log failed; its chain stays unsealed", exc_info=error)
        with self._lock:
            self._error, self._state = error, "failed"
        while True:  # nothing more can be queued once the state left "open"
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _CLOSE:
                waiting.append(item)
        _settle(waiting, AuditError(f"audit record not written: {error}"))


class _Item(NamedTuple):
    line: bytes
    epoch_ms: int
    event: AuditEvent
    waiter: _Waiter


_Waiter = Union[Future, "tuple[asyncio.AbstractEventLoop, asyncio.Future]"]


def _settle(items: list[_Item], error: BaseException | None = None) -> None:
    """Tell the waiters: a thread's future directly, an event loop's futures in one call per loop
    (one wake-up per batch, not per record)."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for item in items:
        if isinstance(item.waiter, Future):
            try:
                item.waiter.set_exception(error) if error else item.waiter.set_result(item.event)
            except InvalidStateError:  # cancelled; the record is written all the same
                pass
        else:
            by_loop.setdefault(item.waiter[0], []).append((item.waiter[1], item.event))
    for loop, waiters in by_loop.items():
        try:
            loop.call_soon_threadsafe(_wake, waiters, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _wake(waiters: list, error: BaseException | None) -> None:
    for future, event in waiters:
        if not future.done():  # a cancelled waiter: the record is written all the same
            future.set_exception(error) if error else future.set_result(event)


_FIELDS = ("user_id", "resource", "result", "status", "reason", "origin", "details")

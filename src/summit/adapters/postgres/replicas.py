"""Which replica may serve a read: a monitor that polls each replica's replayed WAL position, and
the rule that picks one.

Every ``poll`` seconds the monitor asks the primary for its WAL position and each replica for the
position it has replayed (one tiny autocommit query each, bounded by ``timeout``). A replica is
*eligible* when its last poll succeeded and it is at most ``max_lag`` seconds behind: the primary's
position ``max_lag`` seconds ago is already replayed. A read that must see a client's own write
(the commit's position, tracked per client) goes to an eligible replica that has replayed that
position, else to the primary. A replica that fails a poll or a query leaves the rotation at once
and comes back after a poll that succeeds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("summit.sql.replicas")


def parse_lsn(text: str | None) -> int | None:
    """'16/B374D848' -> an integer (None stays None)."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class ReplicaState:
    name: str  # host:port
    conninfo: dict[str, Any]
    healthy: bool = False
    replayed: int = 0  # the WAL position it has replayed, at its last poll
    polled_at: float = 0.0
    staleness: float = float("inf")  # seconds behind the primary, at its last poll
    error: str = ""
    failures: int = 0
    conn: Any = None  # its monitor connection (psycopg, autocommit)


@dataclass
class ReplicaMonitor:
    primary: dict[str, Any]  # psycopg connection keywords
    replicas: list[ReplicaState]
    max_lag: float = 1.0
    poll: float = 0.25
    timeout: float = 1.0
    _history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=256))  # (time, primary position)
    _task: asyncio.Task[None] | None = None
    _primary_conn: Any = None
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _closed: bool = False
    _polled: asyncio.Event | None = None

    def start(self) -> None:
        """Start polling (on the running loop); idempotent."""
        if self._task is None and not self._closed:
            self._polled = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="summit-replica-monitor")

    async def first_poll(self) -> None:
        """Wait (briefly) until the first round of polls is done, so the first reads can use replicas."""
        if self._polled is not None and self._polled.is_set():  # every read after the first: no wait at all
            return
        self.start()
        if self._polled is not None:
            try:
                await asyncio.wait_for(self._polled.wait(), self.timeout * 2)
            except asyncio.TimeoutError:
                pass

    def choose(self, position: int | None) -> ReplicaState | None:
        """An eligible replica that has replayed ``position`` (round robin), or None: the primary."""
        eligible = [r for r in self.replicas if r.healthy and r.staleness <= self.max_lag and (position is None or r.replayed >= position)]
        if not eligible:
            return None
        return eligible[next(self._turn) % len(eligible)]

    def failed(self, replica: ReplicaState, error: BaseException) -> None:
        """A query on ``replica`` failed for want of a connection: out of rotation until a poll succeeds."""
        if replica.healthy:
            log.warning("replica %s left the rotation: %s", replica.name, error)
        replica.healthy, replica.error = False, str(error).splitlines()[0] if str(error) else type(error).__name__

    def primary_position(self) -> int | None:
        return self._history[-1][1] if self._history else None

    # ---- polling ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            started = time.monotonic()
            await self.poll_once()
            if self._polled is not None:
                self._polled.set()
            await asyncio.sleep(max(0.0, self.poll - (time.monotonic() - started)))

    async def poll_once(self) -> None:
        now = time.monotonic()
        position = await self._query_primary()
        if position is not None:
            self._history.append((now, position))
        await asyncio.gather(*(self._poll_replica(r) for r in self.replicas))

    async def _query_primary(self) -> int | None:
        try:
            self._primary_conn, text = await self._query(self._primary_conn, self.primary, "SELECT pg_current_wal_lsn()::text")
        except Exception as error:  # noqa: BLE001  (the primary being down is the writes' problem; keep polling)
            self._primary_conn = None
            log.debug("primary poll failed: %s", error)
            return None
        return parse_lsn(text)

    async def _poll_replica(self, replica: ReplicaState) -> None:
        try:
            replica.conn, text = await self._query(replica.conn, replica.conninfo, "SELECT pg_last_wal_replay_lsn()::text")
        except Exception as error:  # noqa: BLE001
            replica.conn = None
            replica.failures += 1
            self.failed(replica, error)
            return
        replayed = parse_lsn(text)
        if replayed is None:  # not a replica (promoted, or misconfigured): never route reads there
            self.failed(replica, RuntimeError("not in recovery: it is no replica"))
            return
        replica.replayed, replica.polled_at, replica.failures = replayed, time.monotonic(), 0
        replica.staleness = self._staleness(replayed, replica.polled_at)
        if not replica.healthy:
            log.info("replica %s is back in rotation", replica.name)
        replica.healthy, replica.error = True, ""

    def _staleness(self, replayed: int, now: float) -> float:
        """Seconds since the primary was at a position this replica has not replayed yet: 0 when it
        has replayed the primary's latest known position."""
        if not self._history:
            return float("inf")
        for at, position in reversed(self._history):
            if position <= replayed:
                later = [t for t, p in self._history if t > at]
                return max(0.0, now - later[0]) if later else 0.0
        return now - self._history[0][0]

    async def _query(self, conn: Any, conninfo: dict[str, Any], sql: str) -> tuple[Any, str | None]:
        import psycopg

        async def run() -> tuple[Any, str | None]:
            nonlocal conn
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(**conninfo, autocommit=True, prepare_threshold=None)
            cursor = await conn.execute(sql)
            row = await cursor.fetchone()
            return conn, row[0] if row else None

        try:
            return await bounded(run(), self.timeout, lambda: conn)
        except BaseException:
            if conn is not None:
                await _close_quietly(conn)
            raise

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        for conn in (self._primary_conn, *(r.conn for r in self.replicas)):
            if conn is not None:
                await _close_quietly(conn)


async def bounded(awaitable: Awaitable[T], timeout: float, driver: Callable[[], Any]) -> T:
    """``awaitable`` within ``timeout`` seconds, or TimeoutError at once.

    Cancelling a psycopg call makes psycopg ask the server to cancel the query and wait for it (up
    to 10 s): from a frozen server, no answer comes. So a call that overruns has its connection's
    socket closed under it (``driver()``: the psycopg connection, if any), which ends it now.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    conn = driver()
    if conn is not None:
        conn.pgconn.finish()  # the socket closes: the stuck call fails instead of waiting
    task.cancel()
    try:
        await task
    except BaseException:  # noqa: BLE001  (it failed or was cancelled, as intended)
        pass
    raise TimeoutError(f"no answer within {timeout:g} s")


class Deadline:
    """A bound on one statement without a task of its own (a timer, cancelled when it finishes in
    time): when it fires, it shuts the connection's socket down, so the stuck call reads the end of
    the stream at once and fails. ``fired`` tells the caller that the failure was the bound's doing.

    Shut down, not closed: libpq's connection (and its descriptor) must stay valid under the
    suspended call. ``pgconn.finish()`` freed it there, and the call, woken when a new socket
    reused the descriptor number, ran on freed memory (a segfault under a replica's SIGKILL)."""

    __slots__ = ("fired", "_timer")

    def __init__(self, timeout: float, driver: Any):
        self.fired = False
        self._timer = asyncio.get_running_loop().call_later(timeout, self._fire, driver)

    def _fire(self, driver: Any) -> None:
        self.fired = True
        try:
            with socket.socket(fileno=os.dup(driver.pgconn.socket)) as sock:  # a duplicate: closing it leaves libpq's
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001  (no socket any more: the call has failed already)
            pass

    def cancel(self) -> None:
        self._timer.cancel()


async def _close_quietly(conn: Any) -> None:
    try:
        await asyncio.wait_for(conn.close(), 1.0)
    except Exception:  # noqa: BLE001
        pass

"""The cache port on Redis: ``redis://[:password@]host[:port][/db]?prefix=summit:&timeout_ms=200``
(``rediss://`` for TLS).

Every process that opens the same URL sees the same entries at once (``shared``). Keys live under a
prefix, so ``clear`` removes this cache's keys only (SCAN + UNLINK, never FLUSHDB); TTLs are sent in
milliseconds (PX); ``incr`` is one Lua script (INCRBY, then PEXPIRE only when it created the key).

**Redis down or frozen is not an error of the app**: the port is lossy, so a read that cannot reach
Redis within ``timeout_ms`` is a miss (the app reads the database) and a write is skipped. A
failure opens a circuit breaker for ``BREAK_SECONDS``: calls skip Redis at once instead of each
paying a timeout, then one call probes it again. It is logged once per ``LOG_EVERY`` seconds, not
per call. A skipped ``set``/``delete``/``clear`` may leave a stale entry behind in a Redis that was
only frozen (it keeps its data), so the keys concerned are remembered and deleted before anything
else once Redis answers again (more than ``MAX_PENDING`` of them: the whole prefix is cleared).
``add`` (what fills use) needs no repair: a skipped fill writes nothing. ``incr`` has no lossy
answer and raises ``CacheUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from summit.ports.cache import Cache, CacheError, CacheUnavailable, check_ttl, check_value

log = logging.getLogger("summit.cache.redis")
T = TypeVar("T")

BREAK_SECONDS = 1.0  # after a failure, calls skip Redis this long, then one probes it
LOG_EVERY = 5.0  # seconds between two reports of the same outage
MAX_PENDING = 10_000  # keys remembered for repair; beyond, the whole prefix is cleared on recovery
_BATCH = 500  # keys per UNLINK
MAX_BATCH_KEYS = 1000  # keys per MGET of batched reads; more open another batch
UNBOUNDED_SECONDS = 60.0  # what a long call (clear's SCAN + UNLINK) may take before it counts as an outage
_OPTIONS = ("prefix", "timeout_ms", "max_connections")

# INCRBY, and the TTL only on the counter it creates (an existing counter keeps its own): atomic
_INCR = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""


def _px(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, math.ceil(ttl * 1000))


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class _Reads:
    """The keys the reads of one turn of the event loop want, and the future of their values.

    Auto-pipelining, like ioredis's: the first ``get_many`` of a turn opens a batch, yields once
    (``sleep(0)``: what is ready to run in this turn runs), then sends one MGET for every key added
    meanwhile; the reads that joined await the same answer. One request alone waits one turn of
    the loop; under load, the lookups of many requests share one round trip (one send, one
    receive, one reply to parse) instead of paying one each."""

    __slots__ = ("done", "keys")

    def __init__(self, keys: list[str]) -> None:
        self.keys: dict[str, None] = dict.fromkeys(keys)  # ordered, each once
        self.done: asyncio.Future[dict[str, bytes]] = asyncio.get_running_loop().create_future()


class _Skipped(Exception):
    """Redis was not asked: the breaker is open, or no connection was free in time."""


class RedisCache(Cache):
    shared = True

    def __init__(self, *, host: str, port: int = 6379, db: int = 0, username: str | None = None, password: str | None = None,
                 tls: bool = False, prefix: str = "summit:", timeout_ms: int = 200, max_connections: int = 64):
        if not prefix:
            raise ValueError("prefix must not be empty: clear() deletes every key under it")
        self.prefix = prefix
        self.where = f"{'rediss' if tls else 'redis'}://{host}:{port}/{db}?prefix={prefix}"  # no password: for logs
        self.timeout = timeout_ms / 1000
        self._pool = aioredis.ConnectionPool(
            connection_class=aioredis.SSLConnection if tls else aioredis.Connection,
            host=host, port=port, db=db, username=username, password=password,
            # no per-operation socket timeout (redis-py would wrap every read and write in a task of
            # its own, a third of a call's CPU): ``_call`` bounds each whole call instead
            socket_timeout=None, socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),  # no retry: a miss is cheaper than a second timeout
            max_connections=max_connections,
        )
        self._client = aioredis.Redis(connection_pool=self._pool)
        self._incr = self._client.register_script(_INCR)
        self._slots = max_connections
        self._free: asyncio.Semaphore | None = None  # made on first use, in the loop that uses it
        self._open_until = 0.0  # the breaker: 0 closed, else skip Redis until then
        self._probing = False
        self._pending: set[str] = set()  # keys a skipped write may have left stale
        self._pending_all = False  # too many, or a skipped clear: clear the prefix on recovery
        self._repair_lock: asyncio.Lock | None = None
        self._down_since = 0.0
        self._last_report = -LOG_EVERY
        self._skipped = 0
        self._reads: _Reads | None = None  # the batch of reads this turn of the loop adds to
        self._tasks: set[asyncio.Task[None]] = set()  # batches in flight (kept from the collector)

    @classmethod
    def from_url(cls, url: str) -> RedisCache:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("redis", "rediss") or not parts.hostname or parts.fragment:
            raise ValueError(f"{_shown(url)!r}: the Redis cache URL is redis://[:password@]host[:port][/db][?prefix=...]")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{_shown(url)!r}: unknown option {', '.join(unknown)}; the Redis cache takes {', '.join(_OPTIONS)}")
        path = parts.path.strip("/") or "0"
        if not (path.isascii() and path.isdigit()):
            raise ValueError(f"{_shown(url)!r}: the database is a number (/0 ... /15), got {path!r}")

        def number(name: str, default: int, low: int, high: int) -> int:
            raw = options.get(name, [str(default)])[-1]
            if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
                raise ValueError(f"{_shown(url)!r}: {name} must be an integer from {low} to {high}, got {raw!r}")
            return int(raw)

        return cls(
            host=parts.hostname, port=parts.port or 6379, db=int(path),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=scheme == "rediss", prefix=options.get("prefix", ["summit:"])[-1],
            timeout_ms=number("timeout_ms", 200, 1, 60_000), max_connections=number("max_connections", 64, 1, 10_000),
        )

    # ---- the port ---------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many((key,))).get(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The reads of one turn of the event loop go to Redis together, as one MGET (see
        ``_Reads``): under load a request's lookup shares its round trip with the others'."""
        keys = list(keys)
        if not keys:
            return {}
        reads = self._reads
        if reads is not None and len(reads.keys) < MAX_BATCH_KEYS:  # a batch is open: join it
            reads.keys.update(dict.fromkeys(keys))
            found = await asyncio.shield(reads.done)  # a caller cancelled leaves the batch to the others
        else:  # open one, let the turn's other reads join, then send it
            reads = self._reads = _Reads(keys)
            try:
                await asyncio.sleep(0)
            except BaseException:  # cancelled: the batch goes on for those who joined it
                self._close_batch(reads)
                task = asyncio.get_running_loop().create_task(self._mget(reads))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                raise
            self._close_batch(reads)
            await self._mget(reads)
            found = reads.done.result()
        return {key: found[key] for key in keys if key in found}

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        value, ttl = check_value(value), check_ttl(ttl)
        await self._write([key], lambda r: r.set(self.prefix + key, value, px=_px(ttl)))

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        items, ttl = {key: check_value(value) for key, value in items.items()}, check_ttl(ttl)
        if items:
            await self._write(list(items), lambda r: self._pipeline(r, items, ttl, nx=False))

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        value, ttl = check_value(value), check_ttl(ttl)
        try:  # a skipped add stored nothing: nothing to repair
            return bool(await self._call(lambda r: r.set(self.prefix + key, value, px=_px(ttl), nx=True)))
        except _Skipped:
            return False

    async def add_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        items, ttl = {key: check_value(value) for key, value in items.items()}, check_ttl(ttl)
        if items:
            try:
                await self._call(lambda r: self._pipeline(r, items, ttl, nx=True))
            except _Skipped:
                pass

    async def delete(self, key: str) -> bool:
        return bool(await self._write([key], lambda r: r.delete(self.prefix + key)))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"incr amount is an int, got {type(amount).__name__}")
        px = _px(check_ttl(ttl))
        try:
            return int(await self._call(lambda r: self._incr(keys=[self.prefix + key], args=[amount, "" if px is None else px])))
        except _Skipped:
            raise CacheUnavailable(f"cannot incr {key!r}: the cache at {self.where} does not answer") from None

    async def clear(self) -> None:
        try:
            await self._call(self._unlink_prefix, bounded=False)
        except _Skipped:
            self._pending_all = True  # done once Redis answers again

    async def close(self) -> None:
        await self._pool.disconnect()

    # ---- talking to Redis -------------------------------------------------------------------------

    def _close_batch(self, reads: _Reads) -> None:
        if self._reads is reads:
            self._reads = None  # later reads make a batch of their own

    async def _mget(self, reads: _Reads) -> None:
        keys = list(reads.keys)
        try:
            values = await self._call(lambda r: r.mget([self.prefix + key for key in keys]))
            found = {key: value for key, value in zip(keys, values) if value is not None}
        except _Skipped:
            found = {}
        except Exception as error:  # an error Redis answered with (CacheError): each caller meets it
            reads.done.set_exception(error)
            reads.done.exception()  # retrieved: a batch nobody joined logs nothing
            raise
        except BaseException:  # the caller sending it was cancelled: a miss for those who joined
            reads.done.set_result({})
            raise
        reads.done.set_result(found)

    async def _pipeline(self, r: aioredis.Redis, items: Mapping[str, bytes], ttl: float | None, *, nx: bool) -> list[Any]:
        async with r.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(self.prefix + key, value, px=_px(ttl), nx=nx)
            return await pipe.execute()

    async def _unlink_prefix(self, r: aioredis.Redis) -> None:
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        batch: list[bytes] = []
        async for name in r.scan_iter(match=pattern, count=1000):
            batch.append(name)
            if len(batch) >= _BATCH:
                await r.unlink(*batch)
                batch = []
        if batch:
            await r.unlink(*batch)

    async def _write(self, keys: list[str], call: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """A write; skipped, its keys are remembered and deleted once Redis answers again."""
        try:
            return await self._call(call)
        except _Skipped:
            if len(self._pending) + len(keys) > MAX_PENDING:
                self._pending_all = True
            else:
                self._pending.update(keys)
            return None

    async def _call(self, call: Callable[[aioredis.Redis], Awaitable[T]], *, bounded: bool = True) -> T:
        """Run ``call`` on Redis, unless the breaker is open; raise ``_Skipped`` if Redis cannot answer.

        A connection failure or a timeout opens the breaker; an error Redis answers with (a wrong
        type, not an integer) is the caller's, as ``CacheError``."""
        probing = False
        if self._open_until:
            if time.monotonic() < self._open_until or self._probing:
                self._skipped += 1
                raise _Skipped
            self._probing = probing = True  # half open: this call alone tries
        if self._free is None:
            self._free = asyncio.Semaphore(self._slots)
        try:
            if self._free.locked():  # every connection busy: wait a little for one, or miss
                try:
                    async with asyncio.timeout(self.timeout * 5):
                        await self._free.acquire()
                except TimeoutError:
                    raise _Skipped from None
            else:
                await self._free.acquire()  # free: returns at once
            try:
                if self._pending or self._pending_all:
                    await self._repair()
                async with asyncio.timeout(self.timeout * 3 if bounded else UNBOUNDED_SECONDS):
                    result = await call(self._client)
            finally:
                self._free.release()
        except ResponseError as error:  # Redis answered: the error is the caller's
            if probing:
                self._close()
            raise CacheError(str(error)) from None
        except (RedisError, OSError, TimeoutError) as error:
            self._trip(error)
            raise _Skipped from None
        finally:
            if probing:
                self._probing = False
        if probing:
            self._close()
        return result

    def _close(self) -> None:
        self._open_until = 0.0
        log.warning("cache %s answers again after %.1f s (%d calls skipped it)", self.where,
                    time.monotonic() - self._down_since, self._skipped)
        self._skipped, self._last_report = 0, -LOG_EVERY

    def _trip(self, error: BaseException) -> None:
        now = time.monotonic()
        if not self._open_until:
            self._down_since = now
        self._open_until = now + BREAK_SECONDS
        if now - self._last_report >= LOG_EVERY:
            self._last_report = now
            skipped = f"; {self._skipped} calls skipped it since the last report" if self._skipped else ""
            log.warning("cache %s unreachable (%s: %s): reads go to the database, writes are skipped%s",
                        self.where, type(error).__name__, error, skipped)
            self._skipped = 0

    async def _repair(self) -> None:
        """Delete what skipped writes may have left stale, before anything else is read or written."""
        if self._repair_lock is None:
            self._repair_lock = asyncio.Lock()
        async with self._repair_lock:
            if self._pending_all:
                await self._unlink_prefix(self._client)
                self._pending_all = False
                self._pending.clear()
                return
            keys = list(self._pending)
            for start in range(0, len(keys), _BATCH):
                await self._client.unlink(*(self.prefix + key for key in keys[start:start + _BATCH]))
            self._pending.difference_update(keys)

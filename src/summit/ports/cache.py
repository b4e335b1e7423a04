"""The cache port: bytes by key, with a time to live, lossy by design.

A cache may drop any entry at any time (memory bound, restart, eviction); the application must
treat a miss as normal. Values are bytes: the caller chooses the encoding.

A cache that runs as a server may be unreachable: then a read is a miss and a write is skipped (the
adapter makes sure a skipped write leaves no stale entry behind once the server answers again), so
anything whose truth lives in the database keeps working from the database. Only ``incr`` has no
lossy answer: it raises ``CacheUnavailable``.

``get_many_or_fill`` is cache-aside with single flight: the values in the cache, the rest from a
``fill`` that reads the database once per key and process however many requests miss at once.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping

from summit import telemetry
from summit.ports.sql import read_position

Fill = Callable[[list[str]], Awaitable[Mapping[str, bytes]]]  # missing keys -> the values found for them


class CacheError(Exception):
    """Base of the cache port's errors; adapters wrap their driver's errors in it."""


class CacheUnavailable(CacheError):
    """The cache's server cannot be reached now (down, frozen, or too slow): for ``incr``, which
    has no lossy answer; reads and writes never raise it."""


class Cache(abc.ABC):
    # Do all the processes that open the same URL see the same entries (a server, not process memory)?
    shared: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for name, every in (("delete", False), ("clear", True)):  # a write's invalidation detaches fills in flight
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "__isabstractmethod__", False) and not getattr(fn, "_summit_detaching", False):
                setattr(cls, name, _detaching(fn, every))
        telemetry.count_cache_reads(cls)
        telemetry.instrument(cls, "cache", {"get": "get", "get_many": "get_many", "set": "set", "set_many": "set_many", "add": "add",
                                            "add_many": "add_many", "delete": "delete", "incr": "incr", "clear": "clear"})

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Cache: ...

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The values that are present, by key."""
        found = {}
        for key in keys:
            value = await self.get(key)
            if value is not None:
                found[key] = value
        return found

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value``; it expires ``ttl`` seconds from now (never, if None)."""

    @abc.abstractmethod
    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Store ``value`` only if the key is absent; True if it was stored."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the key; True if it was present."""

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` to an integer counter (created at 0, with ``ttl``) and return it."""

    @abc.abstractmethod
    async def clear(self) -> None:
        """Remove every key of this cache."""

    async def close(self) -> None:
        """Release connections; the cache is not used after this."""

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        """``set`` each item (an adapter with a server sends them in one round trip)."""
        for key, value in items.items():
            await self.set(key, value, ttl=ttl)

    async def add_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        """``add`` each item: stores those whose key is absent (a fill never overwrites a newer write)."""
        for key, value in items.items():
            await self.add(key, value, ttl=ttl)

    async def get_or_fill(self, key: str, fill: Callable[[], Awaitable[bytes | None]], *, ttl: float | None = None) -> bytes | None:
        """``get_many_or_fill`` for one key: ``fill()`` returns its value, or None if there is none."""
        async def fill_one(keys: list[str]) -> dict[str, bytes]:
            value = await fill()
            return {} if value is None else {key: value}

        return (await self.get_many_or_fill([key], fill_one, ttl=ttl)).get(key)

    async def get_many_or_fill(self, keys: Iterable[str], fill: Fill, *, ttl: float | None = None) -> dict[str, bytes]:
        """The values of ``keys``: from the cache, else from ``fill(missing)`` (the values it finds, by
        key; an absent key has none), which are then added with ``ttl``.

        Single flight per process: a key that another caller of this process is filling now is
        awaited, not filled again, so a hot key that just expired or was invalidated costs one
        database read per process, not one per request. It never costs read-your-writes: a
        ``delete`` of the key (a writer's invalidation) detaches the fill in flight, whose value
        is then neither cached nor awaited by anyone later, and a request carrying its own recent
        write (a read position: ``summit.ports.sql``) fills for itself. If a fill fails, each
        waiter fills its keys itself (and meets the error itself)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        found = await self.get_many(keys)
        missing = [key for key in keys if key not in found]
        if not missing:
            return found
        flights = self._flights()
        position = read_position()
        joinable = position is None or not position.value
        awaited = {key: flights[key] for key in missing if key in flights} if joinable else {}
        mine = [key for key in missing if key not in awaited]
        if mine:
            found.update(await self._fly(mine, fill, ttl, shared=joinable))
        if awaited:
            await asyncio.wait({flight.done for flight in awaited.values()})
            again = [key for key, flight in awaited.items() if flight.done.cancelled()]
            for key, flight in awaited.items():
                if not flight.done.cancelled() and key in flight.done.result():
                    found[key] = flight.done.result()[key]
            if again:
                found.update(await self._fly(again, fill, ttl, shared=True))
        return found

    def _flights(self) -> dict[str, _Flight]:
        return self.__dict__.setdefault("_summit_flights", {})

    def _detach(self, keys: Iterable[str] | None) -> None:
        """A write invalidated ``keys`` (None: every key): fills in flight for them are stale."""
        flights = self.__dict__.get("_summit_flights")
        if flights:
            for key in list(flights) if keys is None else keys:
                flight = flights.pop(key, None)
                if flight is not None:
                    flight.stale.add(key)

    async def _fly(self, keys: list[str], fill: Fill, ttl: float | None, *, shared: bool) -> dict[str, bytes]:
        """Fill ``keys``; ``shared``: as the one flight that later callers of this process await."""
        flight = _Flight(asyncio.get_running_loop().create_future())
        flights = self._flights()
        if shared:
            for key in keys:
                flights[key] = flight
        try:
            wanted = set(keys)
            filled = {key: check_value(value) for key, value in (await fill(keys)).items() if key in wanted}
            fresh = {key: value for key, value in filled.items() if key not in flight.stale}
            if fresh:
                await self.add_many(fresh, ttl=ttl)
        except BaseException:
            flight.done.cancel()  # the waiters fill for themselves
            raise
        finally:
            for key in keys:
                if flights.get(key) is flight:
                    del flights[key]
        flight.done.set_result(filled)
        return filled


class _Flight:
    """A fill in flight: its result, and the keys a write invalidated meanwhile (not to be cached)."""

    __slots__ = ("done", "stale")

    def __init__(self, done: asyncio.Future[dict[str, bytes]]):
        self.done = done
        self.stale: set[str] = set()


def _detaching(fn: Callable[..., Awaitable[object]], every: bool) -> Callable[..., Awaitable[object]]:
    """Wrap an adapter's ``delete`` (``clear``: ``every``) to detach the fills in flight first."""
    async def wrapped(self: Cache, *args: object, **kwargs: object) -> object:
        self._detach(None if every else [args[0] if args else kwargs["key"]])  # type: ignore[list-item]
        return await fn(self, *args, **kwargs)

    functools.update_wrapper(wrapped, fn)
    wrapped._summit_detaching = True  # type: ignore[attr-defined]
    return wrapped


def check_value(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"cache values are bytes, got {type(value).__name__}")
    return bytes(value)


def check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and ttl <= 0:
        raise ValueError(f"ttl must be positive seconds or None, got {ttl}")
    return ttl

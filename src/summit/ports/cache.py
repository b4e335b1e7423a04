"""The cache port: bytes by key, with a time to live, lossy by design.

A cache may drop any entry at any time (memory bound, restart, eviction); the application must
treat a miss as normal. Values are bytes: the caller chooses the encoding.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

from summit import telemetry


class CacheError(Exception):
    """Base of the cache port's errors; adapters wrap their driver's errors in it."""


class Cache(abc.ABC):
    # Do all the processes that open the same URL see the same entries (a server, not process memory)?
    shared: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.count_cache_reads(cls)
        telemetry.instrument(cls, "cache", {"get": "get", "get_many": "get_many", "set": "set", "add": "add", "delete": "delete", "incr": "incr", "clear": "clear"})

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


def check_value(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"cache values are bytes, got {type(value).__name__}")
    return bytes(value)


def check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and ttl <= 0:
        raise ValueError(f"ttl must be positive seconds or None, got {ttl}")
    return ttl

"""The cache port in process: ``memory://?max_items=10000``.

Per-item TTL (on the monotonic clock), at most ``max_items`` entries with the least recently used
evicted first, one lock for thread safety. An expired entry is never returned, and counts as absent
for ``add`` and ``incr``; it is dropped when next touched or evicted in its LRU turn.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from summit.ports.cache import Cache, CacheError, check_ttl, check_value

_INTEGER = re.compile(rb"-?[0-9]{1,19}")  # what incr accepts, as Redis: a signed 64-bit decimal
_INT64 = range(-(1 << 63), 1 << 63)


class MemoryCache(Cache):
    def __init__(self, max_items: int = 10_000):
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be a positive integer, got {max_items!r}")
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()  # least recent first
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryCache:
        parts = urlsplit(url)
        if parts.scheme.lower() != "memory" or parts.netloc or parts.path.strip("/") or parts.fragment:
            raise ValueError(f"{url!r}: the memory cache URL is memory:// or memory://?max_items=N")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"max_items"})
        if unknown:
            raise ValueError(f"{url!r}: unknown option {', '.join(unknown)}; the memory cache takes max_items")
        raw = options.get("max_items", ["10000"])[-1]
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise ValueError(f"{url!r}: max_items must be a positive integer, got {raw!r}")
        return cls(max_items=int(raw))

    def _live(self, key: str, now: float) -> bytes | None:
        """The value if present and not expired, marked most recently used. Call under the lock."""
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return entry[0]

    def _store(self, key: str, value: bytes, expires: float | None) -> None:
        """Store as most recently used, evicting the least recently used beyond max_items."""
        self._items[key] = (value, expires)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key, time.monotonic())

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        now = time.monotonic()
        with self._lock:
            values = {key: self._live(key, now) for key in keys}
        return {key: value for key, value in values.items() if value is not None}

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        value, ttl = check_value(value), check_ttl(ttl)
        now = time.monotonic()
        with self._lock:
            self._store(key, value, None if ttl is None else now + ttl)

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        value, ttl = check_value(value), check_ttl(ttl)
        now = time.monotonic()
        with self._lock:
            if self._live(key, now) is not None:
                return False
            self._store(key, value, None if ttl is None else now + ttl)
            return True

    async def delete(self, key: str) -> bool:
        with self._lock:
            present = self._live(key, time.monotonic()) is not None
            self._items.pop(key, None)
            return present

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"incr amount is an int, got {type(amount).__name__}")
        ttl = check_ttl(ttl)
        now = time.monotonic()
        with self._lock:
            current = self._live(key, now)
            if current is None:  # created at 0, with the ttl
                total, expires = amount, None if ttl is None else now + ttl
            elif _INTEGER.fullmatch(current):  # the ttl it has stays
                total, expires = int(current) + amount, self._items[key][1]
            else:
                raise CacheError(f"cannot incr {key!r}: its value is not an integer")
            if total not in _INT64:
                raise CacheError(f"cannot incr {key!r}: the result does not fit 64 bits")
            self._store(key, str(total).encode(), expires)
            return total

    async def clear(self) -> None:
        with self._lock:
            self._items.clear()

"""What is particular to the in-process cache: LRU, threads, URL (the cache contract runs on it in
``test_cache.py``)."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from summit.adapters.memory.cache import MemoryCache
from summit.wiring import open_port


async def test_evicts_the_least_recently_used_beyond_max_items() -> None:
    cache = MemoryCache(max_items=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode())
    assert await cache.get("a") == b"a"  # a is now the most recently used: b is the least
    await cache.set("d", b"d")
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": b"a", "c": b"c", "d": b"d"}
    await cache.set("c", b"c2")  # a write is a use too: a is now the least recently used
    assert await cache.incr("n") == 1
    assert await cache.get_many(["a", "c", "d", "n"]) == {"c": b"c2", "d": b"d", "n": b"1"}
    assert await cache.add("e", b"e") is True
    assert await cache.get_many(["c", "d", "e", "n"]) == {"d": b"d", "e": b"e", "n": b"1"}


async def test_max_items_of_one() -> None:
    cache = MemoryCache.from_url("memory://?max_items=1")
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert await cache.get_many(["a", "b"]) == {"b": b"2"}


async def test_each_instance_has_its_own_entries() -> None:
    first, second = MemoryCache.from_url("memory://"), MemoryCache.from_url("memory://")
    await first.set("k", b"v")
    assert await second.get("k") is None
    await second.clear()
    assert await first.get("k") == b"v"


def test_threads_sharing_one_cache() -> None:
    cache = MemoryCache(max_items=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        async def run() -> None:
            for i in range(500):
                await cache.incr("total")
                await cache.set(f"t{n}:{i}", b"x")  # keeps eviction busy
                await cache.get(f"t{(n + 1) % 8}:{i}")
                await cache.add(f"t{n}:{i % 7}", b"y")

        try:
            asyncio.run(run())
        except BaseException as error:  # reported below, in the test's own thread
            errors.append(error)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to expose races
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert asyncio.run(cache.get("total")) == b"4000"
    assert len(cache._items) <= 50


def test_defaults_and_the_wiring() -> None:
    assert MemoryCache.from_url("memory://").max_items == 10_000
    cache = open_port("cache", "memory://?max_items=10000")
    assert isinstance(cache, MemoryCache) and cache.max_items == 10_000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://?max_items=0", "max_items must be a positive integer"),
        ("memory://?max_items=-5", "max_items must be a positive integer"),
        ("memory://?max_items=ten", "max_items must be a positive integer"),
        ("memory://?max_items=", "max_items must be a positive integer"),
        ("memory://?maxitems=10", "unknown option maxitems"),
        ("memory://somewhere", "memory://"),
        ("redis://localhost", "memory://"),
    ],
)
def test_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryCache.from_url(url)


def test_constructor_checks_max_items() -> None:
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError):
            MemoryCache(max_items=bad)  # type: ignore[arg-type]

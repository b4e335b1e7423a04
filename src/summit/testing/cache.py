"""The contract every adapter of the cache port passes.

    class TestCache(CacheContract):
        backend = backend_fixture("cache")   # the adapters of summit.testing.backends

Each adapter is opened from its URL: fresh and empty, room for at least 100 items. A subclass may
instead provide the ``cache`` fixture itself (yield a fresh adapter, close it afterwards).

TTLs here are short (a fraction of a second) and each check of "still there" is made only while
the TTL surely has not run out, so the suite holds on a loaded machine.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from summit.ports.cache import Cache, CacheError
from summit.testing.backends import Backend

SHORT = 0.2  # seconds: a TTL the tests wait out
WAIT = SHORT + 0.3  # long enough for a SHORT entry to be surely gone
LONG = 60.0  # a TTL that does not run out during a test


class CacheContract:
    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError('a subclass sets backend = backend_fixture("cache"), or provides `cache`')

    @pytest.fixture
    async def cache(self, backend: Backend):
        cache = backend.open("cache")
        yield cache
        await cache.close()

    # get / set / delete

    async def test_get_missing(self, cache: Cache) -> None:
        assert await cache.get("missing") is None

    async def test_set_get(self, cache: Cache) -> None:
        await cache.set("k", b"value")
        assert await cache.get("k") == b"value"
        await cache.set("k", b"other")
        assert await cache.get("k") == b"other"

    async def test_values_are_bytes_of_any_kind(self, cache: Cache) -> None:
        await cache.set("empty", b"")
        await cache.set("binary", bytes(range(256)))
        await cache.set("big", b"x" * (512 * 1024))
        await cache.set("bytearray", bytearray(b"ba"))
        await cache.set("memoryview", memoryview(b"mv"))
        assert await cache.get("empty") == b""  # an empty value is not a miss
        assert await cache.get("binary") == bytes(range(256))
        assert await cache.get("big") == b"x" * (512 * 1024)
        for key, expected in (("bytearray", b"ba"), ("memoryview", b"mv")):
            value = await cache.get(key)
            assert type(value) is bytes and value == expected

    async def test_keys_are_independent(self, cache: Cache) -> None:
        await cache.set("a", b"1")
        await cache.set("A", b"2")
        await cache.set("a:b c/é", b"3")
        assert await cache.get_many(["a", "A", "a:b c/é"]) == {"a": b"1", "A": b"2", "a:b c/é": b"3"}

    async def test_delete(self, cache: Cache) -> None:
        await cache.set("k", b"v")
        await cache.set("other", b"o")
        assert await cache.delete("k") is True
        assert await cache.get("k") is None
        assert await cache.delete("k") is False
        assert await cache.delete("never") is False
        assert await cache.get("other") == b"o"

    async def test_non_bytes_values_are_refused(self, cache: Cache) -> None:
        for value in ("text", 1, None, 1.5, ["b"]):
            with pytest.raises(TypeError):
                await cache.set("k", value)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                await cache.add("k", value)  # type: ignore[arg-type]
        assert await cache.get("k") is None

    @pytest.mark.parametrize("ttl", [0, -1, -0.5])
    async def test_ttl_must_be_positive(self, cache: Cache, ttl: float) -> None:
        with pytest.raises(ValueError):
            await cache.set("k", b"v", ttl=ttl)
        with pytest.raises(ValueError):
            await cache.add("k", b"v", ttl=ttl)
        with pytest.raises(ValueError):
            await cache.incr("n", ttl=ttl)
        assert await cache.get_many(["k", "n"]) == {}

    # time to live

    async def test_ttl_expiry(self, cache: Cache) -> None:
        start = time.monotonic()
        await cache.set("short", b"s", ttl=SHORT)
        value = await cache.get("short")
        if time.monotonic() - start < SHORT:
            assert value == b"s"
        await cache.set("long", b"l", ttl=LONG)
        await asyncio.sleep(WAIT)
        assert await cache.get("short") is None
        assert await cache.get("long") == b"l"
        assert await cache.delete("short") is False  # an expired key is absent

    async def test_set_without_ttl_persists(self, cache: Cache) -> None:
        await cache.set("forever", b"f")
        await asyncio.sleep(WAIT)
        assert await cache.get("forever") == b"f"

    async def test_set_replaces_the_ttl(self, cache: Cache) -> None:
        await cache.set("k", b"1", ttl=SHORT)
        await cache.set("k", b"2")  # no ttl: the new value does not expire
        await cache.set("j", b"1")
        await cache.set("j", b"2", ttl=SHORT)
        await asyncio.sleep(WAIT)
        assert await cache.get("k") == b"2"
        assert await cache.get("j") is None

    # add

    async def test_add_sets_only_if_absent(self, cache: Cache) -> None:
        assert await cache.add("k", b"first") is True
        assert await cache.add("k", b"second") is False
        assert await cache.get("k") == b"first"
        await cache.delete("k")
        assert await cache.add("k", b"third") is True
        assert await cache.get("k") == b"third"

    async def test_add_over_an_expired_entry(self, cache: Cache) -> None:
        await cache.set("k", b"old", ttl=SHORT)
        await asyncio.sleep(WAIT)
        assert await cache.add("k", b"new") is True
        assert await cache.get("k") == b"new"

    async def test_add_with_ttl(self, cache: Cache) -> None:
        assert await cache.add("k", b"v", ttl=SHORT) is True
        await asyncio.sleep(WAIT)
        assert await cache.get("k") is None
        assert await cache.add("k", b"again", ttl=LONG) is True
        assert await cache.get("k") == b"again"

    async def test_concurrent_adds_store_once(self, cache: Cache) -> None:
        results = await asyncio.gather(*(cache.add("lock", str(n).encode()) for n in range(20)))
        assert results.count(True) == 1
        winner = results.index(True)
        assert await cache.get("lock") == str(winner).encode()

    # incr

    async def test_incr_creates_and_adds(self, cache: Cache) -> None:
        assert await cache.incr("n") == 1
        assert await cache.incr("n") == 2
        assert await cache.incr("n", 5) == 7
        assert await cache.incr("n", -10) == -3
        assert await cache.get("n") == b"-3"
        assert await cache.incr("m", -4) == -4
        assert await cache.incr("z", 0) == 0

    async def test_incr_of_a_value_set_as_decimal_bytes(self, cache: Cache) -> None:
        await cache.set("n", b"41")
        assert await cache.incr("n") == 42
        await cache.set("negative", b"-5")
        assert await cache.incr("negative", 2) == -3

    @pytest.mark.parametrize("value", [b"abc", b"1.5", b"", b"1e3", b"\x00"])
    async def test_incr_of_a_non_integer_fails(self, cache: Cache, value: bytes) -> None:
        await cache.set("n", value)
        with pytest.raises(CacheError):
            await cache.incr("n")
        assert await cache.get("n") == value

    async def test_incr_amount_must_be_an_int(self, cache: Cache) -> None:
        for amount in (1.5, "1", None):
            with pytest.raises(TypeError):
                await cache.incr("n", amount)  # type: ignore[arg-type]

    async def test_incr_ttl_applies_when_created(self, cache: Cache) -> None:
        assert await cache.incr("n", ttl=SHORT) == 1
        await asyncio.sleep(WAIT)
        assert await cache.get("n") is None
        assert await cache.incr("n", ttl=LONG) == 1  # created again, from 0

    async def test_incr_keeps_the_ttl_of_an_existing_counter(self, cache: Cache) -> None:
        start = time.monotonic()
        assert await cache.incr("n", ttl=SHORT) == 1
        second = await cache.incr("n", ttl=LONG)
        if time.monotonic() - start >= SHORT:
            pytest.skip("the machine stalled longer than the TTL")
        assert second == 2
        await asyncio.sleep(WAIT)
        assert await cache.get("n") is None
        assert await cache.incr("forever") == 1
        assert await cache.incr("forever", ttl=SHORT) == 2
        await asyncio.sleep(WAIT)
        assert await cache.get("forever") == b"2"

    async def test_concurrent_incr_loses_no_update(self, cache: Cache) -> None:
        async def bump(times: int) -> None:
            for _ in range(times):
                await cache.incr("hits")

        await asyncio.gather(*(bump(20) for _ in range(50)))
        assert await cache.get("hits") == b"1000"
        assert await cache.incr("hits", 0) == 1000

    # get_many / clear

    async def test_get_many(self, cache: Cache) -> None:
        await cache.set("a", b"1")
        await cache.set("b", b"")
        await cache.set("gone", b"x", ttl=SHORT)
        await asyncio.sleep(WAIT)
        assert await cache.get_many(["a", "b", "gone", "missing"]) == {"a": b"1", "b": b""}
        assert await cache.get_many([]) == {}
        assert await cache.get_many(key for key in ("a",)) == {"a": b"1"}

    async def test_clear(self, cache: Cache) -> None:
        for n in range(10):
            await cache.set(f"k{n}", b"v")
        await cache.incr("counter")
        await cache.clear()
        assert await cache.get_many([f"k{n}" for n in range(10)] + ["counter"]) == {}
        assert await cache.add("k0", b"new") is True
        assert await cache.incr("counter") == 1

    async def test_holds_at_least_a_hundred_items(self, cache: Cache) -> None:
        keys = [f"item:{n}" for n in range(100)]
        for key in keys:
            await cache.set(key, key.encode())
        assert await cache.get_many(keys) == {key: key.encode() for key in keys}

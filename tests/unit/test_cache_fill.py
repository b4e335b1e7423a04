"""``Cache.get_many_or_fill``: cache-aside with single flight per process, written once in the port
(here on the in-process adapter; ``tests/contract/test_cache_redis.py`` runs it on Redis)."""

from __future__ import annotations

import asyncio

import pytest

from summit.wiring import open_port


@pytest.fixture
async def cache():  # noqa: ANN201
    cache = open_port("cache", "memory://?max_items=100")
    yield cache
    await cache.close()


async def test_concurrent_misses_wait_for_one_fill_and_absent_keys_are_not_cached(cache) -> None:  # noqa: ANN001
    calls: list[list[str]] = []

    async def fill(keys: list[str]) -> dict[str, bytes]:
        calls.append(keys)
        await asyncio.sleep(0.02)
        return {key: b"v" for key in keys if key != "gone"} | {"unasked": b"x"}

    results = await asyncio.gather(*(cache.get_many_or_fill(["a", "b", "gone"], fill, ttl=60) for _ in range(10)))
    assert results == [{"a": b"v", "b": b"v"}] * 10
    assert calls == [["a", "b", "gone"]]
    assert await cache.get_many(["a", "b", "gone", "unasked"]) == {"a": b"v", "b": b"v"}
    # a hit needs no fill; a partial hit fills only what is missing
    assert await cache.get_many_or_fill(["a", "c"], fill, ttl=60) == {"a": b"v", "c": b"v"}
    assert calls[-1] == ["c"]
    assert await cache.get_many_or_fill([], fill) == {}


async def test_a_fill_never_overwrites_what_a_writer_stored_meanwhile(cache) -> None:  # noqa: ANN001
    async def fill(keys: list[str]) -> dict[str, bytes]:
        await cache.set("k", b"newer")  # a write lands while the fill reads the database
        return {"k": b"older"}

    assert await cache.get_many_or_fill(["k"], fill) == {"k": b"older"}
    assert await cache.get("k") == b"newer"


async def test_when_the_fill_fails_each_waiter_fills_for_itself(cache) -> None:  # noqa: ANN001
    calls = 0

    async def fill(keys: list[str]) -> dict[str, bytes]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        if calls == 1:
            raise RuntimeError("the database is briefly unavailable")
        return {key: b"v" for key in keys}

    first, *others = await asyncio.gather(*(cache.get_many_or_fill(["k"], fill) for _ in range(3)), return_exceptions=True)
    assert isinstance(first, RuntimeError)
    assert others == [{"k": b"v"}, {"k": b"v"}]
    assert await cache.get_or_fill("k", lambda: pytest.fail("cached: no fill")) == b"v"  # type: ignore[arg-type, return-value]


async def test_get_or_fill_of_one_key(cache) -> None:  # noqa: ANN001
    async def fill() -> bytes | None:
        return b"one"

    async def nothing() -> bytes | None:
        return None

    assert await cache.get_or_fill("k", fill, ttl=60) == b"one"
    assert await cache.get("k") == b"one"
    assert await cache.get_or_fill("absent", nothing) is None
    assert await cache.get("absent") is None


async def test_a_delete_during_a_fill_detaches_it_so_later_readers_see_the_write(cache) -> None:  # noqa: ANN001
    """Read-your-writes: a fill that read before a write committed is neither cached nor joined
    by a read that starts after the writer's invalidation."""
    database = {"post:1": b"before"}
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_fill(keys: list[str]) -> dict[str, bytes]:
        value = database["post:1"]  # read before the write commits
        started.set()
        await release.wait()
        return {"post:1": value}

    async def fill(keys: list[str]) -> dict[str, bytes]:
        return {"post:1": database["post:1"]}

    early = asyncio.create_task(cache.get_many_or_fill(["post:1"], slow_fill))
    await started.wait()
    database["post:1"] = b"after"  # the write commits, then invalidates
    await cache.delete("post:1")
    assert await cache.get_many_or_fill(["post:1"], fill) == {"post:1": b"after"}  # not the early flight
    release.set()
    assert await early == {"post:1": b"before"}  # it began before the write: that is its answer
    assert await cache.get("post:1") == b"after"  # and its old value was not cached


async def test_a_client_with_its_own_recent_write_fills_for_itself(cache) -> None:  # noqa: ANN001
    from summit.ports.sql import track_writes, untrack

    release = asyncio.Event()
    calls = 0

    async def fill(keys: list[str]) -> dict[str, bytes]:
        nonlocal calls
        calls += 1
        mine = calls
        if mine == 1:
            await release.wait()
        return {"k": str(mine).encode()}

    other = asyncio.create_task(cache.get_many_or_fill(["k"], fill))
    await asyncio.sleep(0.01)
    _, token = track_writes("0/1A2B3C")  # this request wrote a moment ago (another process)
    try:
        assert await cache.get_many_or_fill(["k"], fill) == {"k": b"2"}  # not the flight of another request
    finally:
        untrack(token)
    release.set()
    assert await other == {"k": b"1"}

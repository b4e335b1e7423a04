"""What is particular to the Redis cache (the cache contract runs on it in ``test_cache.py``): one
cache for every process, a Redis that is frozen or killed (a miss and a skipped write, within the
timeout, then back to work), ``clear`` within its own prefix, its URL, and single flight."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from summit.adapters.redis import cache as redis_cache
from summit.engines.state import without_secrets
from summit.ports.cache import CacheError, CacheUnavailable
from summit.wiring import open_port

pytestmark = pytest.mark.redis

TIMEOUT_MS = 200
BOUND = 1.0  # seconds any one call may take with Redis frozen or gone (timeout_ms, with room for a loaded machine)


@pytest.fixture
async def pair(redis_db):  # noqa: ANN001, ANN201
    """Two adapters on the same URL: two web processes of a stage."""
    first, second = open_port("cache", redis_db.url), open_port("cache", redis_db.url)
    yield first, second
    await first.close()
    await second.close()


async def test_two_processes_see_each_others_writes_and_deletes_at_once(pair) -> None:  # noqa: ANN001
    first, second = pair
    assert first.shared and second.shared
    await first.set("post:1", b"v1", ttl=60)
    assert await second.get("post:1") == b"v1"
    await second.set("post:1", b"v2")
    assert await first.get_many(["post:1", "post:2"]) == {"post:1": b"v2"}
    assert await first.delete("post:1") is True
    assert await second.get("post:1") is None
    assert await first.add("lock", b"a") is True and await second.add("lock", b"b") is False
    assert await first.incr("n") == 1 and await second.incr("n", 2) == 3


async def test_clear_removes_only_its_own_prefix(redis_db, redis_server) -> None:  # noqa: ANN001
    mine = open_port("cache", redis_db.url)
    # a sibling prefix with glob characters: unescaped, "t1*[:*" would match every key of "t1:" too
    sibling = redis_db.prefix.rstrip(":") + "*[:"
    other = open_port("cache", redis_server.url(prefix=sibling))
    try:
        for n in range(1200):  # more than one SCAN page and one UNLINK batch
            await mine.set(f"k{n}", b"x")
        await other.set("k0", b"kept")
        await other.clear()
        assert await other.get("k0") is None
        assert len(redis_server.keys(redis_db.prefix + "k*")) == 1200
        await other.set("k0", b"kept")
        await mine.clear()
        assert await mine.get_many([f"k{n}" for n in range(0, 1200, 97)]) == {}
        assert await other.get("k0") == b"kept"
        assert redis_server.keys(redis_db.prefix + "*") == []
    finally:
        await other.clear()
        await mine.close()
        await other.close()


async def _timed(call) -> tuple[object, float]:  # noqa: ANN001
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


@pytest.mark.slow
async def test_a_frozen_redis_is_a_miss_within_the_timeout_and_then_it_works_again(redis_db, redis_server, caplog) -> None:  # noqa: ANN001
    cache = open_port("cache", redis_db.url_with(timeout_ms=TIMEOUT_MS))
    other = open_port("cache", redis_db.url)
    caplog.set_level(logging.WARNING, logger="summit.cache.redis")
    try:
        await cache.set("user:1", b"old", ttl=60)
        await cache.set("user:2", b"kept", ttl=60)
        redis_server.freeze()
        try:
            for _ in range(3):  # the first pays the timeout and opens the breaker; the others skip Redis
                for call in (cache.get("user:1"), cache.get_many(["user:1", "user:2"]), cache.set("user:1", b"new"),
                             cache.delete("user:3"), cache.add("user:4", b"x")):
                    result, took = await _timed(call)
                    assert result in (None, {}, False) and took < BOUND, (result, took)
            with pytest.raises(CacheUnavailable):
                await cache.incr("n")
            _, took = await _timed(cache.get("user:1"))
            assert took < 0.05  # the breaker is open: no timeout paid per call
        finally:
            redis_server.freeze(frozen=False)
        await asyncio.sleep(redis_cache.BREAK_SECONDS + 0.1)
        # back: the entry a skipped write may have left stale is gone before anything else is read
        assert await cache.get("user:1") is None
        assert await other.get("user:1") is None
        assert await other.get("user:2") == b"kept"  # the rest of the cache survived the freeze
        await cache.set("user:1", b"fresh")
        assert await other.get("user:1") == b"fresh"
        assert await cache.incr("n") == 1
    finally:
        await cache.close()
        await other.close()
    reports = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(reports) == 1, [r.getMessage() for r in caplog.records]  # once per outage window, not per call
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert all(redis_server.server.password(redis_server.stage.layout) not in r.getMessage() for r in caplog.records)


@pytest.mark.slow
async def test_a_killed_redis_is_a_miss_and_a_restarted_one_works_again(redis_db, redis_server) -> None:  # noqa: ANN001
    cache = open_port("cache", redis_db.url_with(timeout_ms=TIMEOUT_MS))
    try:
        await cache.set("k", b"v")
        redis_server.kill()
        try:
            for call in (cache.get("k"), cache.set("k", b"w"), cache.delete("k"), cache.get_many(["k"]), cache.clear()):
                result, took = await _timed(call)
                assert result in (None, {}, False) and took < BOUND, (result, took)
        finally:
            await asyncio.to_thread(redis_server.restart)
        await asyncio.sleep(redis_cache.BREAK_SECONDS + 0.1)
        assert await cache.get("k") is None  # a restarted Redis is empty: nothing is persisted
        await cache.set("k", b"again")
        assert await cache.get("k") == b"again"
    finally:
        await cache.close()


async def test_errors_redis_answers_are_the_callers_not_an_outage(redis_db) -> None:  # noqa: ANN001
    cache = open_port("cache", redis_db.url)
    try:
        await cache.set("n", b"not a number")
        with pytest.raises(CacheError):
            await cache.incr("n")
        assert await cache.get("n") == b"not a number"  # the breaker did not open
    finally:
        await cache.close()


async def test_concurrent_misses_of_a_hot_key_fill_it_once_per_process(pair) -> None:  # noqa: ANN001
    first, second = pair
    fills: list[list[str]] = []

    async def fill(keys: list[str]) -> dict[str, bytes]:
        fills.append(keys)
        await asyncio.sleep(0.05)  # the database read
        return {key: key.encode() for key in keys if key != "post:gone"}

    results = await asyncio.gather(*(first.get_many_or_fill(["post:1", "post:2", "post:gone"], fill, ttl=60) for _ in range(20)))
    assert all(r == {"post:1": b"post:1", "post:2": b"post:2"} for r in results)
    assert len(fills) == 1
    assert await second.get_many(["post:1", "post:2", "post:gone"]) == {"post:1": b"post:1", "post:2": b"post:2"}
    assert await second.get_or_fill("post:1", lambda: pytest.fail("a hit needs no fill"), ttl=60) == b"post:1"  # type: ignore[arg-type]


def test_url_options_and_what_is_shown(redis_server) -> None:  # noqa: ANN001
    url = redis_server.url(prefix="app:", timeout_ms=50, max_connections=5)
    cache = open_port("cache", url)
    password = redis_server.server.password(redis_server.stage.layout)
    assert (cache.prefix, cache.timeout, cache._slots) == ("app:", 0.05, 5)
    assert password in url and password not in without_secrets(url) and ":***@" in without_secrets(url)
    assert password not in cache.where
    defaults = open_port("cache", "redis://127.0.0.1")
    assert (defaults.prefix, defaults.timeout, defaults._slots) == ("summit:", 0.2, 64)
    assert open_port("cache", "rediss://:pw@127.0.0.1:6380/2").where.startswith("rediss://127.0.0.1:6380/2")
    for bad, complaint in (("redis://:s3cret@127.0.0.1/0?colour=blue", "unknown option colour"),
                           ("redis://:s3cret@127.0.0.1/zero", "database is a number"),
                           ("redis://:s3cret@127.0.0.1/0?timeout_ms=0", "timeout_ms must be"),
                           ("redis://:s3cret@127.0.0.1/0?max_connections=x", "max_connections must be"),
                           ("redis://:s3cret@127.0.0.1/0?prefix=", "prefix must not be empty"),
                           ("redis://:s3cret@/0", "the Redis cache URL is")):
        with pytest.raises(ValueError, match=complaint) as caught:
            open_port("cache", bad)
        assert "s3cret" not in str(caught.value)


async def test_the_reads_of_one_turn_share_one_mget(redis_db, redis_server) -> None:  # noqa: ANN001
    cache = open_port("cache", redis_db.url)
    try:
        await cache.set_many({f"post:{n}": f"v{n}".encode() for n in range(40)})
        await cache.get("warm")  # the connection is open
        before = redis_server.command_calls("mget")
        wanted = [[f"post:{n}", f"post:{n + 1}", "post:none"] for n in range(0, 40, 2)]
        answers = await asyncio.gather(*(cache.get_many(keys) for keys in wanted), cache.get("post:7"), cache.get("post:none"))
        assert redis_server.command_calls("mget") == before + 1  # 22 reads, one round trip
        for keys, found in zip(wanted, answers):
            assert found == {keys[0]: keys[0].replace("post:", "v").encode(), keys[1]: keys[1].replace("post:", "v").encode()}
        assert answers[-2:] == [b"v7", None]
        assert await cache.get_many(["post:3"]) == {"post:3": b"v3"}  # alone: a batch of its own, at once
        assert redis_server.command_calls("mget") == before + 2
    finally:
        await cache.close()


async def test_a_cancelled_read_leaves_the_batch_to_the_others(redis_db) -> None:  # noqa: ANN001
    cache = open_port("cache", redis_db.url)
    try:
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        first = asyncio.ensure_future(cache.get_many(["a"]))  # opens the batch
        second = asyncio.ensure_future(cache.get_many(["b"]))  # joins it
        third = asyncio.ensure_future(cache.get_many(["a", "b"]))
        await asyncio.sleep(0)  # both have started: the batch is open with both keys
        first.cancel()
        second.cancel()
        assert await asyncio.wait_for(third, 2) == {"a": b"1", "b": b"2"}
        assert first.cancelled() and second.cancelled()
        assert await cache.get_many(["a", "b"]) == {"a": b"1", "b": b"2"}
    finally:
        await cache.close()


async def test_a_read_cancelled_while_its_batch_is_sent_is_a_miss_for_the_others(redis_db) -> None:  # noqa: ANN001
    cache = open_port("cache", redis_db.url)
    try:
        await cache.set("a", b"1")
        leader = asyncio.ensure_future(cache.get_many(["a"]))  # opens the batch
        follower = asyncio.ensure_future(cache.get_many(["a"]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the leader is sending the MGET now
        leader.cancel()
        assert await asyncio.wait_for(follower, 2) in ({}, {"a": b"1"})  # a miss, or the answer: never an error
        assert await cache.get("a") == b"1"
    finally:
        await cache.close()

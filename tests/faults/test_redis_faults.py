"""Redis faults under the app: the app on a fresh PostgreSQL database with its cache on the
session's Redis (as at stage 10k), built in-process. Redis frozen or killed under a bounded read
load fails no request (the database takes the reads); once it is back the cache fills again. And
one Redis for every app process: a sign-out everywhere reaches a second app instance at once.
Every load is bounded in count and time; everything runs on loopback."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from summit.adapters.redis import cache as redis_cache
from summit.blueprint import Blueprint, load_blueprint

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

API = "/api/v1"


@pytest.fixture
def blueprint(tmp_path, postgres_db, redis_db) -> Blueprint:  # noqa: ANN001
    """The app's blueprint (the conftest's ``app``, ``client``, ``make_user`` build on it)."""
    url = postgres_db.url
    return load_blueprint(environ={}, overrides={
        "data_dir": str(tmp_path / "data"), "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024},
        "ports": {"sql": url, "queue": url + "&max_receives=5", "cache": redis_db.url_with(timeout_ms=200)},
    })


async def cache_lookups(client: httpx.AsyncClient, namespace: str, result: str) -> float:
    for family in text_string_to_metric_families((await client.get("/metrics")).text):
        for sample in family.samples:
            if sample.name == "summit_cache_lookups_total" and sample.labels == {"namespace": namespace, "result": result}:
                return sample.value
    return 0.0


@pytest.mark.parametrize("fault", ["freeze", "kill"])
async def test_losing_redis_under_read_load_fails_no_request_and_the_cache_refills(  # noqa: ANN001
        app, client, make_user, make_post, redis_db, redis_server, fault: str) -> None:
    alice, bob = await make_user(), await make_user()
    assert (await client.put(f"{API}/users/{bob.username}/follow", headers=alice.auth)).status_code in (200, 204)
    post_ids = [(await make_post(bob, f"post {n}"))["id"] for n in range(3)]
    assert app.state.ctx.read_cache is app.state.ctx.cache and app.state.ctx.cache.shared
    assert (await client.get(f"{API}/feed", headers=alice.auth)).status_code == 200  # warm

    statuses: dict[int, int] = {}
    failures: list[str] = []
    during = 0  # requests answered while Redis was out
    out = False
    deadline = time.monotonic() + 5.0
    rng = random.Random(10_000)

    async def reader() -> None:
        nonlocal during
        for _ in range(400):  # bounded in count as well as in time
            if time.monotonic() > deadline:
                return
            path = f"{API}/feed" if rng.random() < 0.5 else f"{API}/posts/{rng.choice(post_ids)}"
            try:
                r = await client.get(path, headers=alice.auth)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code != 200:
                    failures.append(f"{path}: {r.status_code} {r.text[:200]}")
                elif out:
                    during += 1
            except Exception as error:  # noqa: BLE001  (counted: the assertion is that there are none)
                failures.append(f"{path}: {error!r}")
            await asyncio.sleep(0.005)

    async def fault_and_back() -> None:
        nonlocal out
        await asyncio.sleep(1.0)
        out = True
        if fault == "freeze":
            redis_server.freeze()
        else:
            await asyncio.to_thread(redis_server.kill)
        try:
            await asyncio.sleep(2.0)
        finally:
            if fault == "freeze":
                redis_server.freeze(frozen=False)
            else:
                await asyncio.to_thread(redis_server.restart)
            out = False

    await asyncio.wait_for(asyncio.gather(fault_and_back(), *(reader() for _ in range(6))), 60)
    assert failures == [], f"{len(failures)} failed of {sum(statuses.values())}: {failures[:3]}"
    assert during > 20, f"only {during} requests while Redis was out: the test proved nothing"

    await asyncio.sleep(redis_cache.BREAK_SECONDS + 0.2)  # the breaker lets a probe through again
    hits = await cache_lookups(client, "post", "hit")
    for _ in range(3):
        for post_id in post_ids:
            assert (await client.get(f"{API}/posts/{post_id}", headers=alice.auth)).status_code == 200
        assert (await client.get(f"{API}/feed", headers=alice.auth)).status_code == 200
    assert await cache_lookups(client, "post", "hit") > hits, "the cache did not serve again after Redis came back"
    cached = redis_server.keys(redis_db.prefix + "post:*")
    assert {f"{redis_db.prefix}post:{i}" for i in post_ids} <= set(cached)


async def test_a_sign_out_everywhere_reaches_a_second_app_instance_at_once(app, client, make_user, blueprint) -> None:  # noqa: ANN001
    """Two app instances (two web processes) on one Redis and one database: a per-process cache
    would let the second one accept the old token for up to the state's TTL (300 s)."""
    from photos.app import create_app

    user = await make_user()
    second = create_app(blueprint)
    async with LifespanManager(second, startup_timeout=60, shutdown_timeout=30):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://testserver") as other:
            assert (await other.get(f"{API}/me", headers=user.auth)).status_code == 200  # its state is cached now
            assert (await client.get(f"{API}/me", headers=user.auth)).status_code == 200
            assert (await client.delete(f"{API}/sessions/all", headers=user.auth)).status_code == 204
            r = await other.get(f"{API}/me", headers=user.auth)
            assert r.status_code == 401, r.text
            assert (await client.get(f"{API}/me", headers=user.auth)).status_code == 401

"""The read side through the cache (photos.services.reads): warm reads issue no SQL, and what the
cache answers is what the database says, through any history of writes."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families


from photos.api import views
from photos.services import posts, reads
from tests.api.api_helpers import small_jpeg

API = "/api/v1"


async def sql_statements(client, route: str) -> float:  # noqa: ANN001
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "summit_sql_statements_total" and sample.labels == {"method": "GET", "route": route}:
                return sample.value
    return 0.0


async def test_warm_feed_and_post_reads_issue_no_sql(client, make_user, make_post):  # noqa: ANN001
    alice, bob = await make_user(), await make_user()
    await client.put(f"{API}/users/{bob.username}/follow", headers=alice.auth)
    post = await make_post(bob, "warm #cache")
    await make_post(alice, "mine")
    first = await client.get(f"{API}/feed", headers=alice.auth)
    cold = await sql_statements(client, "/api/v1/feed")
    assert cold > 0
    again = await client.get(f"{API}/feed", headers=alice.auth)
    assert again.json() == first.json() and len(first.json()["items"]) == 2
    assert await sql_statements(client, "/api/v1/feed") == cold, "a warm feed read went to the database"

    route = "/api/v1/posts/{post_id}"
    await client.get(f"{API}/posts/{post['id']}", headers=alice.auth)
    cold = await sql_statements(client, route)
    assert (await client.get(f"{API}/posts/{post['id']}", headers=alice.auth)).json()["caption"] == "warm #cache"
    assert await sql_statements(client, route) == cold


async def test_writes_show_in_the_next_read(client, make_user, make_post):  # noqa: ANN001
    alice, bob = await make_user(), await make_user()
    await client.put(f"{API}/users/{bob.username}/follow", headers=alice.auth)
    post = await make_post(bob, "before")
    feed = lambda: client.get(f"{API}/feed", headers=alice.auth)  # noqa: E731
    assert [p["caption"] for p in (await feed()).json()["items"]] == ["before"]
    await client.patch(f"{API}/posts/{post['id']}", headers=bob.auth, json={"caption": "after"})
    await client.put(f"{API}/posts/{post['id']}/like", headers=alice.auth)
    await client.patch(f"{API}/me", headers=bob.auth, json={"display_name": "Robert"})
    [item] = (await feed()).json()["items"]
    assert (item["caption"], item["like_count"], item["liked_by_me"], item["author"]["display_name"]) == ("after", 1, True, "Robert")
    await client.delete(f"{API}/posts/{post['id']}", headers=bob.auth)
    assert (await feed()).json()["items"] == []
    assert (await client.get(f"{API}/posts/{post['id']}")).status_code == 404


async def test_the_cached_read_side_agrees_with_the_database_through_a_random_history(app, client, make_user, monkeypatch):  # noqa: ANN001
    """A seeded random history of writes by four users; after each, every user's feed and timeline,
    page by page, through the cache and without it, are the same. A window of 3 posts per timeline
    makes the merge fall back to the database for deeper pages, on purpose."""
    monkeypatch.setattr(reads, "WINDOW", 3)
    ctx = app.state.ctx
    uncached = copy.copy(ctx)
    uncached.read_cache = None
    uncached.platform = dataclasses.replace(ctx.platform, db=_PrimaryReads(ctx.platform.db))  # the truth: every committed write
    users = [await make_user() for _ in range(4)]
    mine: dict[str, list[str]] = {u.id: [] for u in users}
    rng = random.Random(20261203)

    async def act() -> None:
        user, other = rng.sample(users, 2)
        kind = rng.choice(["post", "post", "post", "delete", "follow", "unfollow", "like", "unlike", "comment", "caption", "name"])
        every = [pid for ids in mine.values() for pid in ids]
        if kind == "post" or (kind in ("delete", "caption") and not mine[user.id]) or (kind in ("like", "unlike", "comment") and not every):
            r = await client.post(f"{API}/posts", headers=user.auth, files={"photo": ("p.jpg", small_jpeg(), "image/jpeg")},
                                  data={"caption": f"#{user.username} post"})
            assert r.status_code == 201, r.text
            mine[user.id].append(r.json()["id"])
        elif kind == "delete":
            pid = mine[user.id].pop(rng.randrange(len(mine[user.id])))
            assert (await client.delete(f"{API}/posts/{pid}", headers=user.auth)).status_code == 204
        elif kind in ("follow", "unfollow"):
            call = client.put if kind == "follow" else client.delete
            assert (await call(f"{API}/users/{other.username}/follow", headers=user.auth)).status_code == 200
        elif kind in ("like", "unlike"):
            call = client.put if kind == "like" else client.delete
            assert (await call(f"{API}/posts/{rng.choice(every)}/like", headers=user.auth)).status_code == 200
        elif kind == "comment":
            r = await client.post(f"{API}/posts/{rng.choice(every)}/comments", headers=user.auth, json={"body": "nice"})
            assert r.status_code == 201
        elif kind == "caption":
            r = await client.patch(f"{API}/posts/{rng.choice(mine[user.id])}", headers=user.auth, json={"caption": "edited"})
            assert r.status_code == 200
        else:
            assert (await client.patch(f"{API}/me", headers=user.auth, json={"display_name": f"n{rng.randrange(99)}"})).status_code == 200

    async def pages(context, read, user_id: int, viewer: int) -> list[dict]:  # noqa: ANN001
        seen, cursor = [], None
        while True:
            page = await read(context, user_id, viewer, cursor)
            seen.append(views.page(page, views.post))
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    feed = lambda c, u, v, cur: posts.feed(c, u, cursor=cur, limit=2)  # noqa: E731
    timeline = lambda c, u, v, cur: posts.user_posts(c, u, viewer_id=v, cursor=cur, limit=2)  # noqa: E731
    for _ in range(60):
        await act()
        await app.state.worker.drain(30)  # the thumbnail jobs write too
        for user in users:
            uid = int(user.id)
            assert await pages(ctx, feed, uid, uid) == await pages(uncached, feed, uid, uid)
            author = int(rng.choice(users).id)
            assert await pages(ctx, timeline, author, uid) == await pages(uncached, timeline, author, uid)


class _PrimaryReads:
    """The app's database, every read of it on the primary (with replicas, a plain read may miss
    another client's write for a moment, by design; this test compares the cache with the truth)."""

    def __init__(self, db) -> None:  # noqa: ANN001
        self._db = db

    def read(self, *, after_write: bool = False):  # noqa: ANN202
        return self._db.read(after_write=True)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._db, name)


@pytest.mark.parametrize("workers, cached", [(1, True), (2, False)])
def test_several_processes_on_a_process_cache_read_from_the_database(blueprint, workers: int, cached: bool) -> None:  # noqa: ANN001
    from photos.services import Context
    from summit.platform import Platform

    platform = Platform.from_blueprint(blueprint.model_copy(update={
        "server": blueprint.server.model_copy(update={"workers": workers}),
        "ports": blueprint.ports.model_copy(update={"cache": "memory://"}),  # a process cache, whatever TEST_CACHE says
    }))
    ctx = Context(platform=platform, identity=None, access=None)  # type: ignore[arg-type]
    assert (ctx.read_cache is platform.cache) is cached

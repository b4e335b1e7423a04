"""API: follows, likes and comments (idempotency of PUT/DELETE, counts, authorization)."""

from __future__ import annotations

from summit import ids
from summit.testing.http import assert_error

API = "/api/v1"


# ---- follows ----------------------------------------------------------------------------------
async def test_follow_and_unfollow_are_idempotent(client, make_user):
    alice, bob = await make_user(), await make_user()
    for _ in range(2):
        r = await client.put(f"{API}/users/{bob.username}/follow", headers=alice.auth)
        assert r.status_code == 200 and r.json() == {"following": True}
    bob_seen_by_alice = (await client.get(f"{API}/users/{bob.username}", headers=alice.auth)).json()
    assert bob_seen_by_alice["followers"] == 1 and bob_seen_by_alice["followed_by_me"] is True
    assert (await client.get(f"{API}/me", headers=alice.auth)).json()["following"] == 1
    assert (await client.get(f"{API}/users/{bob.username}")).json()["followed_by_me"] is False  # anonymous

    for _ in range(2):
        r = await client.delete(f"{API}/users/{bob.username}/follow", headers=alice.auth)
        assert r.status_code == 200 and r.json() == {"following": False}
    bob_seen_by_alice = (await client.get(f"{API}/users/{bob.username}", headers=alice.auth)).json()
    assert bob_seen_by_alice["followers"] == 0 and bob_seen_by_alice["followed_by_me"] is False


async def test_follow_is_by_username_case_insensitively(client, make_user):
    alice, bob = await make_user(), await make_user()
    r = await client.put(f"{API}/users/{bob.username.upper()}/follow", headers=alice.auth)
    assert r.status_code == 200
    assert (await client.get(f"{API}/users/{bob.username}")).json()["followers"] == 1


async def test_follow_errors(client, make_user):
    alice = await make_user()
    assert_error(await client.put(f"{API}/users/{alice.username}/follow", headers=alice.auth), 422, "yourself")
    assert_error(await client.put(f"{API}/users/no_such_person/follow", headers=alice.auth), 404, "user")
    assert_error(await client.delete(f"{API}/users/no_such_person/follow", headers=alice.auth), 404, "user")
    assert_error(await client.put(f"{API}/users/{alice.username}/follow"), 401)
    assert_error(await client.delete(f"{API}/users/{alice.username}/follow"), 401)


async def test_following_puts_posts_in_the_feed_and_unfollowing_takes_them_out(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(bob, "bob's")
    assert (await client.get(f"{API}/feed", headers=alice.auth)).json()["items"] == []
    await client.put(f"{API}/users/{bob.username}/follow", headers=alice.auth)
    assert [p["id"] for p in (await client.get(f"{API}/feed", headers=alice.auth)).json()["items"]] == [post["id"]]
    await client.delete(f"{API}/users/{bob.username}/follow", headers=alice.auth)
    assert (await client.get(f"{API}/feed", headers=alice.auth)).json()["items"] == []


# ---- likes ------------------------------------------------------------------------------------
async def test_like_and_unlike_are_idempotent_with_exact_counts(client, make_user, make_post):
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    post = await make_post(alice)
    url = f"{API}/posts/{post['id']}/like"
    for _ in range(3):
        r = await client.put(url, headers=bob.auth)
        assert r.status_code == 200 and r.json() == {"liked": True, "like_count": 1}
    assert (await client.put(url, headers=carol.auth)).json() == {"liked": True, "like_count": 2}
    assert (await client.put(url, headers=alice.auth)).json() == {"liked": True, "like_count": 3}  # own post: allowed
    got = (await client.get(f"{API}/posts/{post['id']}", headers=bob.auth)).json()
    assert got["like_count"] == 3 and got["liked_by_me"] is True

    for _ in range(3):
        r = await client.delete(url, headers=bob.auth)
        assert r.status_code == 200 and r.json() == {"liked": False, "like_count": 2}
    r = await client.delete(url, headers=bob.auth)
    assert r.json()["like_count"] == 2
    got = (await client.get(f"{API}/posts/{post['id']}", headers=bob.auth)).json()
    assert got["like_count"] == 2 and got["liked_by_me"] is False
    assert (await client.get(f"{API}/posts/{post['id']}", headers=carol.auth)).json()["liked_by_me"] is True


async def test_like_errors(client, make_user, make_post):
    alice = await make_user()
    post = await make_post(alice)
    missing = ids.make_id(7, 3)
    assert_error(await client.put(f"{API}/posts/{missing}/like", headers=alice.auth), 404, "post")
    assert_error(await client.delete(f"{API}/posts/{missing}/like", headers=alice.auth), 404, "post")
    assert_error(await client.put(f"{API}/posts/{post['id']}/like"), 401)
    assert_error(await client.delete(f"{API}/posts/{post['id']}/like"), 401)


# ---- comments ---------------------------------------------------------------------------------
async def test_comments_add_list_paginate_oldest_first(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice)
    url = f"{API}/posts/{post['id']}/comments"
    made = []
    for i in range(5):
        who = (alice, bob)[i % 2]
        r = await client.post(url, headers=who.auth, json={"body": f"  comment {i}\nsecond line  "})
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["post_id"] == post["id"] and c["author"]["id"] == who.id and c["author"]["username"] == who.username
        assert c["body"] == f"comment {i}\nsecond line" and c["created_at"]
        assert isinstance(c["id"], str) and ids.shard_of(int(c["id"])) == ids.shard_of(int(post["id"]))
        made.append(c["id"])
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["comment_count"] == 5

    r = await client.get(url)  # anonymous reading is allowed
    assert r.status_code == 200 and [c["id"] for c in r.json()["items"]] == made and r.json()["next_cursor"] is None

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get(url, params=params)).json()
        seen += [c["id"] for c in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == made and pages == 3


async def test_comment_errors(client, make_user, make_post):
    alice = await make_user()
    post = await make_post(alice)
    url = f"{API}/posts/{post['id']}/comments"
    assert_error(await client.post(url, json={"body": "anonymous"}), 401)
    for body in ("", "   ", "\n\t"):
        assert assert_error(await client.post(url, headers=alice.auth, json={"body": body}), 422, "body")["field"] == "body"
    assert_error(await client.post(url, headers=alice.auth, json={"body": "x" * 1001}), 422, "body")
    assert (await client.post(url, headers=alice.auth, json={"body": "x" * 1000})).status_code == 201
    missing = ids.make_id(9, 9)
    assert_error(await client.post(f"{API}/posts/{missing}/comments", headers=alice.auth, json={"body": "hi"}), 404, "post")
    assert_error(await client.get(f"{API}/posts/{missing}/comments"), 404, "post")
    assert_error(await client.delete(f"{API}/comments/{missing}", headers=alice.auth), 404, "comment")
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["comment_count"] == 1


async def test_delete_own_comment_adjusts_the_count(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice)
    url = f"{API}/posts/{post['id']}/comments"
    keep = (await client.post(url, headers=alice.auth, json={"body": "keep"})).json()
    gone = (await client.post(url, headers=bob.auth, json={"body": "gone"})).json()
    r = await client.delete(f"{API}/comments/{gone['id']}", headers=bob.auth)
    assert r.status_code == 204 and r.content == b""
    assert [c["id"] for c in (await client.get(url)).json()["items"]] == [keep["id"]]
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["comment_count"] == 1
    assert_error(await client.delete(f"{API}/comments/{gone['id']}", headers=bob.auth), 404)
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["comment_count"] == 1


async def test_others_cannot_delete_a_comment(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(bob)  # even the post's author cannot delete alice's comment
    url = f"{API}/posts/{post['id']}/comments"
    comment = (await client.post(url, headers=alice.auth, json={"body": "alice was here"})).json()
    assert_error(await client.delete(f"{API}/comments/{comment['id']}", headers=bob.auth), 403, "author")
    assert_error(await client.delete(f"{API}/comments/{comment['id']}"), 401)
    items = (await client.get(url)).json()["items"]
    assert [(c["id"], c["body"]) for c in items] == [(comment["id"], "alice was here")]
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["comment_count"] == 1


async def test_deleting_a_post_deletes_its_comments_and_likes(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice)
    comment = (await client.post(f"{API}/posts/{post['id']}/comments", headers=bob.auth, json={"body": "hi"})).json()
    await client.put(f"{API}/posts/{post['id']}/like", headers=bob.auth)
    assert (await client.delete(f"{API}/posts/{post['id']}", headers=alice.auth)).status_code == 204
    assert_error(await client.get(f"{API}/posts/{post['id']}/comments"), 404)
    assert_error(await client.delete(f"{API}/comments/{comment['id']}", headers=bob.auth), 404)
    assert_error(await client.put(f"{API}/posts/{post['id']}/like", headers=bob.auth), 404)


async def test_twin_likes_and_follows_at_the_same_moment_count_once(client, make_user, make_post) -> None:  # noqa: ANN001
    """Idempotent under concurrency too: on PostgreSQL the twins' write blocks run side by side."""
    import asyncio

    alice, bob = await make_user(), await make_user()
    post = await make_post(alice)
    likes = await asyncio.gather(*(client.put(f"/api/v1/posts/{post['id']}/like", headers=bob.auth) for _ in range(4)))
    assert [r.status_code for r in likes] == [200] * 4
    follows = await asyncio.gather(*(client.put(f"/api/v1/users/{alice.username}/follow", headers=bob.auth) for _ in range(4)))
    assert [r.status_code for r in follows] == [200] * 4
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=bob.auth)).json()["like_count"] == 1


# ---- hashtags in comments -----------------------------------------------------------------------
async def _comment_tag_rows(app) -> set[tuple[str, str, str]]:  # noqa: ANN001
    from sqlalchemy import select

    from photos import schema

    async with app.state.ctx.db.read(after_write=True) as conn:
        rows = (await conn.execute(select(schema.comment_tags))).all()
    return {(str(r.comment_id), r.tag, str(r.post_id)) for r in rows}


async def _tag_page(client, tag: str, **params) -> list[str]:  # noqa: ANN001
    r = await client.get(f"{API}/tags/{tag}", params=params)
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["items"]]


async def test_a_tag_in_a_comment_puts_the_post_on_the_tag_page(app, client, make_user, make_post):
    """A tag's page lists the posts whose caption or comments carry the tag, each once, newest first."""
    alice, bob = await make_user(), await make_user()
    only_comment = await make_post(alice, "a quiet lake")
    in_caption = await make_post(alice, "#Sunset at the pier")
    both = await make_post(bob, "#sunset again")
    await make_post(bob, "nothing tagged")
    r = await client.post(f"{API}/posts/{only_comment['id']}/comments", headers=bob.auth, json={"body": "What a #Sunset! #sunset, #gold_hour"})
    assert r.status_code == 201, r.text
    tagged = r.json()
    assert tagged["tags"] == ["sunset", "gold_hour"]
    plain = (await client.post(f"{API}/posts/{both['id']}/comments", headers=alice.auth, json={"body": "no tags here"})).json()
    assert plain["tags"] == []
    await client.post(f"{API}/posts/{both['id']}/comments", headers=alice.auth, json={"body": "#SUNSET indeed"})

    assert await _tag_page(client, "sunset") == [both["id"], in_caption["id"], only_comment["id"]]
    assert await _tag_page(client, "Gold_Hour") == [only_comment["id"]]
    listed = (await client.get(f"{API}/posts/{only_comment['id']}/comments")).json()["items"]
    assert [c["tags"] for c in listed] == [["sunset", "gold_hour"]]
    # pages of one: every post once, in order, whichever carries the tag
    seen, cursor = [], None
    while True:
        body = (await client.get(f"{API}/tags/sunset", params={"limit": 1} | ({"cursor": cursor} if cursor else {}))).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [both["id"], in_caption["id"], only_comment["id"]]

    # deleting the comment takes its tags with it
    assert (await client.delete(f"{API}/comments/{tagged['id']}", headers=bob.auth)).status_code == 204
    assert await _tag_page(client, "gold_hour") == []
    assert await _tag_page(client, "sunset") == [both["id"], in_caption["id"]]
    assert not any(comment_id == tagged["id"] for comment_id, _, _ in await _comment_tag_rows(app))
    # a post whose only tag was in its caption keeps its place when the caption's tag goes, if a comment has it
    await client.patch(f"{API}/posts/{both['id']}", headers=bob.auth, json={"caption": "untagged now"})
    assert await _tag_page(client, "sunset") == [both["id"], in_caption["id"]]
    # deleting the post takes its comments' tags too
    assert (await client.delete(f"{API}/posts/{both['id']}", headers=bob.auth)).status_code == 204
    assert await _tag_page(client, "sunset") == [in_caption["id"]]
    assert await _comment_tag_rows(app) == set()


async def test_tags_of_a_deleted_account_s_comments_go_with_it(app, client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice, "hello")
    await client.post(f"{API}/posts/{post['id']}/comments", headers=bob.auth, json={"body": "#welcome"})
    assert await _tag_page(client, "welcome") == [post["id"]]
    assert (await client.delete(f"{API}/me", headers=bob.auth)).status_code == 204
    assert await _tag_page(client, "welcome") == []
    assert await _comment_tag_rows(app) == set()

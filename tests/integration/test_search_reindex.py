"""Summit Photos' search documents (``photos.search``), made by the app's own API and indexed by
``summit.reindex`` through the blueprint's ``app.search_documents``: users by their names and bios,
captioned posts with their author as a filter, tags by their captions' count."""

from __future__ import annotations

from summit.ports import Document
from summit.reindex import reindex


def found(page) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(hit.kind, hit.doc_id) for hit in page.hits]


async def test_reindex_the_apps_users_posts_and_tags(app, client, make_user, make_post) -> None:  # noqa: ANN001
    platform = app.state.ctx.platform
    alice, bob, carol = await make_user("alice"), await make_user("bobby"), await make_user("carol")
    r = await client.patch("/api/v1/me", headers=alice.auth, json={"display_name": "Alice Liddell", "bio": "Curious about rabbits"})
    assert r.status_code == 200, r.text
    for fan in (bob, carol):
        assert (await client.put("/api/v1/users/alice/follow", headers=fan.auth)).status_code == 200
    harbour = await make_post(alice, "Sunset over the harbour #sunset #sea")
    tonight = await make_post(bob, "Another #Sunset tonight")
    await make_post(carol, "")  # no words: not indexed
    breakfast = await make_post(bob, "Breakfast #food")
    assert (await client.put(f"/api/v1/posts/{harbour['id']}/like", headers=carol.auth)).status_code == 200

    documents = platform.blueprint.app.load_search_documents()
    collected = [item async for item in documents(platform)]
    assert all(isinstance(item, Document) for item in collected)
    report = await reindex(platform, documents)
    assert dict(report.counts) == {"user": 3, "post": 3, "tag": 3}
    search = platform.search
    assert await search.count() == 9

    assert found(await search.query("ali")) == [("user", alice.id)]
    assert found(await search.query("liddell rabbits")) == [("user", alice.id)]
    assert found(await search.query("bob")) == [("user", bob.id)]
    assert found(await search.query("sun", kinds=["tag"])) == [("tag", "sunset")]  # used twice: ranked first among tags
    assert found(await search.query("s", kinds=["tag"])) == []  # one letter: whole words only
    assert sorted(found(await search.query("sunset", kinds=["post"]))) == sorted([("post", harbour["id"]), ("post", tonight["id"])])
    assert found(await search.query("sunset", kinds=["post"], filters={"author": bob.id})) == [("post", tonight["id"])]
    assert found(await search.query("harbour")) == [("post", harbour["id"])]
    by_kind = {doc.kind: doc for doc in collected if doc.doc_id in (alice.id, harbour["id"], "sunset")}
    assert by_kind["user"].rank == 2 and by_kind["post"].rank == 1 and by_kind["tag"].rank == 2  # followers, likes, posts

    assert (await client.delete(f"/api/v1/posts/{breakfast['id']}", headers=bob.auth)).status_code == 204
    again = await reindex(platform, documents)
    assert dict(again.counts) == {"user": 3, "post": 2, "tag": 2}
    assert found(await search.query("breakfast food")) == []


async def test_tags_count_posts_whose_caption_or_comments_carry_them(app, client, make_user, make_post, monkeypatch) -> None:  # noqa: ANN001
    """A comment's hashtag counts its post for that tag (once, however many times it appears), and
    tags are read page by page from both tables in one order: a page size of 2 reads them all."""
    import photos.search

    platform = app.state.ctx.platform
    alice = await make_user("alice")
    first = await make_post(alice, "Morning #sunset #alps")
    second = await make_post(alice, "Evening")
    for post, body in ((second, "what a #sunset"), (first, "#sunset again, #zebra"), (second, "#alps #beach #coast")):
        r = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=alice.auth, json={"body": body})
        assert r.status_code == 201, r.text
    monkeypatch.setattr(photos.search, "PAGE", 2)
    documents = platform.blueprint.app.load_search_documents()
    tags = {doc.doc_id: doc.rank async for doc in documents(platform) if doc.kind == "tag"}
    assert tags == {"alps": 2, "beach": 1, "coast": 1, "sunset": 2, "zebra": 1}
    report = await reindex(platform, documents)
    assert report.counts["tag"] == 5
    assert found(await platform.search.query("zeb", kinds=["tag"])) == [("tag", "zebra")]

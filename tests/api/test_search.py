"""Search in the app: every write that changes a search document queues a ``search.index`` job,
the in-process worker makes the index (real SQLite FTS5) follow the database, and
``GET /api/v1/search`` answers with the API's own shapes, or a 4xx that says what to fix (never a
5xx), whatever the query."""

from __future__ import annotations

import logging
import random
import string
from urllib.parse import quote

import orjson
import pytest

from summit.ports import QueueStats, SearchUnavailable
from summit.testing.http import assert_error

from photos import jobs

API = "/api/v1"


def found(page) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(hit.kind, hit.doc_id) for hit in page.hits]


async def hits(app, text: str, kind: str | None = None) -> list[tuple[str, str]]:  # noqa: ANN001
    """What the index itself holds for ``text`` (the port, not the API: no hydration)."""
    return found(await app.state.ctx.platform.search.query(text, kinds=None if kind is None else [kind]))


async def search(client, q: str, headers: dict | None = None, **params) -> dict:  # noqa: ANN001, ANN003
    r = await client.get(f"{API}/search", params={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def kinds_and_ids(body: dict) -> list[tuple[str, str]]:
    out = []
    for item in body["items"]:
        value = item[item["kind"]]
        out.append((item["kind"], value["tag"] if item["kind"] == "tag" else value["id"]))
    return out


# ---- indexing through the queue -----------------------------------------------------------------

async def test_each_write_reaches_the_index_through_the_queue(app, client, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("bobby")
    await drain()
    assert await hits(app, "ali") == [("user", alice.id)], "a confirmed sign-up is indexed"

    # profile edits
    r = await client.patch(f"{API}/me", headers=alice.auth, json={"display_name": "Alice Liddell", "bio": "curious about rabbits"})
    assert r.status_code == 200, r.text
    await drain()
    assert await hits(app, "liddell") == [("user", alice.id)]
    assert await hits(app, "rabbits") == [("user", alice.id)]

    # a post, its caption and its tags
    post = await make_post(alice, "Sunset over the harbour #sunset #sea")
    await drain()
    assert await hits(app, "harbour") == [("post", post["id"])]
    assert await hits(app, "sun", "tag") == [("tag", "sunset")]

    # an edited caption replaces the post's words; a tag no post carries any more leaves
    r = await client.patch(f"{API}/posts/{post['id']}", headers=alice.auth, json={"caption": "Breakfast #food"})
    assert r.status_code == 200, r.text
    await drain()
    assert await hits(app, "harbour") == []
    assert await hits(app, "breakfast") == [("post", post["id"])]
    assert await hits(app, "sunset sea", "tag") == []
    assert await hits(app, "food", "tag") == [("tag", "food")]

    # a comment's hashtag puts the post on that tag: the tag is indexed, and counted
    r = await client.post(f"{API}/posts/{post['id']}/comments", headers=bob.auth, json={"body": "so #sunset again"})
    assert r.status_code == 201, r.text
    await drain()
    assert await hits(app, "sunset", "tag") == [("tag", "sunset")]
    assert (await search(client, "sunset", kind="tag"))["items"] == [{"kind": "tag", "tag": {"tag": "sunset", "posts": 1}}]
    r = await client.delete(f"{API}/comments/{r.json()['id']}", headers=bob.auth)
    assert r.status_code == 204
    await drain()
    assert await hits(app, "sunset", "tag") == []

    # a deleted post leaves the index, with the tags only it carried
    r = await client.delete(f"{API}/posts/{post['id']}", headers=alice.auth)
    assert r.status_code == 204
    await drain()
    assert await hits(app, "breakfast food") == []
    assert await app.state.ctx.platform.search.count("post") == 0


async def test_a_deleted_account_leaves_the_index_with_its_posts_and_tags(app, client, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("bobby")
    mine = await make_post(alice, "Lanterns on the quay #lanterns")
    theirs = await make_post(bob, "Harbour at dawn #harbour")
    r = await client.post(f"{API}/posts/{theirs['id']}/comments", headers=alice.auth, json={"body": "lovely #dawnlight"})
    assert r.status_code == 201
    await drain()
    assert await hits(app, "lanterns dawnlight harbour", "tag") == [("tag", "dawnlight"), ("tag", "harbour"), ("tag", "lanterns")]
    assert (await client.delete(f"{API}/me", headers=alice.auth)).status_code == 204
    await drain()
    assert await hits(app, "alice") == []
    assert await hits(app, "lanterns quay") == []
    assert await hits(app, "lanterns dawnlight harbour", "tag") == [("tag", "harbour")]  # bob's post still carries it
    assert await hits(app, "harbour", "post") == [("post", theirs["id"])]
    assert mine["id"] not in {doc for _, doc in await hits(app, "lanterns")}


async def test_the_newest_row_wins_whatever_the_order_of_jobs(app, client, make_user, make_post, drain) -> None:  # noqa: ANN001
    """Jobs read the row as it is when they run: two edits queued while the worker is down end with
    the second caption indexed, and a redelivered message changes nothing (at least once)."""
    ctx = app.state.ctx
    alice = await make_user("alice")
    post = await make_post(alice, "first words")
    await drain()
    await app.state.worker.stop(timeout=10)
    for caption in ("second words", "third words"):
        r = await client.patch(f"{API}/posts/{post['id']}", headers=alice.auth, json={"caption": caption})
        assert r.status_code == 200
    assert (await ctx.queue.stats(jobs.SEARCH_INDEX)).visible == 2
    assert await hits(app, "first") == [("post", post["id"])]  # not yet
    app.state.worker = jobs.build_worker(ctx)
    await app.state.worker.start()
    await drain()
    assert await hits(app, "first second") == [] and await hits(app, "third") == [("post", post["id"])]
    body = orjson.dumps({"kind": "post", "id": post["id"]})
    for _ in range(2):  # the same message again, twice
        await ctx.queue.send(jobs.SEARCH_INDEX, body)
    await drain()
    assert await hits(app, "third") == [("post", post["id"])] and await ctx.platform.search.count() == 2  # alice and the post


async def test_malformed_messages_are_dropped_not_retried(app, caplog) -> None:  # noqa: ANN001
    ctx = app.state.ctx
    caplog.set_level(logging.WARNING, "photos.jobs")
    for body in (b"not json", b"{}", orjson.dumps({"kind": "planet", "id": "1"}), orjson.dumps({"kind": "post", "ids": [1, 2]})):
        await ctx.queue.send(jobs.SEARCH_INDEX, body)
    await app.state.worker.drain(30)
    assert await ctx.queue.stats(jobs.SEARCH_INDEX + ".dead") == QueueStats(visible=0, in_flight=0, delayed=0)
    assert sum("dropped a malformed search.index message" in r.getMessage() for r in caplog.records) == 4


async def test_a_failed_send_is_logged_and_the_write_stands(app, client, make_user, drain, caplog, monkeypatch) -> None:  # noqa: ANN001
    ctx = app.state.ctx
    alice = await make_user("alice")
    await drain()
    send = ctx.queue.send

    async def broken(queue: str, body: bytes, **kw) -> str:  # noqa: ANN003
        if queue == jobs.SEARCH_INDEX:
            raise ConnectionError("the queue is away")
        return await send(queue, body, **kw)

    monkeypatch.setattr(ctx.queue, "send", broken)
    caplog.set_level(logging.ERROR, "photos.jobs")
    r = await client.patch(f"{API}/me", headers=alice.auth, json={"display_name": "Wonderland"})
    assert r.status_code == 200 and r.json()["display_name"] == "Wonderland"
    assert any("could not queue a search index update" in rec.getMessage() for rec in caplog.records)


async def test_a_confirmation_queues_the_profile_after_its_transaction(app, client, make_user, drain) -> None:  # noqa: ANN001
    """The pool's confirmation hook runs inside the pool's transaction: its job is sent once the
    request is answered, and finds the committed profile."""
    ctx = app.state.ctx
    await app.state.worker.stop(timeout=10)
    carol = await make_user("carol")
    [message] = await ctx.queue.receive(jobs.SEARCH_INDEX, visibility_timeout=60)
    assert orjson.loads(message.body) == {"kind": "user", "id": carol.id}
    await ctx.queue.release(jobs.SEARCH_INDEX, message.receipt)
    app.state.worker = jobs.build_worker(ctx)
    await app.state.worker.start()
    await drain()
    assert await hits(app, "carol") == [("user", carol.id)]


# ---- the API ------------------------------------------------------------------------------------

async def test_search_answers_in_the_apis_shapes(app, client, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("alina")
    post = await make_post(alice, "Alpine lake at noon #alps")
    assert (await client.put(f"{API}/posts/{post['id']}/like", headers=bob.auth)).status_code == 200
    await drain()
    body = await search(client, "ali", kind="user")
    assert sorted(kinds_and_ids(body)) == sorted([("user", alice.id), ("user", bob.id)]) and body["next_cursor"] is None
    alice_item = next(item for item in body["items"] if item["user"]["id"] == alice.id)
    assert alice_item == {"kind": "user", "user": {"id": alice.id, "username": "alice", "display_name": "alice", "avatar_url": None}}

    body = await search(client, "alpine", headers=bob.auth)
    assert kinds_and_ids(body) == [("post", post["id"])]
    shown = (await client.get(f"{API}/posts/{post['id']}", headers=bob.auth)).json()
    assert body["items"][0]["post"] == shown and shown["liked_by_me"] is True  # as the viewer sees it
    assert (await search(client, "alps"))["items"] == [{"kind": "tag", "tag": {"tag": "alps", "posts": 1}},
                                                       {"kind": "post", "post": {**shown, "liked_by_me": False}}]
    assert (await search(client, "")) == {"items": [], "next_cursor": None}
    assert (await search(client, "zzz nothing"))["items"] == []


async def test_pages_follow_the_cursor_without_duplicates(client, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    made = {(await make_post(alice, f"mountain number {i}"))["id"] for i in range(5)}
    await drain()
    seen, cursor, pages = [], None, 0
    while True:
        body = await search(client, "mountain", kind="post", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [item["post"]["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and pages == 3
    r = await client.get(f"{API}/search", params={"q": "other words", "kind": "post", "cursor": body["next_cursor"] or "x"})
    assert_error(r, 422, "cursor", "search again without it")["field"] == "cursor"


async def test_a_post_deleted_before_its_job_ran_is_left_out(app, client, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    keep, gone = await make_post(alice, "granite ridge"), await make_post(alice, "granite boulder")
    await drain()
    await app.state.worker.stop(timeout=10)  # the delete's index job waits
    assert (await client.delete(f"{API}/posts/{gone['id']}", headers=alice.auth)).status_code == 204
    assert sorted(await hits(app, "granite")) == sorted([("post", keep["id"]), ("post", gone["id"])])  # still indexed
    assert kinds_and_ids(await search(client, "granite")) == [("post", keep["id"])]


async def test_bad_parameters_get_a_422_that_says_what_to_fix(client) -> None:  # noqa: ANN001
    cases = [
        ({"q": "x" * 201}, "q", ["at most 200 characters", "shorten it"]),
        ({"q": "a b c d e f g h i"}, "q", ["at most 8 different words", "remove some"]),
        ({"q": "ali", "kind": "planet"}, "kind", ["user", "post", "tag"]),
        ({"q": "ali", "limit": "0"}, "limit", ["limit"]),
        ({"q": "ali", "limit": "101"}, "limit", ["limit"]),
        ({"q": "ali", "limit": "ten"}, "limit", ["limit"]),
        ({"q": "ali", "cursor": "not-a-cursor"}, "cursor", ["search again without it"]),
    ]
    for params, field, words in cases:
        error = assert_error(await client.get(f"{API}/search", params=params), 422, *words)
        assert error["field"] == field, (params, error)


async def test_an_index_that_does_not_answer_is_a_503_with_retry_after(app, client, monkeypatch) -> None:  # noqa: ANN001
    async def away(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise SearchUnavailable("the index is locked")

    monkeypatch.setattr(app.state.ctx.platform.search, "query", away)
    r = await client.get(f"{API}/search", params={"q": "alice"})
    assert_error(r, 503, "retry")
    assert r.headers["retry-after"] == "2"


async def test_the_openapi_document_describes_search(client) -> None:  # noqa: ANN001
    doc = (await client.get(f"{API}/openapi.json")).json()
    operation = doc["paths"]["/api/v1/search"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "kind", "cursor", "limit"}
    assert {"200", "422", "503"} <= set(operation["responses"])
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SearchPage"}
    result = doc["components"]["schemas"]["SearchResultOut"]
    assert set(result["properties"]) == {"kind", "user", "post", "tag"}


# ---- hostile queries: results or a clear 422, never a 5xx ------------------------------------------

HOSTILE = [
    '"', '""', "'", "' OR 1=1 --", '"ali', 'ali"', "ali*", "*", "**", "-", "-ali", "^ali", "ali:", "name:ali", "bio:*",
    "NEAR(ali bob)", "NEAR(", "ali NEAR bob", "AND", "OR", "NOT", "ali AND", "OR ali", "ali NOT bob", "(", ")", "()",
    "{ali}", "ali & bob", "ali | bob", "!ali", "ali <-> bob", "ali:*", "\\", "\\\"", "%", "%00", "_", "__", "a" * 200,
    "a" * 201, "x" * 10_240, "ali " * 9, "\x00", "ali\x00bob", "\x01\x02\x1f\x7f", "\t\n\r", "\u200b", "\ufeff", "🎉",
    "🎉 ali 🏔️", "ali🎉", "日本語のテキスト", "Émile ÅNGSTRÖM straße", "ＦＵＬＬ", "\u0301", "ﷺ", "\U0010ffff",
]


def _fuzz(seed: int, count: int) -> list[str]:
    """Random queries from pieces of engine syntax, control characters, emoji and CJK, some over
    the limits: the same list on every run (seeded)."""
    rng = random.Random(seed)
    pieces = ['"', "'", "*", "-", "^", ":", "(", ")", "{", "}", "NEAR", "AND", "OR", "NOT", "&", "|", "!", "<->", "%00", "\x00",
              "\x1b", "\x7f", "\u2028", "🎉", "日本", "ß", "ali", "bob", " ", " ", "  ", "\\", "%", "_", "a", "é", "\ufffd"]
    out = []
    for _ in range(count):
        n = rng.choice([1, 2, 3, 5, 8, 13, 40, 120])
        text = "".join(rng.choice(pieces + [rng.choice(string.printable)]) for _ in range(n))
        out.append(text)
    return out


@pytest.mark.parametrize("kind", [None, "user", "post", "tag"])
async def test_hostile_queries_get_results_or_a_clear_422(client, make_user, make_post, drain, kind) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    await make_post(alice, 'quotes " and stars * and NEAR(ali bob) #tag')
    await drain()
    queries = HOSTILE + _fuzz(seed=20250101 + len(kind or ""), count=150)
    bad = []
    for q in queries:
        params = {"q": q, **({"kind": kind} if kind else {})}
        r = await client.get(f"{API}/search", params=params)
        if r.status_code == 200:
            body = r.json()
            assert set(body) == {"items", "next_cursor"} and isinstance(body["items"], list), body
        elif r.status_code == 422:
            error = assert_error(r, 422)
            assert error["field"] == "q" and ("shorten it" in error["message"] or "remove some" in error["message"]), (q, error)
        else:
            bad.append((q, r.status_code, r.text[:200]))
    assert bad == []


async def test_raw_percent_escapes_in_the_url_are_plain_text(client) -> None:  # noqa: ANN001
    """What a browser may send: a NUL, a lone surrogate's bytes, a bad escape, a half character."""
    for raw in ("%00", "ali%00bob", "%ED%A0%80", "%C3", "%FF%FE", "%", "%zz", "%2", quote("\x00🎉"), "%E2%80%AE"):
        r = await client.get(f"{API}/search?q={raw}")
        assert r.status_code == 200, (raw, r.status_code, r.text[:200])

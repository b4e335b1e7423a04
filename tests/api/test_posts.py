"""API: posts (upload, thumbnails, EXIF, limits, bad uploads), feed, user pages, tag pages."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select

from summit import ids
from summit.testing.http import assert_error

from photos import schema

API = "/api/v1"
MiB = 1024 * 1024
THUMBS = ("small", "medium", "large")


async def _posts_count(app) -> int:  # noqa: ANN001
    async with app.state.ctx.db.read(after_write=True) as conn:
        return (await conn.execute(select(func.count()).select_from(schema.posts))).scalar_one()


async def _object_keys(app) -> set[str]:  # noqa: ANN001
    return {info.key for info in await app.state.ctx.objects.list()}


def _key(url: str) -> str:
    assert url.startswith("/media/"), url
    return url.removeprefix("/media/")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (1-bit grey): a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _png_chunk(b"IEND", b"")


def _jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Make"  # Make
    exif[0x0110] = "Model X-42"  # Model
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    out = io.BytesIO()
    Image.new("RGB", (320, 240), "orange").save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert b"SpyCam Make" in data
    return data


async def _upload(client, user, photo: bytes, name: str = "photo.jpg", caption: str = "", ctype: str = "image/jpeg", **kw):  # noqa: ANN001, ANN202
    return await client.post(f"{API}/posts", headers=user.auth, files={"photo": (name, photo, ctype)}, data={"caption": caption}, **kw)


# ---- create and read --------------------------------------------------------------------------
async def test_create_post_returns_the_post_with_a_placeholder(client, make_user, jpeg):
    user = await make_user()
    r = await _upload(client, user, jpeg(size=(640, 480)), caption="Sunset at the #Beach #beach #sea")
    assert r.status_code == 201, r.text
    post = r.json()
    assert isinstance(post["id"], str) and post["author"]["id"] == user.id and post["author"]["username"] == user.username
    assert post["caption"] == "Sunset at the #Beach #beach #sea"
    assert post["tags"] == ["beach", "sea"]
    assert post["content_type"] == "image/jpeg" and (post["width"], post["height"]) == (640, 480)
    assert post["thumbnails"] == {"ready": False, "small": None, "medium": None, "large": None}
    assert (post["like_count"], post["comment_count"], post["liked_by_me"], post["edited_at"]) == (0, 0, False, None)
    assert post["photo_url"].startswith("/media/p/")


async def test_post_ids_are_64_bit_strings_on_the_author_shard(client, make_user, make_post):
    for _ in range(3):
        user = await make_user()
        post = await make_post(user)
        post_id, author_id = int(post["id"]), int(user.id)
        assert str(post_id) == post["id"] and 0 < post_id < 2**63
        assert ids.shard_of(post_id) == ids.shard_of(author_id)
        assert ids.parse_id(post_id).ms >= ids.parse_id(author_id).ms


async def test_get_post_anonymous_and_unknown(client, make_user, make_post):
    user = await make_user()
    post = await make_post(user, "hello")
    r = await client.get(f"{API}/posts/{post['id']}")
    assert r.status_code == 200 and r.json()["id"] == post["id"] and r.json()["liked_by_me"] is False
    assert_error(await client.get(f"{API}/posts/{ids.make_id(1, 1)}"), 404, "post")


@pytest.mark.parametrize(("fmt", "ctype"), [("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")])
async def test_other_formats_are_accepted(client, make_user, jpeg, fmt, ctype):
    user = await make_user()
    r = await _upload(client, user, jpeg(fmt, (120, 90)), name="x.bin", ctype="application/octet-stream")
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == ctype
    media = await client.get(r.json()["photo_url"])
    assert media.status_code == 200 and media.headers["content-type"] == ctype


async def test_thumbnails_become_ready_after_the_worker_runs(client, make_user, make_post, drain):
    user = await make_user()
    post = await make_post(user)
    assert post["thumbnails"]["ready"] is False
    await drain()
    after = (await client.get(f"{API}/posts/{post['id']}")).json()
    thumbs = after["thumbnails"]
    assert thumbs["ready"] is True
    widths = {}
    for size in THUMBS:
        assert thumbs[size] and thumbs[size].startswith("/media/t/")
        r = await client.get(thumbs[size])
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
        image = Image.open(io.BytesIO(r.content))
        assert image.format == "WEBP"
        widths[size] = image.size
    assert widths["small"] == (150, 150)
    assert widths["medium"] == (640, 480) and widths["large"] == (640, 480)  # never upscaled
    assert len({thumbs[s] for s in THUMBS}) == 3


async def test_exif_is_stripped_from_the_stored_original(app, client, make_user):
    user = await make_user()
    r = await _upload(client, user, _jpeg_with_exif())
    assert r.status_code == 201, r.text
    served = await client.get(r.json()["photo_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    stored = (await app.state.ctx.objects.get(_key(r.json()["photo_url"]))).data
    for data in (served.content, stored):
        assert b"SpyCam" not in data and b"Model X-42" not in data
        image = Image.open(io.BytesIO(data))
        exif = image.getexif()
        assert 0x010F not in exif and 0x0110 not in exif and 0x8825 not in exif
        assert not exif.get_ifd(0x8825)
        assert "exif" not in image.info


async def test_exif_orientation_is_applied(client, make_user):
    user = await make_user()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "navy").save(out, "JPEG", exif=exif)
    r = await _upload(client, user, out.getvalue())
    assert r.status_code == 201
    assert (r.json()["width"], r.json()["height"]) == (200, 300)


# ---- edit and delete --------------------------------------------------------------------------
async def test_edit_caption_updates_tags_and_edited_at(client, make_user, make_post):
    user = await make_user()
    post = await make_post(user, "old #before")
    r = await client.patch(f"{API}/posts/{post['id']}", headers=user.auth, json={"caption": "new #After"})
    assert r.status_code == 200, r.text
    assert r.json()["caption"] == "new #After" and r.json()["tags"] == ["after"] and r.json()["edited_at"]
    assert (await client.get(f"{API}/tags/before")).json()["items"] == []
    assert [p["id"] for p in (await client.get(f"{API}/tags/after")).json()["items"]] == [post["id"]]


async def test_delete_post_removes_it_and_its_objects(app, client, make_user, make_post, drain):
    user = await make_user()
    keep = await make_post(user, "keep")
    gone = await make_post(user, "gone #gone")
    await drain()
    gone = (await client.get(f"{API}/posts/{gone['id']}")).json()
    gone_keys = {_key(gone["photo_url"])} | {_key(gone["thumbnails"][s]) for s in THUMBS}
    assert gone_keys <= await _object_keys(app)

    r = await client.delete(f"{API}/posts/{gone['id']}", headers=user.auth)
    assert r.status_code == 204 and r.content == b""
    await drain()
    assert_error(await client.get(f"{API}/posts/{gone['id']}"), 404)
    assert_error(await client.delete(f"{API}/posts/{gone['id']}", headers=user.auth), 404)
    keys = await _object_keys(app)
    assert not gone_keys & keys
    assert _key(keep["photo_url"]) in keys
    for key in gone_keys:
        assert (await client.get(f"/media/{key}")).status_code == 404
    assert (await client.get(f"{API}/tags/gone")).json()["items"] == []
    assert (await client.get(f"{API}/me", headers=user.auth)).json()["posts"] == 1


async def test_delete_before_thumbnails_leaves_no_orphans(app, client, make_user, make_post, drain):
    user = await make_user()
    post = await make_post(user)
    assert (await client.delete(f"{API}/posts/{post['id']}", headers=user.auth)).status_code == 204
    await drain()
    assert await _object_keys(app) == set()


async def test_other_users_cannot_edit_or_delete_a_post(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice, "alice's caption")
    assert_error(await client.patch(f"{API}/posts/{post['id']}", headers=bob.auth, json={"caption": "pwned"}), 403, "author")
    assert_error(await client.delete(f"{API}/posts/{post['id']}", headers=bob.auth), 403, "author")
    after = await client.get(f"{API}/posts/{post['id']}")
    assert after.status_code == 200
    assert after.json()["caption"] == "alice's caption" and after.json()["edited_at"] is None


async def test_post_endpoints_need_a_token(client, make_user, make_post, jpeg):
    alice = await make_user()
    post = await make_post(alice)
    anonymous = [
        client.post(f"{API}/posts", files={"photo": ("a.jpg", jpeg(), "image/jpeg")}),
        client.patch(f"{API}/posts/{post['id']}", json={"caption": "x"}),
        client.delete(f"{API}/posts/{post['id']}"),
        client.get(f"{API}/feed"),
    ]
    for request in anonymous:
        r = await request
        assert_error(r, 401, "Bearer")


# ---- feed, user pages, tags -------------------------------------------------------------------
async def _walk(client, url: str, headers: dict, limit: int) -> tuple[list[str], int]:  # noqa: ANN001
    seen, pages, cursor = [], 0, None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        r = await client.get(url, headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        pages += 1
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert isinstance(cursor, str) and len(body["items"]) == limit
        assert pages < 50


async def test_feed_paginates_newest_first_without_duplicates_or_gaps(client, make_user, make_post, jpeg):
    me, friend, other_friend, stranger = [await make_user() for _ in range(4)]
    for who in (friend, other_friend):
        assert (await client.put(f"{API}/users/{who.username}/follow", headers=me.auth)).status_code == 200
    small = jpeg(size=(32, 32))
    created = []
    for i, author in enumerate([friend, me, stranger, other_friend, friend, stranger, me, other_friend, friend, friend]):
        post = await make_post(author, f"post {i}", small)
        if author is not stranger:
            created.append(post["id"])
    expected = list(reversed(created))  # 8 posts

    for limit in (3, 4, 8, 100):
        seen, pages = await _walk(client, f"{API}/feed", me.auth, limit)
        assert seen == expected, (limit, seen, expected)
        assert pages == -(-len(expected) // limit)  # a full last page says there is no next one
    assert [int(i) for i in expected] == sorted((int(i) for i in expected), reverse=True)

    first = (await client.get(f"{API}/feed", headers=me.auth)).json()  # default page size covers all 8
    assert [p["id"] for p in first["items"]] == expected and first["next_cursor"] is None
    stamps = [p["created_at"] for p in first["items"]]
    assert stamps == sorted(stamps, reverse=True)

    # a post made while paginating appears on top later, never in the middle of the pages
    page1 = (await client.get(f"{API}/feed", headers=me.auth, params={"limit": 3})).json()
    newer = await make_post(friend, "newer", small)
    rest, _ = await _walk_from(client, me, page1["next_cursor"], 3)
    assert [p["id"] for p in page1["items"]] + rest == expected
    assert (await client.get(f"{API}/feed", headers=me.auth, params={"limit": 1})).json()["items"][0]["id"] == newer["id"]


async def _walk_from(client, user, cursor: str, limit: int) -> tuple[list[str], int]:  # noqa: ANN001
    seen = []
    while cursor:
        body = (await client.get(f"{API}/feed", headers=user.auth, params={"limit": limit, "cursor": cursor})).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
    return seen, 0


async def test_empty_feed(client, make_user):
    user = await make_user()
    r = await client.get(f"{API}/feed", headers=user.auth)
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}


async def test_user_posts_paginate(client, make_user, make_post, jpeg):
    alice, bob = await make_user(), await make_user()
    small = jpeg(size=(32, 32))
    mine = [(await make_post(alice, f"a{i}", small))["id"] for i in range(5)]
    await make_post(bob, "b", small)
    seen, pages = await _walk(client, f"{API}/users/{alice.username}/posts", {}, 2)
    assert seen == list(reversed(mine)) and pages == 3
    assert_error(await client.get(f"{API}/users/nobody_at_all/posts"), 404, "user")
    assert (await client.get(f"{API}/users/{alice.username}")).json()["posts"] == 5


async def test_tag_pages(client, make_user, make_post, jpeg):
    alice, bob = await make_user(), await make_user()
    small = jpeg(size=(32, 32))
    one = await make_post(alice, "#Cats are great", small)
    await make_post(bob, "#dogs only", small)
    two = await make_post(bob, "more #cats and #CATS", small)
    for tag in ("cats", "CATS", "%23cats"):
        r = await client.get(f"{API}/tags/{tag}")
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()["items"]] == [two["id"], one["id"]]
    seen, pages = await _walk(client, f"{API}/tags/cats", {}, 1)
    assert seen == [two["id"], one["id"]]
    assert (await client.get(f"{API}/tags/nothing_here")).json() == {"items": [], "next_cursor": None}
    assert_error(await client.get(f"{API}/tags/not-a-tag"), 422, "tag")


async def test_liked_by_me_in_lists(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice, "#liked")
    await client.put(f"{API}/posts/{post['id']}/like", headers=bob.auth)
    assert (await client.get(f"{API}/tags/liked", headers=bob.auth)).json()["items"][0]["liked_by_me"] is True
    assert (await client.get(f"{API}/tags/liked", headers=alice.auth)).json()["items"][0]["liked_by_me"] is False
    assert (await client.get(f"{API}/users/{alice.username}/posts", headers=bob.auth)).json()["items"][0]["liked_by_me"] is True


# ---- upload limits and bad uploads ------------------------------------------------------------
async def _assert_nothing_left(app, client, user) -> None:  # noqa: ANN001
    assert await _posts_count(app) == 0
    assert await _object_keys(app) == set()
    assert (await client.get(f"{API}/me", headers=user.auth)).json()["posts"] == 0
    assert (await client.get(f"{API}/feed", headers=user.auth)).json()["items"] == []


@pytest.mark.parametrize("extra", [1024, 300 * 1024], ids=["just-over-20MiB", "over-the-envelope"])
async def test_photo_over_20_mib_is_413_and_leaves_nothing(app, client, make_user, jpeg, drain, extra):
    user = await make_user()
    limit = app.state.ctx.platform.blueprint.uploads.max_photo_bytes
    assert limit == 20 * MiB
    head = jpeg(size=(64, 64))
    photo = head + b"\0" * (limit + extra - len(head))
    r = await _upload(client, user, photo)
    assert_error(r, 413, "bytes")
    await drain()
    await _assert_nothing_left(app, client, user)


async def test_photo_of_exactly_20_mib_is_not_refused_for_size(app, client, make_user, jpeg):
    user = await make_user()
    head = jpeg(size=(64, 64))
    photo = head + b"\0" * (20 * MiB - len(head))  # trailing bytes are dropped by the re-encode
    r = await _upload(client, user, photo)
    assert r.status_code == 201, r.text
    stored = (await app.state.ctx.objects.get(_key(r.json()["photo_url"]))).data
    assert len(stored) < MiB


def _truncated_jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((400, 300), 64).convert("RGB").save(out, "JPEG")
    data = out.getvalue()
    return data[: len(data) // 2]


def _bmp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(out, "BMP")
    return out.getvalue()


NOT_AN_IMAGE = "this file is not an image we can read: send a JPEG, PNG, WebP or GIF"
BAD_UPLOADS = {
    "renamed-text": (b"#!/bin/sh\necho this is not a photo\n", "photo.jpg", "image/jpeg", (NOT_AN_IMAGE,)),
    "text-file": (b"hello, world\n" * 100, "notes.txt", "text/plain", (NOT_AN_IMAGE,)),
    "empty": (b"", "photo.jpg", "image/jpeg", ("the photo is empty: send an image file",)),
    "truncated-jpeg": (None, "photo.jpg", "image/jpeg", ("the image is corrupt or truncated: send the whole file again",)),
    "jpeg-magic-then-junk": (b"\xff\xd8\xff\xe0" + b"junk" * 100, "photo.jpg", "image/jpeg", ("a JPEG, PNG, WebP or GIF",)),
    "bmp": (None, "photo.jpg", "image/jpeg", ("this is a BMP image, a format we do not take: send a JPEG, PNG, WebP or GIF",)),
    "html": (b"<html><script>alert(1)</script></html>", "photo.jpg", "image/jpeg", (NOT_AN_IMAGE,)),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg", "image/svg+xml", (NOT_AN_IMAGE,)),
}
# what a message about a bad upload must not show: a Python exception's name, or Pillow's own words
PYTHON_INSIDES = re.compile(r"[A-Z]\w*(Error|Exception|Warning)\b|Traceback|PIL\b|cannot identify image|bytes not processed")


def assert_says_what_to_send(message: str) -> None:
    assert "send" in message, message
    assert not PYTHON_INSIDES.search(message), message


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
async def test_bad_uploads_are_4xx_with_a_message_and_leave_nothing(app, client, make_user, drain, name):
    user = await make_user()
    data, filename, ctype, words = BAD_UPLOADS[name]
    if name == "truncated-jpeg":
        data = _truncated_jpeg()
    elif name == "bmp":
        data = _bmp()
    r = await _upload(client, user, data, name=filename, ctype=ctype, caption="should not exist")
    assert 400 <= r.status_code < 500, r.text
    error = assert_error(r, r.status_code, *words)
    assert error.get("field") == "photo"
    assert_says_what_to_send(error["message"])
    await drain()
    await _assert_nothing_left(app, client, user)


async def test_decompression_bomb_is_refused_with_a_message_about_its_size(app, client, make_user, drain):
    user = await make_user()
    bomb = _png_declaring(20000, 20000)
    assert len(bomb) < 200
    r = await _upload(client, user, bomb, name="tiny.png", ctype="image/png")
    assert 400 <= r.status_code < 500, r.text
    await drain()
    await _assert_nothing_left(app, client, user)
    assert_says_what_to_send(assert_error(r, r.status_code, "pixels")["message"])


async def test_image_over_the_pixel_budget_is_refused(app, client, make_user):
    user = await make_user()
    r = await _upload(client, user, _png_declaring(9000, 9000), name="big.png", ctype="image/png")
    assert_error(r, 422, "9000x9000", "pixels")
    await _assert_nothing_left(app, client, user)


async def test_missing_photo_field_is_422_naming_it(client, make_user):
    user = await make_user()
    r = await client.post(f"{API}/posts", headers=user.auth, data={"caption": "no photo"})
    error = assert_error(r, 422, "photo")
    assert error["field"] == "photo"
    r = await client.post(f"{API}/posts", headers=user.auth, files={"picture": ("a.jpg", b"x", "image/jpeg")})
    assert_error(r, 422, "photo")


async def test_photo_sent_as_plain_field_is_422(client, make_user):
    user = await make_user()
    r = await client.post(f"{API}/posts", headers=user.auth, data={"photo": "not a file", "caption": "x"})
    assert_error(r, 422, "photo")


async def test_json_body_instead_of_multipart_is_422(client, make_user):
    user = await make_user()
    r = await client.post(f"{API}/posts", headers=user.auth, json={"photo": "aGVsbG8=", "caption": "x"})
    assert 400 <= r.status_code < 500, r.text
    assert_error(r, r.status_code, "photo")


async def test_caption_over_the_limit_is_refused_and_leaves_nothing(app, client, make_user, jpeg):
    user = await make_user()
    r = await _upload(client, user, jpeg(), caption="x" * 2201)
    error = assert_error(r, 422, "caption")
    assert error["field"] == "caption"
    await _assert_nothing_left(app, client, user)
    r = await _upload(client, user, jpeg(), caption="x" * 2200)
    assert r.status_code == 201

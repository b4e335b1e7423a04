"""API: the Idempotency-Key header on POST requests."""

from __future__ import annotations

from sqlalchemy import func, select

from summit.security.identity import schema as pool_schema

from photos import schema

API = "/api/v1"


async def _count(app, table) -> int:  # noqa: ANN001
    async with app.state.ctx.db.read(after_write=True) as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


def _multipart(boundary: str, photo: bytes, caption: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="photo"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo + (
        f"\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="caption"\r\n\r\n'
        f"{caption}\r\n--{boundary}--\r\n"
    ).encode()


async def _post_photo(client, user, key: str, photo: bytes, caption: str, boundary: str = "boundary-one"):  # noqa: ANN001, ANN202
    headers = {**user.auth, "Idempotency-Key": key, "content-type": f"multipart/form-data; boundary={boundary}"}
    return await client.post(f"{API}/posts", headers=headers, content=_multipart(boundary, photo, caption))


async def test_retried_post_creates_one_post_and_replays_the_response(app, client, make_user, jpeg):
    user = await make_user()
    photo = jpeg(size=(64, 64))
    first = await _post_photo(client, user, "upload-1", photo, "once")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    objects = len(await app.state.ctx.objects.list("p/"))

    for _ in range(2):
        again = await _post_photo(client, user, "upload-1", photo, "once")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"].startswith("application/json")
        assert again.content == first.content
    assert await _count(app, schema.posts) == 1
    assert len(await app.state.ctx.objects.list("p/")) == objects
    assert [p["id"] for p in (await client.get(f"{API}/feed", headers=user.auth)).json()["items"]] == [first.json()["id"]]


async def test_retry_with_another_multipart_boundary_is_the_same_request(app, client, make_user, jpeg):
    user = await make_user()
    photo = jpeg(size=(64, 64))
    first = await _post_photo(client, user, "key-b", photo, "same", boundary="----WebKitFormBoundaryAAAA")
    again = await _post_photo(client, user, "key-b", photo, "same", boundary="----WebKitFormBoundaryZZZZ")
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    # and through httpx's own encoder, which draws a random boundary every time
    files = {"photo": ("photo.jpg", photo, "image/jpeg")}
    r1 = await client.post(f"{API}/posts", headers={**user.auth, "Idempotency-Key": "key-c"}, files=files, data={"caption": "c"})
    r2 = await client.post(f"{API}/posts", headers={**user.auth, "Idempotency-Key": "key-c"}, files=files, data={"caption": "c"})
    assert r1.status_code == r2.status_code == 201
    assert r2.headers.get("idempotent-replayed") == "true" and r2.json()["id"] == r1.json()["id"]
    assert await _count(app, schema.posts) == 2


async def test_same_key_with_a_different_body_is_422(app, client, make_user, jpeg):
    user = await make_user()
    first = await _post_photo(client, user, "key-d", jpeg(size=(64, 64)), "first caption")
    assert first.status_code == 201
    for photo, caption in ((jpeg(size=(64, 64)), "another caption"), (jpeg(size=(64, 64), color="red"), "first caption")):
        r = await _post_photo(client, user, "key-d", photo, caption)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["field"] == "Idempotency-Key" and "different request" in error["message"]
        assert r.json()["request_id"] == r.headers["x-request-id"]
    assert await _count(app, schema.posts) == 1


async def test_same_key_on_another_path_is_422(client, make_user, make_post, jpeg):
    user = await make_user()
    post = await make_post(user)
    assert (await _post_photo(client, user, "shared-key", jpeg(size=(64, 64)), "x")).status_code == 201
    r = await client.post(f"{API}/posts/{post['id']}/comments", headers={**user.auth, "Idempotency-Key": "shared-key"}, json={"body": "hi"})
    assert r.status_code == 422, r.text


async def test_keys_of_different_users_are_independent(app, client, make_user, jpeg):
    alice, bob = await make_user(), await make_user()
    photo = jpeg(size=(64, 64))
    a = await _post_photo(client, alice, "same-key", photo, "same")
    b = await _post_photo(client, bob, "same-key", photo, "same")
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert a.json()["author"]["id"] == alice.id and b.json()["author"]["id"] == bob.id
    assert await _count(app, schema.posts) == 2
    # bob's replay is bob's post, never alice's
    again = await _post_photo(client, bob, "same-key", photo, "same")
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == b.json()["id"]


async def test_comment_with_a_key_is_created_once(app, client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice)
    url = f"{API}/posts/{post['id']}/comments"
    headers = {**bob.auth, "Idempotency-Key": "comment-1"}
    first = await client.post(url, headers=headers, json={"body": "only once"})
    again = await client.post(url, headers=headers, json={"body": "only once"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    assert len((await client.get(url)).json()["items"]) == 1
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["comment_count"] == 1
    different = await client.post(url, headers=headers, json={"body": "something else"})
    assert different.status_code == 422
    assert await _count(app, schema.comments) == 1


async def test_a_refused_request_is_replayed_as_refused(app, client, make_user):
    user = await make_user()
    headers = {**user.auth, "Idempotency-Key": "bad-upload", "content-type": "multipart/form-data; boundary=x"}
    body = _multipart("x", b"this is not an image", "")
    first = await client.post(f"{API}/posts", headers=headers, content=body)
    again = await client.post(f"{API}/posts", headers=headers, content=body)
    assert first.status_code == again.status_code == 422
    assert again.json()["error"] == first.json()["error"]
    assert await _count(app, schema.posts) == 0


async def test_sign_up_with_a_key_is_replayed(app, client):
    body = {"username": "keyed", "email": "keyed@example.com", "password": "correct horse 1"}
    first = await client.post(f"{API}/accounts", headers={"Idempotency-Key": "signup-1"}, json=body)
    again = await client.post(f"{API}/accounts", headers={"Idempotency-Key": "signup-1"}, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    assert await _count(app, pool_schema.users) == 1  # the pool's account (the profile waits for confirmation)
    assert len(await app.state.ctx.platform.mail.list(to="keyed@example.com")) == 1  # one code mailed, not two
    other = await client.post(f"{API}/accounts", headers={"Idempotency-Key": "signup-2"}, json=body)
    assert other.status_code == 409


async def test_posts_without_a_key_are_not_deduplicated(app, client, make_user, jpeg):
    user = await make_user()
    photo = jpeg(size=(64, 64))
    files = {"photo": ("photo.jpg", photo, "image/jpeg")}
    r1 = await client.post(f"{API}/posts", headers=user.auth, files=files)
    r2 = await client.post(f"{API}/posts", headers=user.auth, files=files)
    assert r1.status_code == r2.status_code == 201 and r1.json()["id"] != r2.json()["id"]
    assert await _count(app, schema.posts) == 2


async def test_key_with_an_invalid_token_is_401_and_not_kept(app, client, make_user, jpeg):
    user = await make_user()
    photo = jpeg(size=(64, 64))
    headers = {"Authorization": "Bearer nope", "Idempotency-Key": "k-401", "content-type": "multipart/form-data; boundary=b"}
    r = await client.post(f"{API}/posts", headers=headers, content=_multipart("b", photo, "x"))
    assert r.status_code == 401
    # the same key is still usable by the real user: the 401 was recorded for an anonymous caller
    ok = await _post_photo(client, user, "k-401", photo, "x", boundary="b")
    assert ok.status_code == 201 and "idempotent-replayed" not in ok.headers

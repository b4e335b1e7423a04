"""API: accounts, sessions, the caller's profile, avatars, tokens, CSRF and account deletion."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from sqlalchemy import func, select

from summit import ids
from summit.security.identity import schema as pool_schema
from summit.security.identity.keys import KeySet
from summit.security.identity.tokens import LEEWAY_SECONDS, TokenIssuer
from summit.testing.http import assert_error, session_cookies
from summit.testing.mail import mailed_code

from photos import schema

API = "/api/v1"
PASSWORD = "correct horse 1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _count(app, table) -> int:  # noqa: ANN001
    async with app.state.ctx.db.read(after_write=True) as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def _object_keys(app) -> set[str]:  # noqa: ANN001
    return {info.key for info in await app.state.ctx.objects.list()}


def _key(url: str) -> str:
    assert url.startswith("/media/"), url
    return url.removeprefix("/media/")


# ---- sign-up ----------------------------------------------------------------------------------
async def _confirm(app, client, username: str, email: str) -> None:  # noqa: ANN001
    r = await client.post(f"{API}/accounts/confirm", json={"login": username, "code": await mailed_code(app.state.ctx.platform.mail, email, "confirmation")})
    assert r.status_code == 200, r.text


async def test_sign_up_returns_the_unconfirmed_pool_user_with_a_string_id(app, client):
    before = int(time.time() * 1000)
    r = await client.post(f"{API}/accounts", json={"username": "Alice_1", "email": "Alice@Example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == {"id": body["id"], "username": "alice_1", "email": "alice@example.com", "confirmed": False, "mfa_enabled": False}
    assert "password" not in r.text and "argon2" not in r.text
    assert isinstance(body["id"], str)
    user_id = int(body["id"])
    assert 0 < user_id < 2**63
    parts = ids.parse_id(user_id)
    assert before - 5_000 <= parts.ms + ids.EPOCH_MS <= int(time.time() * 1000) + 5_000
    assert 0 <= parts.shard < ids.LOGICAL_SHARDS
    assert ids.make_id(parts.seq, parts.shard, parts.ms + ids.EPOCH_MS) == user_id
    # no public profile until the address is confirmed
    assert_error(await client.get(f"{API}/users/alice_1"), 404, "user")

    await _confirm(app, client, "alice_1", "alice@example.com")
    r = await client.post(f"{API}/sessions", json={"login": "alice_1", "password": PASSWORD})
    assert r.status_code == 201, r.text
    client.cookies.clear()
    me = (await client.get(f"{API}/me", headers=_bearer(r.json()["token"]))).json()
    assert me["id"] == body["id"] and me["username"] == "alice_1" and me["email"] == "alice@example.com"
    assert me["display_name"] == "alice_1"
    assert me["bio"] == "" and me["avatar_url"] is None
    assert (me["followers"], me["following"], me["posts"]) == (0, 0, 0)
    assert (await client.get(f"{API}/users/alice_1")).json()["id"] == body["id"]


async def test_sign_up_twice_is_a_conflict_naming_the_field(client):
    r = await client.post(f"{API}/accounts", json={"username": "bob", "email": "bob@example.com", "password": PASSWORD})
    assert r.status_code == 201
    r = await client.post(f"{API}/accounts", json={"username": "BOB", "email": "other@example.com", "password": PASSWORD})
    assert assert_error(r, 409, "username")["field"] == "username"
    r = await client.post(f"{API}/accounts", json={"username": "bob2", "email": "BOB@example.com", "password": PASSWORD})
    assert assert_error(r, 409, "email")["field"] == "email"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ab", "email": "ab@example.com", "password": PASSWORD}, "username"),
        ({"username": "a" * 31, "email": "ab@example.com", "password": PASSWORD}, "username"),
        ({"username": "bad name", "email": "ab@example.com", "password": PASSWORD}, "username"),
        ({"username": ".dotty", "email": "ab@example.com", "password": PASSWORD}, "username"),
        ({"username": "api", "email": "ab@example.com", "password": PASSWORD}, "username"),
        ({"username": "carol", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "carol", "email": "carol@example.com", "password": "short"}, "password"),
        ({"username": "carol", "email": "carol@example.com", "password": "x" * 129}, "password"),
    ],
)
async def test_sign_up_rejects_invalid_fields(client, body, field):
    r = await client.post(f"{API}/accounts", json=body)
    error = assert_error(r, 422, field)
    assert error["field"] == field


# ---- sessions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("login", ["dave", "DAVE", "dave@example.com", "Dave@Example.COM"])
async def test_log_in_by_username_or_email_sets_cookies(app, client, login):
    r = await client.post(f"{API}/accounts", json={"username": "dave", "email": "dave@example.com", "password": PASSWORD})
    assert r.status_code == 201
    await _confirm(app, client, "dave", "dave@example.com")
    r = await client.post(f"{API}/sessions", json={"login": login, "password": PASSWORD})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["token"] == body["access_token"]  # the spine's name for the access token
    assert body["id_token"] and body["refresh_token"] and body["id_token"] != body["access_token"]
    assert body["user"]["username"] == "dave" and body["user"]["email"] == "dave@example.com"
    assert body["user"]["confirmed"] is True and isinstance(body["user"]["id"], str)
    cookies = {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}
    assert cookies["summit_session"].startswith(f"summit_session={body['token']};")
    assert cookies["summit_refresh"].startswith(f"summit_refresh={body['refresh_token']};")
    for name, samesite in (("summit_session", "samesite=lax"), ("summit_refresh", "samesite=strict")):
        cookie = cookies[name].lower()
        assert "httponly" in cookie and samesite in cookie and "path=/" in cookie, cookie
    client.cookies.clear()
    me = await client.get(f"{API}/me", headers=_bearer(body["token"]))
    assert me.status_code == 200 and me.json()["username"] == "dave"


async def test_log_in_with_wrong_password_or_unknown_user_is_401_with_the_same_message(client, make_user):
    user = await make_user()
    wrong = await client.post(f"{API}/sessions", json={"login": user.username, "password": "wrong password"})
    unknown = await client.post(f"{API}/sessions", json={"login": "nobody_here", "password": PASSWORD})
    assert assert_error(wrong, 401)["message"] == assert_error(unknown, 401)["message"]
    assert session_cookies(wrong) == []


def _cleared(r, name: str) -> bool:  # noqa: ANN001
    return any(c.startswith(f"{name}=") and ("max-age=0" in c.lower() or "expires=" in c.lower()) for c in r.headers.get_list("set-cookie"))


async def test_log_out_clears_the_cookies(client, make_user):
    user = await make_user()
    r = await client.post(f"{API}/sessions", json={"login": user.username, "password": user.password})
    assert r.status_code == 201
    r = await client.delete(f"{API}/sessions")  # the browser's way: the session cookies, and CSRF
    assert_error(r, 403, "CSRF")
    client.cookies.set("summit_csrf", "s3cret-token")
    r = await client.delete(f"{API}/sessions", headers={"X-CSRF-Token": "s3cret-token"})
    assert r.status_code == 204, r.text
    assert _cleared(r, "summit_session") and _cleared(r, "summit_refresh"), r.headers.get_list("set-cookie")


async def test_log_out_with_only_the_refresh_cookie_still_signs_out(client, make_user):
    """An access token lives 5 minutes: a browser (or app) idle longer than that still holds its
    refresh token, and signing out must revoke it and clear the cookies, as the spine's anonymous
    DELETE /api/v1/sessions cleared the cookie."""
    user = await make_user()
    session = (await client.post(f"{API}/sessions", json={"login": user.username, "password": user.password})).json()
    client.cookies.clear()
    cookies = f"summit_refresh={session['refresh_token']}; summit_csrf=s3cret-token"
    r = await client.delete(f"{API}/sessions", headers={"Cookie": cookies, "X-CSRF-Token": "s3cret-token"})
    assert r.status_code == 204, r.text
    assert _cleared(r, "summit_refresh"), r.headers.get_list("set-cookie")
    refreshed = await client.post(f"{API}/sessions/refresh", json={"refresh_token": session["refresh_token"]})
    assert_error(refreshed, 401)  # the signed-out device cannot come back with its refresh token


# ---- /me --------------------------------------------------------------------------------------
async def test_me_requires_a_token_and_says_how_to_get_one(client):
    error = assert_error(await client.get(f"{API}/me"), 401, "Authorization: Bearer")
    assert "/api/v1/sessions" in error["message"]


async def test_get_and_patch_me(client, make_user):
    user = await make_user()
    r = await client.get(f"{API}/me", headers=user.auth)
    assert r.status_code == 200
    assert r.json()["id"] == user.id and r.json()["email"] == user.email

    r = await client.patch(f"{API}/me", headers=user.auth, json={"display_name": "  Ada L.  ", "bio": "line one\nline two"})
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Ada L." and r.json()["bio"] == "line one\nline two"

    r = await client.patch(f"{API}/me", headers=user.auth, json={"bio": "only the bio"})
    assert r.status_code == 200
    assert r.json()["display_name"] == "Ada L." and r.json()["bio"] == "only the bio"

    public = (await client.get(f"{API}/users/{user.username}")).json()
    assert public["display_name"] == "Ada L." and public["bio"] == "only the bio"
    assert "email" not in public  # only on your own profile


async def test_get_user_by_username_and_unknown_user(client, make_user):
    alice, bob = await make_user(), await make_user()
    r = await client.get(f"{API}/users/{alice.username.upper()}", headers=bob.auth)
    assert r.status_code == 200
    assert r.json()["id"] == alice.id and r.json()["followed_by_me"] is False and "email" not in r.json()
    assert_error(await client.get(f"{API}/users/no_such_user"), 404, "user")


# ---- avatar -----------------------------------------------------------------------------------
async def test_avatar_upload_replaces_and_serves_webp(app, client, make_user, jpeg):
    user = await make_user()
    files = {"photo": ("me.png", jpeg("PNG", (300, 200)), "image/png")}
    r = await client.put(f"{API}/me/avatar", headers=user.auth, files=files)
    assert r.status_code == 200, r.text
    first = r.json()["avatar_url"]
    media = await client.get(first)
    assert media.status_code == 200 and media.headers["content-type"] == "image/webp"

    r = await client.put(f"{API}/me/avatar", headers=user.auth, files={"photo": ("me.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200
    second = r.json()["avatar_url"]
    assert second != first
    keys = await _object_keys(app)
    assert _key(second) in keys and _key(first) not in keys  # the old avatar is deleted
    assert (await client.get(first)).status_code == 404


async def test_bad_avatar_is_rejected_and_leaves_nothing(app, client, make_user):
    user = await make_user()
    r = await client.put(f"{API}/me/avatar", headers=user.auth, files={"photo": ("me.jpg", b"not an image at all", "image/jpeg")})
    error = assert_error(r, 422, "this file is not an image we can read: send a JPEG, PNG, WebP or GIF")
    assert "Error" not in error["message"] and error["field"] == "photo"  # no UnidentifiedImageError
    assert await _object_keys(app) == set()
    assert (await client.get(f"{API}/me", headers=user.auth)).json()["avatar_url"] is None


# ---- tokens -----------------------------------------------------------------------------------
async def test_garbage_and_malformed_authorization_is_401(client, make_user):
    await make_user()
    for header in ("Bearer garbage", "Bearer a.b.c", "Bearer " + "x" * 5000, "Basic dXNlcjpwYXNz", "Bearer", "Token abc"):
        r = await client.get(f"{API}/me", headers={"Authorization": header})
        assert_error(r, 401)


async def test_expired_token_is_401(app, client, make_user):
    user = await make_user()
    tokens = app.state.identity.tokens
    expired = tokens.access_token(user.id, username=user.username, now=time.time() - tokens.access_ttl - LEEWAY_SECONDS - 60)
    assert_error(await client.get(f"{API}/me", headers=_bearer(expired)), 401, "expired", "sign in again")


async def test_tampered_token_is_401(client, make_user):
    alice, bob = await make_user(), await make_user()
    header, payload, signature = alice.token.split(".")
    claims = orjson.loads(_unb64(payload))
    claims["sub"] = bob.id  # impersonate bob with alice's signature
    forged = ".".join([header, _b64(orjson.dumps(claims)), signature])
    assert_error(await client.get(f"{API}/me", headers=_bearer(forged)), 401)
    sig = bytearray(_unb64(signature))
    sig[0] ^= 1
    flipped = ".".join([header, payload, _b64(bytes(sig))])
    assert_error(await client.get(f"{API}/me", headers=_bearer(flipped)), 401)


async def test_alg_none_token_is_401(client, make_user):
    user = await make_user()
    _, payload, _ = user.token.split(".")
    for alg in ("none", "None", "HS256"):
        header = _b64(orjson.dumps({"alg": alg, "typ": "JWT"}))
        assert_error(await client.get(f"{API}/me", headers=_bearer(f"{header}.{payload}.")), 401)


async def test_token_signed_by_another_key_or_for_unknown_user_is_401(app, client, make_user, tmp_path):
    user = await make_user()
    pool_tokens = app.state.identity.tokens
    stranger = TokenIssuer(KeySet(tmp_path / "foreign-keys"), issuer=pool_tokens.issuer, audience=pool_tokens.audience)
    assert_error(await client.get(f"{API}/me", headers=_bearer(stranger.access_token(user.id, username=user.username))), 401)
    ghost = pool_tokens.access_token(str(ids.make_id(1, 1)), username="ghost")
    assert_error(await client.get(f"{API}/me", headers=_bearer(ghost)), 401, "no longer exists")
    weird = pool_tokens.access_token("not-a-number", username="weird")
    assert_error(await client.get(f"{API}/me", headers=_bearer(weird)), 401)


# ---- CSRF -------------------------------------------------------------------------------------
async def _cookie_session(client, user) -> str:  # noqa: ANN001
    r = await client.post(f"{API}/sessions", json={"login": user.username, "password": user.password})
    assert r.status_code == 201
    client.cookies.clear()
    return r.json()["token"]


async def test_cookie_authenticated_unsafe_requests_need_the_csrf_header(app, client, make_user, jpeg):
    user = await make_user()
    token = await _cookie_session(client, user)
    session = {"Cookie": f"summit_session={token}"}
    with_csrf_cookie = {"Cookie": f"summit_session={token}; summit_csrf=s3cret-token"}

    r = await client.get(f"{API}/me", headers=session)  # safe: the cookie alone is enough
    assert r.status_code == 200 and r.json()["id"] == user.id

    r = await client.patch(f"{API}/me", headers=session, json={"bio": "csrf"})
    assert_error(r, 403, "CSRF")
    r = await client.patch(f"{API}/me", headers={**with_csrf_cookie, "X-CSRF-Token": "wrong"}, json={"bio": "csrf"})
    assert_error(r, 403, "CSRF")
    r = await client.post(f"{API}/posts", headers=with_csrf_cookie, files={"photo": ("a.jpg", jpeg(), "image/jpeg")})
    assert_error(r, 403, "CSRF")
    r = await client.delete(f"{API}/me", headers=session)
    assert_error(r, 403, "CSRF")
    assert (await client.get(f"{API}/me", headers=user.auth)).json()["bio"] == ""
    assert await _count(app, schema.posts) == 0
    assert await _object_keys(app) == set()

    r = await client.patch(f"{API}/me", headers={**with_csrf_cookie, "X-CSRF-Token": "s3cret-token"}, json={"bio": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["bio"] == "ok"


# ---- account deletion -------------------------------------------------------------------------
async def test_delete_account_removes_rows_objects_and_token(app, client, make_user, make_post, drain, jpeg):
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    r = await client.put(f"{API}/me/avatar", headers=alice.auth, files={"photo": ("a.jpg", jpeg(), "image/jpeg")})
    avatar = r.json()["avatar_url"]
    assert (await client.put(f"{API}/users/{alice.username}/follow", headers=bob.auth)).status_code == 200
    assert (await client.put(f"{API}/users/{bob.username}/follow", headers=alice.auth)).status_code == 200
    alice_post = await make_post(alice, "alice's #sunset")
    bob_post = await make_post(bob, "bob's")
    await drain()
    alice_keys = {_key(avatar), _key(alice_post["photo_url"])}
    alice_post = (await client.get(f"{API}/posts/{alice_post['id']}")).json()
    alice_keys |= {_key(alice_post["thumbnails"][size]) for size in ("small", "medium", "large")}
    bob_post_now = (await client.get(f"{API}/posts/{bob_post['id']}")).json()
    bob_keys = {_key(bob_post_now["photo_url"])} | {_key(bob_post_now["thumbnails"][s]) for s in ("small", "medium", "large")}
    assert alice_keys | bob_keys <= await _object_keys(app)

    for who in (alice, carol):
        assert (await client.put(f"{API}/posts/{bob_post['id']}/like", headers=who.auth)).json()["like_count"] in (1, 2)
    for body in ("first from alice", "second from alice"):
        assert (await client.post(f"{API}/posts/{bob_post['id']}/comments", headers=alice.auth, json={"body": body})).status_code == 201
    assert (await client.post(f"{API}/posts/{bob_post['id']}/comments", headers=carol.auth, json={"body": "carol"})).status_code == 201
    assert (await client.post(f"{API}/posts/{alice_post['id']}/comments", headers=bob.auth, json={"body": "bob"})).status_code == 201
    assert (await client.put(f"{API}/posts/{alice_post['id']}/like", headers=bob.auth)).status_code == 200
    feed = (await client.get(f"{API}/feed", headers=bob.auth)).json()
    assert alice_post["id"] in [p["id"] for p in feed["items"]]

    r = await client.delete(f"{API}/me", headers=alice.auth)
    assert r.status_code == 204, r.text
    assert r.headers["set-cookie"].startswith("summit_session=")
    await drain()

    assert_error(await client.get(f"{API}/me", headers=alice.auth), 401)
    assert_error(await client.post(f"{API}/posts", headers=alice.auth, files={"photo": ("a.jpg", jpeg(), "image/jpeg")}), 401)
    assert_error(await client.get(f"{API}/users/{alice.username}"), 404)
    assert_error(await client.get(f"{API}/posts/{alice_post['id']}"), 404)
    feed = (await client.get(f"{API}/feed", headers=bob.auth)).json()
    assert [p["id"] for p in feed["items"]] == [bob_post["id"]]
    tagged = (await client.get(f"{API}/tags/sunset")).json()
    assert tagged["items"] == []

    after = (await client.get(f"{API}/posts/{bob_post['id']}", headers=bob.auth)).json()
    assert after["like_count"] == 1 and after["comment_count"] == 1
    comments = (await client.get(f"{API}/posts/{bob_post['id']}/comments")).json()["items"]
    assert [c["body"] for c in comments] == ["carol"]
    bob_profile = (await client.get(f"{API}/me", headers=bob.auth)).json()
    assert bob_profile["followers"] == 0 and bob_profile["following"] == 0

    keys = await _object_keys(app)
    assert not alice_keys & keys, alice_keys & keys
    assert bob_keys <= keys
    for key in alice_keys:
        assert (await client.get(f"/media/{key}")).status_code == 404
    async with app.state.ctx.db.read(after_write=True) as conn:
        for table, column in ((schema.posts, "author_id"), (schema.comments, "author_id"), (schema.likes, "user_id")):
            n = (await conn.execute(select(func.count()).select_from(table).where(table.c[column] == int(alice.id)))).scalar_one()
            assert n == 0, table.name
        n = (await conn.execute(select(func.count()).select_from(schema.follows).where(
            (schema.follows.c.follower_id == int(alice.id)) | (schema.follows.c.followee_id == int(alice.id))
        ))).scalar_one()
        assert n == 0

    async with app.state.ctx.db.read(after_write=True) as conn:  # the pool's account, codes and sessions are gone too
        for table in (pool_schema.users, pool_schema.refresh_tokens, pool_schema.codes):
            column = table.c.id if table is pool_schema.users else table.c.user_id
            n = (await conn.execute(select(func.count()).select_from(table).where(column == int(alice.id)))).scalar_one()
            assert n == 0, table.name
    assert_error(await client.post(f"{API}/sessions", json={"login": alice.username, "password": alice.password}), 401)

    # the name is free again, and the old token does not work for the new account
    r = await client.post(f"{API}/accounts", json={"username": alice.username, "email": alice.email, "password": PASSWORD})
    assert r.status_code == 201
    assert_error(await client.get(f"{API}/me", headers=alice.auth), 401)


async def test_delete_account_without_token_is_401(client):
    assert_error(await client.delete(f"{API}/me"), 401)

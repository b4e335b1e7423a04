"""The server-rendered web UI, in-process: every page, the forms, CSRF, escaping and authorization.

Each "browser" here is its own httpx client with its own cookie jar, so two users can act side by
side; setup that is not under test goes through the JSON API (``make_user``, ``make_post``).
Accounts, sessions, two-step verification and the dev inbox are in ``test_account_pages``.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from webui import PASSWORD, assert_redirect, csrf_of, logged_in, post_form, token, ui_login, ui_signup

from summit.testing.mail import mailed_code

from photos.web.pages import caption_parts, safe_next

HOSTILE = "<script>alert(1)</script> #tag"


# ---- rendering ----------------------------------------------------------------------------------
async def test_every_page_renders_logged_out(browser, make_user, make_post) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    post = await make_post(alice, "hello #summit")
    c = await browser()
    landing = await c.get("/")
    assert landing.status_code == 200
    assert "Summit Photos" in landing.text and 'href="/signup"' in landing.text and 'href="/login"' in landing.text
    for path in ("/signup", "/login", "/confirm", "/reset", "/reset/confirm", "/dev/inbox", "/u/alice", f"/p/{post['id']}", "/tags/summit"):
        r = await c.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "Summit Photos" in r.text
        assert "<script>" not in r.text.replace('<script src="/static/app.js" defer></script>', "")
    profile = await c.get("/u/alice")
    assert "Log in to follow" in profile.text and f'href="/p/{post["id"]}"' in profile.text
    tagged = await c.get("/tags/summit")
    assert f'href="/p/{post["id"]}"' in tagged.text
    for path in ("/new", "/settings", "/settings/security", f"/p/{post['id']}/edit", f"/p/{post['id']}/delete"):
        r = await c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")


async def test_every_page_renders_logged_in(browser, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    post = await make_post(alice, "first light #summit")
    await drain()
    c = await logged_in(browser, alice)
    home = await c.get("/")
    assert home.status_code == 200
    assert 'href="/u/alice"' in home.text and "Log out" in home.text and 'href="/new"' in home.text
    assert "first light" in home.text and '<a class="tag" href="/tags/summit">#summit</a>' in home.text
    assert re.search(r'<img class="photo" src="/media/t/[0-9a-f]+\.webp"', home.text), "feed shows the medium thumbnail"
    for path in ("/new", "/settings", "/settings/security", "/dev/inbox", "/u/alice", f"/p/{post['id']}", f"/p/{post['id']}/edit", f"/p/{post['id']}/delete", "/tags/summit"):
        r = await c.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["cache-control"] == "no-store"
        assert "content-security-policy" in r.headers
        csrf_of(r)  # every page has at least the log-out form
    page = await c.get(f"/p/{post['id']}")
    assert "Edit caption" in page.text and "Delete post" in page.text
    # logged-in visitors of /login and /signup go where they were going
    assert_redirect(await c.get("/login?next=/settings"), "/settings")
    assert_redirect(await c.get("/signup"), "/")


NAV_RE = re.compile(r'<nav class="nav" aria-label="Main">(.*?)</nav>', re.S)
NAV_LINK_RE = re.compile(r'<a href="([^"]*)"([^>]*)>([^<]*)</a>')


def _nav(page) -> dict[str, bool]:  # noqa: ANN001
    """The main navigation's links: {text: marked as the current page}."""
    match = NAV_RE.search(page.text)
    assert match, f"no main nav on {page.request.url}"
    links = {text: attrs for _, attrs, text in NAV_LINK_RE.findall(match.group(1))}
    for text, attrs in links.items():
        assert attrs.strip() in ("", 'aria-current="page"'), (text, attrs)  # no class that styles a link as current
    return {text: 'aria-current="page"' in attrs for text, attrs in links.items()}


async def test_the_nav_marks_the_page_you_are_on_and_no_other(browser, make_user, make_post) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    await make_user("bob")
    post = await make_post(alice, "hello #summit")
    c = await logged_in(browser, alice)
    expected = {
        "/": "Home",
        "/new": "New post",
        "/u/alice": "Profile",
        "/u/alice?deleted=1": "Profile",
        "/settings": "Settings",
        "/settings/security": "Settings",
        "/u/bob": None,  # someone else's profile is not yours
        f"/p/{post['id']}": None,
        "/tags/summit": None,
        "/dev/inbox": None,
        "/explore": "Explore",
        "/search?q=alice": None,
    }
    for path, current in expected.items():
        r = await c.get(path)
        assert r.status_code == 200, path
        nav = _nav(r)
        assert set(nav) == {"Home", "Explore", "New post", "Profile", "Settings"}, (path, nav)
        assert [text for text, marked in nav.items() if marked] == ([current] if current else []), (path, nav)
    # the upload form shown again with an error (at /posts) is still the New post page
    again = await c.post("/posts", data={"csrf_token": await token(c, "/new"), "caption": "no photo"})
    assert again.status_code == 422 and _nav(again)["New post"]
    # logged out
    anon = await browser()
    for path, current in {"/": None, "/login": "Log in", "/signup": "Sign up", "/u/alice": None, "/explore": "Explore"}.items():
        nav = _nav(await anon.get(path))
        assert set(nav) == {"Explore", "Log in", "Sign up"}, (path, nav)
        assert [text for text, marked in nav.items() if marked] == ([current] if current else []), (path, nav)
    # app.css styles the mark, and has no rule left that styles a link as current without it
    css = (await anon.get("/static/app.css")).text
    assert ".nav a[aria-current=page] {" in css and "nav-new" not in css


async def test_placeholder_until_thumbnails_exist(browser, make_user, make_post, app) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    worker = app.state.worker
    await worker.stop(timeout=10)  # no thumbnails yet
    post = await make_post(alice, "pending")
    c = await logged_in(browser, alice)
    home = await c.get("/")
    assert f'data-pending-post="{post["id"]}"' in home.text and "data:image/svg+xml" in home.text
    page = await c.get(f"/p/{post['id']}")
    assert f'src="{post["photo_url"]}"' in page.text, "the post page shows the original while pending"
    grid = await c.get("/u/alice")
    assert f'data-pending-post="{post["id"]}" data-size="small"' in grid.text


async def test_feed_pagination_with_older_posts_link(browser, make_user, make_post) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    ids = [(await make_post(alice, f"post number {i}"))["id"] for i in range(22)]
    c = await logged_in(browser, alice)
    first = await c.get("/")
    assert first.text.index(f'id="p{ids[-1]}"') < first.text.index(f'id="p{ids[-2]}"'), "newest first"
    assert f'id="p{ids[1]}"' not in first.text
    older = re.search(r'href="(/\?cursor=\d+)">Older posts', first.text)
    assert older
    second = await c.get(html.unescape(older.group(1)))
    assert f'id="p{ids[0]}"' in second.text and f'id="p{ids[1]}"' in second.text
    assert "Older posts" not in second.text
    for cursor in ("abc", "\u00b2", "99999999999999999999", "9223372036854775808", "-1"):
        for path in ("/", "/u/alice", "/tags/x"):
            bad = await c.get(path, params={"cursor": cursor})
            assert bad.status_code == 422 and "cursor" in bad.text, (path, cursor, bad.status_code)
    bad = await c.get(f"/p/{ids[0]}", params={"comments": "\u00b2"})
    assert bad.status_code == 422


async def test_unknown_things_are_readable_4xx_pages(browser, make_user) -> None:  # noqa: ANN001
    c = await browser()
    for path, status in (("/u/nobody", 404), ("/p/123", 404), ("/p/not-a-number", 404), ("/p/\u00b2", 404), ("/p/99999999999999999999", 404), ("/tags/!!!", 422), ("/nope", 404)):
        r = await c.get(path)
        assert r.status_code == status, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        assert 'class="alert"' in r.text


# ---- sign-up, log-in, log-out ---------------------------------------------------------------------
async def test_sign_up_confirm_log_out_and_log_in_through_forms(browser, outbox) -> None:  # noqa: ANN001
    c = await browser()
    assert_redirect(await ui_signup(c, "carol"), "/confirm?login=carol")
    page = await c.get("/confirm?login=carol")
    assert page.status_code == 200 and 'value="carol"' in page.text and 'href="/dev/inbox"' in page.text
    early = await ui_login(c, "carol")
    assert early.status_code == 403 and "Confirm your email first" in early.text
    assert 'href="/confirm?login=carol"' in early.text and "summit_session" not in c.cookies
    code = await mailed_code(outbox, "carol@example.com", "confirmation")
    assert_redirect(await post_form(c, "/confirm", "/confirm?login=carol", login="carol", code=code), "/login?login=carol&confirmed=1")
    login_page = await c.get("/login?login=carol&confirmed=1")
    assert "Your email is confirmed" in login_page.text and 'value="carol"' in login_page.text
    assert_redirect(await ui_login(c, "carol"), "/")
    home = await c.get("/")
    assert 'href="/u/carol"' in home.text and "Your feed is empty" in home.text
    assert_redirect(await post_form(c, "/logout", "/"), "/")
    assert "summit_session" not in c.cookies and "summit_refresh" not in c.cookies
    landing = await c.get("/")
    assert "Create an account" in landing.text and 'href="/u/carol"' not in landing.text
    assert_redirect(await ui_login(c, "carol@example.com"), "/")  # by email
    assert 'href="/u/carol"' in (await c.get("/")).text


async def test_form_errors_keep_input_but_not_the_password(browser, make_user) -> None:  # noqa: ANN001
    await make_user("dave")
    c = await browser()
    wrong = await ui_login(c, "dave", "not the password 1")
    assert wrong.status_code == 401
    assert "wrong username/email or password" in wrong.text and 'value="dave"' in wrong.text
    assert "not the password 1" not in wrong.text
    taken = await ui_signup(c, "dave", "a fine password 1")
    assert taken.status_code == 409 and "username is taken" in taken.text
    assert 'value="dave@example.com"' in taken.text and "a fine password 1" not in taken.text
    short = await ui_signup(c, "erin", "short")
    assert short.status_code == 422 and "at least 8 characters" in short.text and 'value="erin"' in short.text
    bad_name = await ui_signup(c, "<b>x</b>")
    assert bad_name.status_code == 422 and "&lt;b&gt;x&lt;/b&gt;" in bad_name.text and "<b>x</b>" not in bad_name.text


async def test_logged_out_new_redirects_to_login_and_back(browser, make_user) -> None:  # noqa: ANN001
    frank = await make_user("frank")
    c = await browser()
    r = await c.get("/new")
    assert_redirect(r, "/login?next=%2Fnew")
    page = await c.get(r.headers["location"])
    assert 'name="next" value="/new"' in page.text
    assert_redirect(await ui_login(c, frank.username, next_path="/new"), "/new")


@pytest.mark.parametrize("evil", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/\r\nx"])
async def test_next_must_be_a_local_path(browser, make_user, evil: str) -> None:  # noqa: ANN001
    user = await make_user()
    c = await browser()
    assert_redirect(await ui_login(c, user.username, next_path=evil), "/")
    assert safe_next(evil) == "/"


async def test_a_stale_session_cookie_is_logged_out_not_an_error(browser, make_user) -> None:  # noqa: ANN001
    c = await browser()
    c.cookies.set("summit_session", "not.a.token", domain="testserver.local")
    r = await c.get("/")
    assert "summit_session=not.a.token" in r.request.headers["cookie"]
    assert r.status_code == 200 and "Create an account" in r.text
    cleared = [h for h in r.headers.get_list("set-cookie") if h.startswith("summit_session=")]
    assert cleared and "Max-Age=0" in cleared[0]
    assert "summit_session" not in c.cookies
    # a deleted account's cookie, too
    user = await make_user()
    c2 = await logged_in(browser, user)
    await c2.post("/settings/delete", data={"csrf_token": await token(c2, "/settings"), "confirm": user.username})
    c3 = await browser()
    c3.cookies.set("summit_session", user.token, domain="testserver.local")
    r = await c3.get("/settings")
    assert "summit_session=" in r.request.headers["cookie"]
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fsettings"
    assert any(h.startswith("summit_session=") and "Max-Age=0" in h for h in r.headers.get_list("set-cookie"))


# ---- CSRF -----------------------------------------------------------------------------------------
async def test_csrf_missing_or_wrong_is_403_and_changes_nothing(browser, client, make_user, make_post, jpeg) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("bob")
    post = await make_post(alice, "original caption")
    pid = post["id"]
    comment = (await client.post(f"/api/v1/posts/{pid}/comments", headers=alice.auth, json={"body": "keep me"})).json()
    a = await logged_in(browser, alice)
    b = await logged_in(browser, bob)
    await token(a, "/")
    await token(b, "/")
    photo = {"photo": ("x.jpg", jpeg(), "image/jpeg")}
    attempts = [
        (b, "/logout", {}, None),
        (b, f"/p/{pid}/like", {}, None),
        (b, f"/p/{pid}/comments", {"body": "sneaky"}, None),
        (b, "/u/alice/follow", {}, None),
        (b, "/settings", {"display_name": "hacked", "bio": "hacked"}, None),
        (b, "/settings/delete", {"confirm": "bob"}, None),
        (a, f"/p/{pid}/edit", {"caption": "hacked"}, None),
        (a, f"/p/{pid}/delete", {}, None),
        (a, f"/comments/{comment['id']}/delete", {}, None),
        (a, "/posts", {"caption": "forged"}, photo),
        (a, "/settings/avatar", {}, photo),
        (a, "/login", {"login": "bob", "password": PASSWORD}, None),
    ]
    for c, path, fields, files in attempts:
        for bad in (None, "wrong-token"):
            data = dict(fields) | ({"csrf_token": bad} if bad else {})
            r = await c.post(path, data=data, files=files)
            assert r.status_code == 403, (path, bad, r.status_code, r.text[:300])
            assert "CSRF" in r.text
    # nothing changed
    after = (await client.get(f"/api/v1/posts/{pid}", headers=bob.auth)).json()
    assert after["caption"] == "original caption" and after["like_count"] == 0 and after["comment_count"] == 1
    assert (await client.get("/api/v1/users/bob", headers=bob.auth)).json()["display_name"] == "bob"
    alice_profile = (await client.get("/api/v1/users/alice", headers=bob.auth)).json()
    assert alice_profile["followed_by_me"] is False and alice_profile["posts"] == 1 and alice_profile["avatar_url"] is None
    assert (await client.get("/api/v1/me", headers=bob.auth)).status_code == 200
    assert 'href="/u/bob"' in (await b.get("/")).text, "bob is still logged in"
    # a cookie from another browser does not help: the token must match this browser's cookie
    r = await b.post(f"/p/{pid}/like", data={"csrf_token": await token(a, "/")})
    assert r.status_code == 403


# ---- posting, escaping, bad uploads -------------------------------------------------------------
async def test_upload_through_the_form(browser, client, make_user, jpeg, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    c = await logged_in(browser, alice)
    r = await c.post(
        "/posts",
        data={"csrf_token": await token(c, "/new"), "caption": "sunrise #Alps"},
        files={"photo": ("sunrise.jpg", jpeg(), "image/jpeg")},
    )
    assert r.status_code == 303 and re.fullmatch(r"/p/\d+", r.headers["location"])
    await drain()
    page = await c.get(r.headers["location"])
    assert "sunrise" in page.text and '<a class="tag" href="/tags/alps">#Alps</a>' in page.text
    assert re.search(r'src="/media/t/[0-9a-f]+\.webp"', page.text)
    tagged = await c.get("/tags/alps")
    assert r.headers["location"] in tagged.text


async def test_hostile_caption_is_escaped_everywhere(browser, client, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    bob = await make_user("bob")
    await client.put("/api/v1/users/alice/follow", headers=bob.auth)
    post = await make_post(alice, HOSTILE)
    pid = post["id"]
    await client.post(f"/api/v1/posts/{pid}/comments", headers=bob.auth, json={"body": "<img src=x onerror=alert(2)>"})
    a = await logged_in(browser, alice)
    b = await logged_in(browser, bob)
    anon = await browser()
    pages = [
        (a, "/"),
        (b, "/"),
        (a, f"/p/{pid}"),
        (anon, f"/p/{pid}"),
        (a, f"/p/{pid}/edit"),
        (a, f"/p/{pid}/delete"),
        (b, "/u/alice"),
        (anon, "/tags/tag"),
    ]
    for c, path in pages:
        r = await c.get(path)
        assert r.status_code == 200, path
        assert "<script>alert(1)</script>" not in r.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text, path
        assert "<img src=x" not in r.text, path
    page = await b.get(f"/p/{pid}")
    assert '<a class="tag" href="/tags/tag">#tag</a>' in page.text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page.text
    # a hostile display name and bio, too
    await client.patch("/api/v1/me", headers=alice.auth, json={"display_name": "<b>Al</b>", "bio": '"><script>x()</script>'})
    for path in ("/u/alice", "/", f"/p/{pid}"):
        r = await b.get(path)
        assert "<b>Al</b>" not in r.text and "<script>x()" not in r.text, path
        assert "&lt;b&gt;Al&lt;/b&gt;" in r.text, path


def test_caption_parts_split_text_and_tags() -> None:
    assert caption_parts("hi #Summit! and #two_3") == [("hi ", None), ("#Summit", "summit"), ("! and ", None), ("#two_3", "two_3")]
    assert caption_parts("") == []
    assert caption_parts("<b>#x</b>") == [("<b>", None), ("#x", "x"), ("</b>", None)]


async def test_bad_uploads_are_4xx_with_a_message_and_create_nothing(browser, client, make_user, jpeg) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    c = await logged_in(browser, alice)
    cases = [
        ({"photo": ("cat.jpg", b"this is not an image at all", "image/jpeg")}, {"caption": "fake"}, 422,
         "this file is not an image we can read: send a JPEG, PNG, WebP or GIF"),
        ({"photo": ("empty.jpg", b"", "image/jpeg")}, {"caption": "empty"}, 422, "empty"),
        (None, {"caption": "no file"}, 422, "empty"),
        ({"photo": ("ok.jpg", jpeg(), "image/jpeg")}, {"caption": "x" * 2201}, 422, "the limit is 2200"),
        ({"photo": ("ok.jpg", jpeg(), "image/jpeg")}, {"caption": "bad\x00nul"}, 422, "control characters"),
    ]
    for files, fields, status, message in cases:
        r = await c.post("/posts", data={"csrf_token": await token(c, "/new"), **fields}, files=files)
        assert r.status_code == status, (fields["caption"][:20], r.status_code, r.text[:300])
        assert message in r.text and 'class="alert"' in r.text
        assert not re.search(r"[A-Z]\w*(Error|Exception)\b", r.text), "no Python exception name on the page"
        assert 'action="/posts"' in r.text, "the form is shown again"
        if len(fields["caption"]) < 100 and "\x00" not in fields["caption"]:
            assert fields["caption"] in r.text, "the caption the user typed is kept"
    profile = (await client.get("/api/v1/users/alice", headers=alice.auth)).json()
    assert profile["posts"] == 0
    # a malformed multipart body is a 400 page, not a 500
    r = await c.post(
        "/posts", content=b"--xyz\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xyz"}
    )
    assert 400 <= r.status_code < 500


MiB = 1024 * 1024
TOO_LARGE = "the photo is larger than 20 MiB (20,971,520 bytes); send a smaller one"


def _multipart(csrf: str, photo_size: int, boundary: str = "summitboundary") -> tuple[bytes, dict[str, str]]:
    """A form post as a browser sends it: the CSRF token, a caption and a photo of ``photo_size`` bytes."""
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\ntoo big\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"big.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + b"\xff\xd8\xff\xe0" + b"\0" * (photo_size - 4) + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def _assert_too_large_page(r, message: str = TOO_LARGE) -> None:  # noqa: ANN001
    assert r.status_code == 413, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert "<h1>Too large</h1>" in r.text and f'<p class="alert" role="alert">{html.escape(message)}</p>' in r.text
    assert '"error"' not in r.text and "too_large" not in r.text, "an HTML page, not the API's JSON"
    assert r.headers["connection"] == "close"


async def test_the_size_limit_is_told_in_one_unit_on_the_page_and_by_the_server(app, browser, make_user) -> None:  # noqa: ANN001
    """20 MiB = 20,971,520 bytes: the number app.js checks, the hint, and the refusal app.js shows are
    the server's own, for posts and for avatars."""
    assert app.state.ctx.platform.blueprint.uploads.max_photo_bytes == 20 * MiB
    c = await logged_in(browser, await make_user("alice"))
    for path in ("/new", "/settings"):
        page = (await c.get(path)).text
        assert 'data-max-bytes="20971520"' in page, path
        assert f'data-too-large="{html.escape(TOO_LARGE)}"' in page, path
        assert "up to 20 MiB" in page and "1048576" not in page and " MB" not in page, path
    js = (await c.get("/static/app.js")).text
    assert "data-too-large" in js and "1048576" not in js, "app.js shows the server's sentence, computes no unit of its own"


async def test_an_oversized_upload_from_a_page_gets_an_html_error_page(app, browser, client, make_user) -> None:  # noqa: ANN001
    """A form posted without app.js's check (no script, or bypassed): refused at the edge before the
    body is read, as an HTML page with the server's message; the API keeps its JSON error."""
    alice = await make_user("alice")
    c = await logged_in(browser, alice)
    csrf = await token(c, "/new")
    body, headers = _multipart(csrf, 21 * MiB)  # over the limit and the multipart envelope
    r = await c.post("/posts", content=body, headers=headers)
    _assert_too_large_page(r)
    assert 'href="/u/alice">Profile</a>' in r.text, "the page's header still shows who is logged in"
    # whatever the Accept header says: the route is a page
    r = await c.post("/posts", content=body, headers={**headers, "accept": "*/*"})
    _assert_too_large_page(r)

    # a body that does not say its length (chunked) and keeps coming: caught as it streams
    async def chunks():  # noqa: ANN202
        for at in range(0, len(body), MiB):
            yield body[at : at + MiB]

    r = await c.post("/posts", content=chunks(), headers=headers)
    _assert_too_large_page(r)
    # the avatar form, too; and any other form over the 1 MiB every other body gets
    body, headers = _multipart(await token(c, "/settings"), 21 * MiB)
    _assert_too_large_page(await c.post("/settings/avatar", content=body, headers=headers))
    r = await c.post("/settings", data={"csrf_token": csrf, "bio": "x" * (2 * MiB)})
    _assert_too_large_page(r, "request body is larger than 1,048,576 bytes; send a smaller one")
    # logged out, the page still renders (with the log-in links)
    anon = await browser()
    body, headers = _multipart("no-token", 21 * MiB)
    r = await anon.post("/posts", content=body, headers=headers)
    _assert_too_large_page(r)
    assert 'href="/login"' in r.text

    # the API answers the same refusal in JSON, even to a client that accepts HTML
    files = {"photo": ("big.jpg", b"\xff\xd8" + b"\0" * (21 * MiB), "image/jpeg")}
    r = await client.post("/api/v1/posts", headers={**alice.auth, "accept": "text/html"}, files=files)
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == {"code": "too_large", "message": TOO_LARGE}
    assert (await client.get("/api/v1/me", headers=alice.auth)).json()["posts"] == 0


async def test_a_photo_one_byte_over_the_limit_is_refused_on_the_form_with_the_same_message(browser, client, make_user) -> None:  # noqa: ANN001
    """Within the multipart envelope, so the edge lets it through: the service counts the photo's own
    bytes against the same limit, and the form is shown again with the same sentence."""
    alice = await make_user("alice")
    c = await logged_in(browser, alice)
    body, headers = _multipart(await token(c, "/new"), 20 * MiB + 1)
    r = await c.post("/posts", content=body, headers=headers)
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert f'<p class="alert" role="alert">{html.escape(TOO_LARGE)}</p>' in r.text and 'action="/posts"' in r.text
    assert (await client.get("/api/v1/me", headers=alice.auth)).json()["posts"] == 0


async def test_hashtags_in_comments_are_linked_and_list_the_post_on_the_tag_page(browser, client, make_user, make_post) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("bob")
    post = await make_post(alice, "a quiet lake")
    pid = post["id"]
    b = await logged_in(browser, bob)
    anon = await browser()
    assert f'href="/p/{pid}"' not in (await anon.get("/tags/golden")).text
    r = await post_form(b, f"/p/{pid}/comments", f"/p/{pid}", body="So #Golden <b>now</b> #x_1")
    assert r.status_code == 303
    cid = r.headers["location"].split("#c")[1]
    page = await anon.get(f"/p/{pid}")
    body = re.search(r'<span class="comment-body">(.*?)</span></p>', page.text, re.S)
    assert body, page.text[:500]
    assert body.group(1) == ('So <a class="tag" href="/tags/golden">#Golden</a> &lt;b&gt;now&lt;/b&gt; '
                             '<a class="tag" href="/tags/x_1">#x_1</a>'), body.group(1)
    tagged = await anon.get("/tags/golden")
    assert tagged.status_code == 200 and f'href="/p/{pid}"' in tagged.text
    assert "Posts whose caption or comments carry #golden" in tagged.text
    # deleting the comment through its form takes the post off the tag's page
    assert_redirect(await post_form(b, f"/comments/{cid}/delete", f"/p/{pid}", next=f"/p/{pid}#comments"), f"/p/{pid}#comments")
    assert f'href="/p/{pid}"' not in (await anon.get("/tags/golden")).text
    assert "No posts with this tag yet" in (await anon.get("/tags/x_1")).text


# ---- authorization --------------------------------------------------------------------------------
async def test_b_cannot_delete_or_edit_as_post_or_comment(browser, client, make_user, make_post) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("bob")
    post = await make_post(alice, "mine")
    pid = post["id"]
    comment = (await client.post(f"/api/v1/posts/{pid}/comments", headers=alice.auth, json={"body": "also mine"})).json()
    b = await logged_in(browser, bob)
    page = await b.get(f"/p/{pid}")
    assert "Delete post" not in page.text and "Edit caption" not in page.text
    assert f'action="/comments/{comment["id"]}/delete"' not in page.text
    for path, fields in (
        (f"/p/{pid}/delete", {}),
        (f"/p/{pid}/edit", {"caption": "taken over"}),
        (f"/comments/{comment['id']}/delete", {"next": f"/p/{pid}"}),
    ):
        r = await post_form(b, path, "/", **fields)
        assert r.status_code in (403, 404), (path, r.status_code)
        assert 'class="alert"' in r.text
    for path in (f"/p/{pid}/edit", f"/p/{pid}/delete"):
        assert (await b.get(path)).status_code == 403
    after = (await client.get(f"/api/v1/posts/{pid}", headers=alice.auth)).json()
    assert after["caption"] == "mine" and after["comment_count"] == 1
    comments = (await client.get(f"/api/v1/posts/{pid}/comments")).json()["items"]
    assert [c["id"] for c in comments] == [comment["id"]]


# ---- the social actions through forms ---------------------------------------------------------------
async def test_follow_like_comment_edit_and_delete_through_forms(browser, client, make_user, make_post) -> None:  # noqa: ANN001
    alice, bob = await make_user("alice"), await make_user("bob")
    post = await make_post(alice, "hello")
    pid = post["id"]
    b = await logged_in(browser, bob)
    assert "Your feed is empty" in (await b.get("/")).text
    profile = await b.get("/u/alice")
    assert 'name="do" value="follow"' in profile.text
    assert_redirect(await post_form(b, "/u/alice/follow", "/u/alice", do="follow"), "/u/alice")
    profile = await b.get("/u/alice")
    assert "Unfollow" in profile.text and "<strong>1</strong> follower" in profile.text
    assert f'id="p{pid}"' in (await b.get("/")).text, "alice's post is in bob's feed"

    assert_redirect(await post_form(b, f"/p/{pid}/like", "/", do="like", next=f"/#p{pid}"), f"/#p{pid}")
    feed = await b.get("/")
    assert "1 like<" in feed.text and 'aria-pressed="true"' in feed.text
    assert_redirect(await post_form(b, f"/p/{pid}/like", "/", do="unlike"), f"/p/{pid}")
    assert "0 likes" in (await b.get(f"/p/{pid}")).text

    r = await post_form(b, f"/p/{pid}/comments", f"/p/{pid}", body="nice <shot>")
    assert r.status_code == 303 and r.headers["location"].startswith(f"/p/{pid}#c")
    page = await b.get(f"/p/{pid}")
    assert "nice &lt;shot&gt;" in page.text and "1 comment<" in page.text
    cid = r.headers["location"].split("#c")[1]
    assert f'action="/comments/{cid}/delete"' in page.text
    empty = await post_form(b, f"/p/{pid}/comments", f"/p/{pid}", body="   ")
    assert empty.status_code == 422 and "must not be empty" in empty.text
    long = await post_form(b, f"/p/{pid}/comments", f"/p/{pid}", body="y" * 1001)
    assert long.status_code == 422 and "the limit is 1000" in long.text and "y" * 1001 in long.text
    assert_redirect(await post_form(b, f"/comments/{cid}/delete", f"/p/{pid}", next=f"/p/{pid}#comments"), f"/p/{pid}#comments")
    assert "No comments yet" in (await b.get(f"/p/{pid}")).text

    assert_redirect(await post_form(b, "/u/alice/follow", "/u/alice", do="unfollow"), "/u/alice")
    assert "Your feed is empty" in (await b.get("/")).text
    self_follow = await post_form(b, "/u/bob/follow", "/u/bob")
    assert self_follow.status_code == 422 and "cannot follow yourself" in self_follow.text
    unknown = await post_form(b, "/u/nobody/follow", "/")
    assert unknown.status_code == 404

    a = await logged_in(browser, alice)
    assert_redirect(await post_form(a, f"/p/{pid}/edit", f"/p/{pid}/edit", caption="edited #new"), f"/p/{pid}")
    assert '<a class="tag" href="/tags/new">#new</a>' in (await a.get(f"/p/{pid}")).text
    too_long = await post_form(a, f"/p/{pid}/edit", f"/p/{pid}/edit", caption="z" * 2201)
    assert too_long.status_code == 422 and "the limit is 2200" in too_long.text
    confirm = await a.get(f"/p/{pid}/delete")
    assert "Delete permanently" in confirm.text
    assert_redirect(await post_form(a, f"/p/{pid}/delete", f"/p/{pid}/delete"), "/u/alice?deleted=1")
    assert (await client.get(f"/api/v1/posts/{pid}")).status_code == 404
    assert "The post was deleted" in (await a.get("/u/alice?deleted=1")).text


async def test_logged_out_actions_go_to_login(browser, make_user, make_post) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    post = await make_post(alice)
    c = await browser()
    assert_redirect(await post_form(c, f"/p/{post['id']}/like", "/login"), f"/login?next=%2Fp%2F{post['id']}")
    assert_redirect(await post_form(c, "/u/alice/follow", "/login"), "/login?next=%2Fu%2Falice")
    r = await post_form(c, "/posts", "/login", caption="x")
    assert r.status_code == 303 and parse_qs(urlsplit(r.headers["location"]).query) == {"next": ["/new"]}


# ---- settings -------------------------------------------------------------------------------------
async def test_settings_profile_avatar_and_account_deletion(browser, client, make_user, make_post, jpeg) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    await make_post(alice, "to be removed")
    c = await logged_in(browser, alice)
    assert_redirect(
        await post_form(c, "/settings", "/settings", display_name="Alice Liddell", bio="Down the\nrabbit hole"),
        "/settings?saved=profile",
    )
    assert "Profile saved" in (await c.get("/settings?saved=profile")).text
    profile = await c.get("/u/alice")
    assert "Alice Liddell" in profile.text and "Down the\nrabbit hole" in profile.text
    bad = await post_form(c, "/settings", "/settings", display_name="n" * 61, bio="kept bio")
    assert bad.status_code == 422 and "the limit is 60" in bad.text and "kept bio" in bad.text

    r = await c.post(
        "/settings/avatar",
        data={"csrf_token": await token(c, "/settings")},
        files={"photo": ("me.png", jpeg("PNG", (300, 200)), "image/png")},
    )
    assert_redirect(r, "/settings?saved=avatar")
    me = (await client.get("/api/v1/me", headers=alice.auth)).json()
    assert me["avatar_url"] and me["avatar_url"] in (await c.get("/u/alice")).text
    not_image = await c.post(
        "/settings/avatar",
        data={"csrf_token": await token(c, "/settings")},
        files={"photo": ("me.png", b"GIF89a but not really", "image/png")},
    )
    assert not_image.status_code == 422 and 'class="alert"' in not_image.text

    wrong = await post_form(c, "/settings/delete", "/settings", confirm="bob")
    assert wrong.status_code == 422 and "type your username" in wrong.text
    assert (await client.get("/api/v1/users/alice")).status_code == 200
    assert_redirect(await post_form(c, "/settings/delete", "/settings", confirm="alice"), "/?deleted=1")
    assert (await client.get("/api/v1/users/alice")).status_code == 404
    landing = await c.get("/?deleted=1")
    assert "were deleted" in landing.text and "summit_session" not in c.cookies

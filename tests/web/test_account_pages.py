"""The web UI's account pages, in-process: confirmation by the mailed code, log-in with TOTP, Settings
-> Security (TOTP enrolment, password change, sign-out everywhere), password reset, the dev inbox,
CSRF on each of these forms, and the browser session kept alive by the refresh cookie.

Codes come from the embedded outbox (the ``outbox`` fixture), TOTP codes from pyotp with
the secret the page shows. Each "browser" is its own httpx client with its own cookie jar.
"""

from __future__ import annotations

import base64
import html
import re
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from webui import (
    PASSWORD,
    assert_redirect,
    csrf_of,
    logged_in,
    post_form,
    signed_in_as,
    token,
    ui_confirm,
    ui_login,
    ui_signup,
)

from summit.errors import Unauthorized
from summit.ports.mail import Mailer
from summit.testing.mail import mailed_code

NEW_PASSWORD = "a brand new secret 7"


def field(page, name: str) -> str:  # noqa: ANN001
    """The value of the (hidden) input ``name`` on ``page``."""
    match = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert match, f"no {name} field on {page.request.url}"
    return html.unescape(match.group(1))


def totp_secret(page) -> str:  # noqa: ANN001
    match = re.search(r'<code class="secret" id="totp-secret">([A-Z2-7 ]+)</code>', page.text)
    assert match, "the enrolment page shows the secret"
    return match.group(1).replace(" ", "")


def next_code(secret: str) -> str:
    """The code of the next time step: accepted now (the pool allows one step of clock skew) and
    later than a code just used, which the pool refuses to accept twice."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def enable_totp_by_api(client, user) -> str:  # noqa: ANN001
    r = await client.post("/api/v1/me/mfa/totp", headers=user.auth)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await client.post("/api/v1/me/mfa/totp/verify", headers=user.auth, json={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    return secret


# ---- confirmation -------------------------------------------------------------------------------
async def test_confirm_page_refuses_a_wrong_code_and_takes_the_right_one(browser, outbox) -> None:  # noqa: ANN001
    c = await browser()
    assert_redirect(await ui_signup(c, "gina"), "/confirm?login=gina")
    code = await mailed_code(outbox, "gina@example.com", "confirmation")
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
    wrong = await post_form(c, "/confirm", "/confirm?login=gina", login="gina", code=wrong_code)
    assert wrong.status_code == 422 and 'class="alert"' in wrong.text and "wrong or expired code" in wrong.text
    assert 'value="gina"' in wrong.text, "the login is kept"
    empty = await post_form(c, "/confirm", "/confirm?login=gina", login="gina", code="")
    assert empty.status_code == 422 and "wrong or expired code" in empty.text
    unknown = await post_form(c, "/confirm", "/confirm", login="nobody_here", code=code)
    assert unknown.status_code == 422 and "wrong or expired code" in unknown.text
    assert (await c.get("/u/gina")).status_code == 404, "no profile before confirmation"
    r = await post_form(c, "/confirm", "/confirm?login=gina", login="gina", code=f" {code} ", next="/settings")
    assert_redirect(r, "/login?login=gina&confirmed=1&next=%2Fsettings")
    assert (await c.get("/u/gina")).status_code == 200, "confirming made the profile"
    assert_redirect(await ui_login(c, "gina", next_path="/settings"), "/settings")


async def test_resend_mails_a_new_code_and_answers_the_same_for_anyone(browser, outbox) -> None:  # noqa: ANN001
    c = await browser()
    await ui_signup(c, "hugo")
    first = await mailed_code(outbox, "hugo@example.com", "confirmation")
    r = await post_form(c, "/confirm", "/confirm?login=hugo", login="hugo", resend="1")
    assert r.status_code == 200 and "a new code is on its way" in r.text
    assert len(await outbox.list(to="hugo@example.com")) == 2
    second = await mailed_code(outbox, "hugo@example.com", "confirmation")
    unknown = await post_form(c, "/confirm", "/confirm", login="nobody_here", resend="1")
    assert unknown.status_code == 200 and "a new code is on its way" in unknown.text
    if first != second:  # a new code replaces the old one
        stale = await post_form(c, "/confirm", "/confirm?login=hugo", login="hugo", code=first)
        assert stale.status_code == 422
    assert_redirect(await post_form(c, "/confirm", "/confirm?login=hugo", login="hugo", code=second), "/login?login=hugo&confirmed=1")


# ---- log-in with TOTP ---------------------------------------------------------------------------
async def test_login_with_totp_goes_through_the_mfa_page(browser, client, make_user) -> None:  # noqa: ANN001
    ivy = await make_user("ivy")
    secret = await enable_totp_by_api(client, ivy)
    c = await browser()
    r = await ui_login(c, "ivy", next_path="/settings")
    assert r.status_code == 200 and "Two-step verification" in r.text and 'action="/login/mfa"' in r.text
    assert "summit_session" not in c.cookies, "no session before the second factor"
    challenge = field(r, "challenge")
    assert field(r, "next") == "/settings"
    wrong = await c.post("/login/mfa", data={"csrf_token": csrf_of(r), "challenge": challenge, "code": "12345x", "next": "/settings"})
    assert wrong.status_code == 401 and "wrong or already used code" in wrong.text
    assert field(wrong, "challenge") == challenge, "the page keeps the challenge for another try"
    code = next_code(secret)
    ok = await c.post("/login/mfa", data={"csrf_token": csrf_of(r), "challenge": challenge, "code": code, "next": "/settings"})
    assert_redirect(ok, "/settings")
    assert await signed_in_as(c) == "ivy"
    # the same code does not work twice, a forged challenge not at all
    d = await browser()
    again = await ui_login(d, "ivy")
    replay = await d.post("/login/mfa", data={"csrf_token": csrf_of(again), "challenge": field(again, "challenge"), "code": code})
    assert replay.status_code == 401 and "wrong or already used code" in replay.text
    forged = await d.post("/login/mfa", data={"csrf_token": csrf_of(again), "challenge": "not.a.challenge", "code": code})
    assert forged.status_code == 401 and "sign in again" in forged.text
    assert "summit_session" not in d.cookies
    assert_redirect(await d.get("/login/mfa"), "/login")


# ---- Settings -> Security -----------------------------------------------------------------------
async def test_totp_enrolment_through_settings(browser, make_user) -> None:  # noqa: ANN001
    jo = await make_user("joan")
    c = await logged_in(browser, jo)
    settings = await c.get("/settings")
    assert 'href="/settings" aria-current="page">Profile</a>' in settings.text and 'href="/settings/security">Security</a>' in settings.text
    page = await c.get("/settings/security")
    assert page.status_code == 200 and "Set up an authenticator app" in page.text and ">Off<" in page.text
    assert 'href="/settings/security" aria-current="page">Security</a>' in page.text
    start = await post_form(c, "/settings/security/totp", "/settings/security")
    assert start.status_code == 200
    secret = totp_secret(start)
    qr = re.search(r'<img class="qr" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', start.text)
    assert qr, "the QR code is an <img> with a data: URI"
    svg = base64.b64decode(qr.group(1)).decode()
    assert svg.lstrip().startswith("<svg") and "<script" not in svg
    uri = html.unescape(re.search(r'<code id="totp-uri">([^<]+)</code>', start.text).group(1))
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp" and parse_qs(parts.query)["secret"] == [secret]
    assert "joan" in parts.path and parse_qs(parts.query)["issuer"] == ["Summit Photos"]
    assert "summit_session" not in start.text and start.headers["cache-control"] == "no-store"

    wrong_code = f"{(int(pyotp.TOTP(secret).now()) + 500_000) % 1_000_000:06d}"
    wrong = await post_form(c, "/settings/security/totp/verify", "/settings/security", code=wrong_code, secret=secret)
    assert wrong.status_code == 422 and "wrong code" in wrong.text
    assert totp_secret(wrong) == secret and "data:image/svg+xml;base64," in wrong.text, "the same QR code again"
    assert "Set up an authenticator app" not in wrong.text

    done = await post_form(c, "/settings/security/totp/verify", "/settings/security", code=pyotp.TOTP(secret).now(), secret=secret)
    assert done.status_code == 200 and "Two-step verification is on" in done.text
    codes = re.findall(r"<li><code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code></li>", done.text)
    assert len(codes) == 10
    after = await c.get("/settings/security")
    assert ">On<" in after.text and codes[0] not in after.text, "recovery codes are shown once"
    assert "Set up an authenticator app" not in after.text
    twice = await post_form(c, "/settings/security/totp", "/settings/security")
    assert twice.status_code == 409 and "already on" in twice.text
    assert_redirect(await c.get("/settings/security/totp"), "/settings/security")

    # the next log-in asks for a code; a recovery code works, once
    d = await browser()
    r = await ui_login(d, "joan")
    assert 'action="/login/mfa"' in r.text
    ok = await d.post("/login/mfa", data={"csrf_token": csrf_of(r), "challenge": field(r, "challenge"), "code": codes[3]})
    assert_redirect(ok, "/")
    assert await signed_in_as(d) == "joan"
    e = await browser()
    r = await ui_login(e, "joan")
    used = await e.post("/login/mfa", data={"csrf_token": csrf_of(r), "challenge": field(r, "challenge"), "code": codes[3]})
    assert used.status_code == 401
    ok = await e.post("/login/mfa", data={"csrf_token": csrf_of(r), "challenge": field(r, "challenge"), "code": next_code(secret)})
    assert_redirect(ok, "/")


async def test_change_password(browser, make_user) -> None:  # noqa: ANN001
    kim = await make_user("kim")
    c = await logged_in(browser, kim)
    wrong = await post_form(c, "/settings/security/password", "/settings/security", current_password="not it at all", new_password=NEW_PASSWORD)
    assert wrong.status_code == 401 and "the current password is wrong" in wrong.text
    assert NEW_PASSWORD not in wrong.text and 'aria-invalid="true"' in wrong.text
    weak = await post_form(c, "/settings/security/password", "/settings/security", current_password=PASSWORD, new_password="short")
    assert weak.status_code == 422 and "at least 8 characters" in weak.text
    common = await post_form(c, "/settings/security/password", "/settings/security", current_password=PASSWORD, new_password="password123")
    assert common.status_code == 422
    r = await post_form(c, "/settings/security/password", "/settings/security", current_password=PASSWORD, new_password=NEW_PASSWORD)
    assert_redirect(r, "/settings/security?saved=password")
    assert "Password changed." in (await c.get("/settings/security?saved=password")).text
    assert await signed_in_as(c) == "kim", "this device stays signed in"
    d = await browser()
    assert (await ui_login(d, "kim", PASSWORD)).status_code == 401
    assert_redirect(await ui_login(d, "kim", NEW_PASSWORD), "/")


async def test_sign_out_everywhere_signs_out_every_device(browser, app, client, make_user) -> None:  # noqa: ANN001
    lou = await make_user("lou")
    one = await logged_in(browser, lou)
    two = await logged_in(browser, lou)
    three = await logged_in(browser, lou)
    assert await signed_in_as(two) == "lou" and await signed_in_as(three) == "lou"
    refresh_two = two.cookies["summit_refresh"]
    page = await one.get("/settings/security")
    assert 'action="/settings/security/sign-out-everywhere"' in page.text
    r = await post_form(one, "/settings/security/sign-out-everywhere", "/settings/security")
    assert_redirect(r, "/login?everywhere=1")
    assert "summit_session" not in one.cookies and "summit_refresh" not in one.cookies
    assert "signed out on every device" in (await one.get("/login?everywhere=1")).text
    assert await signed_in_as(one) is None

    # device two: its access cookie is refused on its next page load, and the response clears it
    home = await two.get("/settings")
    assert home.status_code == 303 and home.headers["location"] == "/login?next=%2Fsettings"
    assert any(h.startswith("summit_session=") and "Max-Age=0" in h for h in home.headers.get_list("set-cookie"))
    assert await signed_in_as(two) is None
    # ... and its refresh token is revoked too (the API refuses it as well as the page would)
    refused = await client.post("/api/v1/sessions/refresh", json={"refresh_token": refresh_two})
    assert refused.status_code == 401
    # device three, whose access token is about to expire, fails to refresh and is signed out
    expiring = app.state.identity.tokens.access_token(lou.id, username="lou", now=time.time() - 3600)
    three.cookies.set("summit_session", expiring, domain="testserver.local")
    r = await three.get("/")
    assert "Create an account" in r.text
    assert any(h.startswith("summit_refresh=") and "Max-Age=0" in h for h in r.headers.get_list("set-cookie"))
    # signing in again works
    assert_redirect(await ui_login(one, "lou"), "/")
    assert await signed_in_as(one) == "lou"


# ---- password reset -----------------------------------------------------------------------------
async def test_password_reset_pages(browser, outbox, make_user) -> None:  # noqa: ANN001
    mia = await make_user("mia")
    elsewhere = await logged_in(browser, mia)
    c = await browser()
    login_page = await c.get("/login?login=mia")
    assert 'href="/reset?login=mia"' in login_page.text
    form = await c.get("/reset?login=mia")
    assert form.status_code == 200 and 'value="mia"' in form.text and "Open the dev inbox" in form.text
    before = len(await outbox.list(to="mia@example.com"))
    # the same answer for an account and for no account
    r = await post_form(c, "/reset", "/reset", login="mia")
    assert_redirect(r, "/reset/confirm?login=mia&sent=1")
    nobody = await post_form(c, "/reset", "/reset", login="nobody_here")
    assert_redirect(nobody, "/reset/confirm?login=nobody_here&sent=1")
    a, b = await c.get(r.headers["location"]), await c.get(nobody.headers["location"])
    assert a.status_code == b.status_code == 200
    strip = lambda page: re.sub(r'(value="|login=)[^"&]*', "", page.text)  # noqa: E731
    assert strip(a) == strip(b) and "If an account matches" in a.text and "Open the dev inbox" in a.text
    assert len(await outbox.list(to="mia@example.com")) == before + 1
    empty = await post_form(c, "/reset", "/reset", login="  ")
    assert empty.status_code == 422 and "enter your username or email" in empty.text

    code = await mailed_code(outbox, "mia@example.com", "password reset")
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
    wrong = await post_form(c, "/reset/confirm", "/reset/confirm?login=mia", login="mia", code=wrong_code, new_password=NEW_PASSWORD)
    assert wrong.status_code == 422 and "wrong or expired code" in wrong.text and NEW_PASSWORD not in wrong.text
    weak = await post_form(c, "/reset/confirm", "/reset/confirm?login=mia", login="mia", code=code, new_password="short")
    assert weak.status_code == 422 and "at least 8 characters" in weak.text
    done = await post_form(c, "/reset/confirm", "/reset/confirm?login=mia", login="mia@example.com", code=code, new_password=NEW_PASSWORD)
    assert_redirect(done, "/login?login=mia%40example.com&reset=1")
    assert "every device was signed out" in (await c.get(done.headers["location"])).text
    assert await signed_in_as(elsewhere) is None, "a reset signs out every device"
    assert (await ui_login(c, "mia", PASSWORD)).status_code == 401
    assert_redirect(await ui_login(c, "mia", NEW_PASSWORD), "/")
    reused = await post_form(c, "/reset/confirm", "/reset/confirm", login="mia", code=code, new_password="yet another one 9")
    assert reused.status_code == 422, "a reset code works once"


# ---- the dev inbox ------------------------------------------------------------------------------
async def test_dev_inbox_on_loopback_only(browser, app, outbox, monkeypatch) -> None:  # noqa: ANN001
    local = await browser()
    await ui_signup(local, "nina")
    await ui_signup(local, "omar")
    await post_form(local, "/reset", "/reset", login="nina")
    page = await local.get("/dev/inbox")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    subjects = re.findall(r'<h2 class="mail-subject">([^<]+)</h2>', page.text)
    assert len(subjects) == 3 and "password reset code" in subjects[0], "newest first"
    nina_code = await mailed_code(outbox, "nina@example.com", "password reset")
    assert nina_code in page.text and "nina@example.com" in page.text and "omar@example.com" in page.text
    assert "Welcome to Summit Photos!" in page.text and re.search(r'<time [^>]*datetime="\d{4}-\d\d-\d\dT', page.text)
    only = await local.get("/dev/inbox", params={"to": "OMAR@example.com"})
    assert "omar@example.com" in only.text and "nina@example.com" not in only.text
    ipv6 = await browser(client=("::1", 4242))
    assert (await ipv6.get("/dev/inbox")).status_code == 200
    # anyone else: the same 404 as an unknown page, and no link to it
    remote = await browser(client=("10.0.0.5", 123))
    r = await remote.get("/dev/inbox")
    assert r.status_code == 404 and "no such page" in r.text and "nina@example.com" not in r.text
    assert "Open the dev inbox" not in (await remote.get("/confirm?login=nina")).text
    assert "Open the dev inbox" not in (await remote.get("/reset")).text
    assert "Open the dev inbox" in (await local.get("/confirm?login=nina")).text
    proxied = await local.get("/dev/inbox", headers={"x-forwarded-for": "203.0.113.9"})
    assert proxied.status_code == 404, "a reverse proxy on this machine does not make visitors local"

    class Delivering(Mailer):  # a mail port that sends mail on (like SMTP) rather than keeping it
        @classmethod
        def from_url(cls, url: str) -> Delivering:
            return cls()

        async def send(self, message) -> str:  # noqa: ANN001
            return "sent"

    monkeypatch.setattr(app.state.ctx.platform, "mail", Delivering())
    assert (await local.get("/dev/inbox")).status_code == 404
    assert "Open the dev inbox" not in (await local.get("/confirm")).text


# ---- CSRF on every account form ----------------------------------------------------------------
async def test_csrf_on_every_account_form(browser, app, outbox, client, make_user) -> None:  # noqa: ANN001
    pat = await make_user("pat")
    c = await logged_in(browser, pat)
    await token(c, "/settings/security")
    anon = await browser()
    await ui_signup(anon, "quinn")
    mails_before = len(await outbox.list(to="quinn@example.com"))
    code = await mailed_code(outbox, "quinn@example.com", "confirmation")
    attempts = [
        (anon, "/signup", {"username": "rita", "email": "rita@example.com", "password": PASSWORD}),
        (anon, "/confirm", {"login": "quinn", "code": code}),
        (anon, "/confirm", {"login": "quinn", "resend": "1"}),
        (anon, "/login/mfa", {"challenge": "a.forged.challenge", "code": "123456"}),
        (anon, "/reset", {"login": "pat"}),
        (anon, "/reset/confirm", {"login": "pat", "code": "123456", "new_password": NEW_PASSWORD}),
        (c, "/settings/security/totp", {}),
        (c, "/settings/security/totp/verify", {"code": "123456"}),
        (c, "/settings/security/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        (c, "/settings/security/sign-out-everywhere", {}),
    ]
    for who, path, fields in attempts:
        for bad in (None, "wrong-token"):
            data = dict(fields) | ({"csrf_token": bad} if bad else {})
            r = await who.post(path, data=data)
            assert r.status_code == 403, (path, bad, r.status_code, r.text[:300])
            assert "CSRF" in r.text
    # nothing changed
    assert (await client.get("/api/v1/users/rita")).status_code == 404
    assert (await client.get("/api/v1/users/quinn")).status_code == 404, "still unconfirmed"
    assert len(await outbox.list(to="quinn@example.com")) == mails_before
    assert not any("reset" in m.subject for m in await outbox.list(to="pat@example.com"))
    assert (await app.state.identity.get_user(int(pat.id))).mfa_enabled is False
    assert await signed_in_as(c) == "pat", "still signed in"
    assert (await client.get("/api/v1/me", headers=pat.auth)).status_code == 200
    assert_redirect(await ui_login(await browser(), "pat", PASSWORD), "/")
    # and with the right token the confirmation goes through
    assert_redirect(await ui_confirm(app, anon, "quinn"), "/login?login=quinn&confirmed=1")


# ---- the browser session ------------------------------------------------------------------------
async def test_an_expired_access_cookie_is_renewed_from_the_refresh_cookie(browser, app, make_user) -> None:  # noqa: ANN001
    sam = await make_user("sam")
    c = await logged_in(browser, sam)
    old_refresh = c.cookies["summit_refresh"]
    expired = app.state.identity.tokens.access_token(sam.id, username="sam", now=time.time() - 3600)
    c.cookies.set("summit_session", expired, domain="testserver.local")
    r = await c.get("/settings")
    assert r.status_code == 200 and 'href="/u/sam"' in r.text, "still signed in"
    set_cookies = r.headers.get_list("set-cookie")
    assert any(h.startswith("summit_session=") and "Max-Age=0" not in h for h in set_cookies)
    assert any(h.startswith("summit_refresh=") and "Max-Age=0" not in h for h in set_cookies)
    assert c.cookies["summit_session"] != expired and c.cookies["summit_refresh"] != old_refresh
    principal = await app.state.identity.authenticate(c.cookies["summit_session"])
    assert principal.username == "sam"
    # the old refresh token is spent: replaying it signs out that sign-in's whole family
    with pytest.raises(Unauthorized, match="already used"):
        await app.state.identity.refresh(old_refresh)
    # without a usable refresh cookie, an expired access cookie is a logged-out visitor
    d = await browser()
    d.cookies.set("summit_session", expired, domain="testserver.local")
    d.cookies.set("summit_refresh", "x" * 43, domain="testserver.local")
    r = await d.get("/")
    assert r.status_code == 200 and "Create an account" in r.text
    assert any(h.startswith("summit_refresh=") and "Max-Age=0" in h for h in r.headers.get_list("set-cookie"))


async def test_page_loads_racing_on_an_expired_cookie_share_one_refresh(browser, app, make_user) -> None:  # noqa: ANN001
    """Several tabs loading at once with an expired access cookie spend the refresh token once, so
    the pool's reuse detection does not sign the user out."""
    import asyncio

    una = await make_user("una")
    c = await logged_in(browser, una)
    expired = app.state.identity.tokens.access_token(una.id, username="una", now=time.time() - 3600)
    c.cookies.set("summit_session", expired, domain="testserver.local")
    pages = await asyncio.gather(*(c.get("/settings") for _ in range(4)))
    assert all(r.status_code == 200 and 'href="/u/una"' in r.text for r in pages), "every tab still signed in"
    refreshed = {r.cookies.get("summit_refresh") for r in pages}
    assert len(refreshed) == 1 and None not in refreshed, "one refresh, shared"
    session = (await app.state.identity.refresh(refreshed.pop())).access_token  # the family was not revoked
    assert (await app.state.identity.authenticate(session)).username == "una"


async def test_a_form_posted_after_the_access_token_expired_still_works(browser, app, client, make_user) -> None:  # noqa: ANN001
    """A page left open longer than the access token lives (5 minutes): its form still goes through,
    on the refresh cookie, and log-out still revokes that sign-in's refresh tokens."""
    from sqlalchemy import func, select

    from summit.security.identity import schema

    tom = await make_user("tom")
    c = await logged_in(browser, tom)
    form_token = await token(c, "/settings")
    expired = app.state.identity.tokens.access_token(tom.id, username="tom", now=time.time() - 3600)
    c.cookies.set("summit_session", expired, domain="testserver.local")
    r = await c.post("/settings", data={"csrf_token": form_token, "display_name": "Tom T", "bio": ""})
    assert_redirect(r, "/settings?saved=profile")
    assert any(h.startswith("summit_session=") and "Max-Age=0" not in h for h in r.headers.get_list("set-cookie"))
    assert (await client.get("/api/v1/users/tom")).json()["display_name"] == "Tom T"
    assert await signed_in_as(c) == "tom"

    async def live_refresh_tokens() -> int:
        rt = schema.refresh_tokens.c
        async with app.state.ctx.db.read(after_write=True) as conn:  # what the request just wrote
            query = select(func.count()).select_from(schema.refresh_tokens).where(
                rt.user_id == int(tom.id), rt.revoked_at.is_(None), rt.used_at.is_(None))
            return (await conn.execute(query)).scalar_one()

    assert await live_refresh_tokens() == 2  # make_user's API sign-in, and this browser's
    c.cookies.set("summit_session", expired, domain="testserver.local")
    assert_redirect(await c.post("/logout", data={"csrf_token": form_token}), "/")
    assert "summit_session" not in c.cookies and "summit_refresh" not in c.cookies
    assert await live_refresh_tokens() == 1, "the browser's sign-in is revoked, the API's is not"

"""Helpers of the web UI's tests: fill and post forms as a browser would. A mailed code is
``summit.testing.mail.mailed_code``."""

from __future__ import annotations

import re

import httpx

from summit.testing.mail import mailed_code

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse 1"


def csrf_of(page: httpx.Response) -> str:
    match = CSRF_RE.search(page.text)
    assert match, f"no CSRF field on {page.request.url}"
    return match.group(1)


async def token(c: httpx.AsyncClient, path: str = "/login") -> str:
    page = await c.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page)


async def post_form(c: httpx.AsyncClient, path: str, page: str, **fields) -> httpx.Response:  # noqa: ANN003
    """POST a form from ``page`` (whose CSRF token it uses)."""
    return await c.post(path, data={"csrf_token": await token(c, page), **fields})


def assert_redirect(r: httpx.Response, to: str) -> None:
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert r.headers["location"] == to


async def ui_signup(c: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = {"csrf_token": await token(c, "/signup"), "username": username, "email": f"{username}@example.com", "password": password}
    return await c.post("/signup", data=form)


async def ui_confirm(app, c: httpx.AsyncClient, username: str) -> httpx.Response:  # noqa: ANN001
    """Confirm ``username``'s sign-up on the confirm page with the code from the outbox."""
    code = await mailed_code(app.state.ctx.platform.mail, f"{username}@example.com", "confirmation")
    return await post_form(c, "/confirm", f"/confirm?login={username}", login=username, code=code)


async def ui_login(c: httpx.AsyncClient, login: str, password: str = PASSWORD, next_path: str | None = None) -> httpx.Response:
    form = {"csrf_token": await token(c, "/login"), "login": login, "password": password}
    if next_path is not None:
        form["next"] = next_path
    return await c.post("/login", data=form)


async def logged_in(browser, user) -> httpx.AsyncClient:  # noqa: ANN001
    c = await browser()
    r = await ui_login(c, user.username, user.password)
    assert r.status_code == 303, r.text
    return c


async def signed_in_as(c: httpx.AsyncClient) -> str | None:
    """Whose profile link the header shows on the home page (None: logged out)."""
    page = await c.get("/")
    match = re.search(r'<a href="/u/([^"]+)">Profile</a>', page.text)
    return match.group(1) if match else None

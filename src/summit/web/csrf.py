"""CSRF protection for cookie-authenticated requests: the double-submit pattern.

The browser holds a random token in the ``summit_csrf`` cookie (HttpOnly, SameSite=Strict); pages
embed the same value in their forms (``csrf_token`` field) or send it in the ``X-CSRF-Token``
header. A cross-site page can make the browser send the cookie, but cannot read it to send it back.
Bearer-token requests need none: browsers never add that header by themselves.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from summit.errors import Forbidden

COOKIE = "summit_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check(request: Request, submitted: object) -> None:
    expected = request.cookies.get(COOKIE)
    if not expected or not isinstance(submitted, str) or not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def check_header(request: Request) -> None:
    check(request, request.headers.get(HEADER))


def token(request: Request) -> str:
    """The CSRF token for this page's forms (minted if the browser has none yet)."""
    value = request.cookies.get(COOKIE) or getattr(request.state, "new_csrf", None)
    if not value:
        value = request.state.new_csrf = secrets.token_urlsafe(24)
    return value


def remember(request: Request, response: Response, *, secure: bool = False) -> None:
    """Set the CSRF cookie if this request minted a token."""
    value = getattr(request.state, "new_csrf", None)
    if value:
        response.set_cookie(COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/")

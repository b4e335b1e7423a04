"""Who is calling: a bearer token (API clients) or the session cookie (the web UI), and CSRF.

The token is self-contained and signed (``summit.security.tokens``), so any web process validates it
without shared memory. Cookie-authenticated unsafe requests must also carry the CSRF token
(double-submit: the ``summit_csrf`` cookie's value in a form field or the X-CSRF-Token header);
bearer-token requests need none, since a browser never attaches that header by itself.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from summit.security.tokens import InvalidToken

from photos.errors import Forbidden, Unauthorized
from photos.services import accounts
from photos.services.common import Context

SESSION_COOKIE = "summit_session"
CSRF_COOKIE = "summit_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def context(request: Request) -> Context:
    return request.app.state.ctx


def _token(request: Request) -> tuple[str | None, bool]:
    """(token, came_from_cookie)"""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


async def optional_user_id(request: Request) -> int | None:
    """The caller's user id, None if anonymous; raise Unauthorized for a bad or stale token."""
    if "user_id" in request.state._state:
        return request.state.user_id
    token, from_cookie = _token(request)
    user_id = None
    if token is not None:
        ctx = context(request)
        try:
            claims = ctx.tokens.verify(token)
        except InvalidToken as error:
            raise Unauthorized(f"{error}; log in again") from None
        if not claims.subject.isdigit() or not await accounts.user_exists(ctx, int(claims.subject)):
            raise Unauthorized("this account no longer exists; log in again")
        if from_cookie and request.method not in SAFE_METHODS:
            check_csrf(request, request.headers.get(CSRF_HEADER))
        user_id = int(claims.subject)
    request.state.user_id = user_id
    return user_id


async def current_user_id(request: Request) -> int:
    user_id = await optional_user_id(request)
    if user_id is None:
        raise Unauthorized("log in first: send 'Authorization: Bearer <token>' (POST /api/v1/sessions gives one)")
    return user_id


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not submitted or not hmac.compare_digest(expected.encode(), str(submitted).encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this page (new if the browser has none yet)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = request.state.new_csrf = secrets.token_urlsafe(24)
    return token


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie if this request minted one."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/")


def set_session(request: Request, response: Response, token: str) -> None:
    ctx = context(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.tokens.ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _secure(request: Request) -> bool:
    return context(request).platform.blueprint.auth.cookie_secure

"""Browser sessions: the access token and the refresh token in HttpOnly cookies (for web UIs).

API clients use ``Authorization: Bearer``; a browser gets the same tokens as cookies: the access
token (short-lived, SameSite=Lax) authenticates requests, and the refresh token (SameSite=Strict)
lets the web UI get the next access token when a page loads (see photos' session middleware).
"""

from __future__ import annotations

from starlette.responses import Response

ACCESS_COOKIE = "summit_session"
REFRESH_COOKIE = "summit_refresh"


def set_session_cookies(response: Response, *, access_token: str, refresh_token: str, refresh_ttl: int, secure: bool) -> None:
    response.set_cookie(ACCESS_COOKIE, access_token, max_age=refresh_ttl, httponly=True, samesite="lax", secure=secure, path="/")
    response.set_cookie(REFRESH_COOKIE, refresh_token, max_age=refresh_ttl, httponly=True, samesite="strict", secure=secure, path="/")


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path="/")

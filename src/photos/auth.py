"""Who is calling, for the API and the web UI: the platform's user pool validates the access token
(a bearer header, or the session cookie with CSRF protection), see ``summit.security.require_principal``.
This module adapts it to the app: user ids for services, cookies and CSRF for pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from summit.security import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    Principal,
    Session,
    clear_session_cookies,
    optional_principal,
    require_principal,
    set_session_cookies,
)
from summit.web import csrf

from photos.services.common import Context

SESSION_COOKIE = ACCESS_COOKIE
CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER = csrf.COOKIE, csrf.FIELD, csrf.HEADER

__all__ = [
    "REFRESH_COOKIE", "SESSION_COOKIE", "check_csrf", "clear_session", "context", "context_dependency", "csrf_token", "current_principal",
    "current_user_id", "optional_principal", "optional_user_id", "remember_csrf", "set_session",
]


def context(request: Request) -> Context:
    return request.app.state.ctx


async def context_dependency(request: Request) -> Context:
    """``context`` for ``Depends``: async, because FastAPI runs a plain ``def`` dependency on a thread."""
    return request.app.state.ctx


async def current_principal(request: Request) -> Principal:
    return await require_principal(request)


async def optional_user_id(request: Request) -> int | None:
    principal = await optional_principal(request)
    return None if principal is None else principal.user_id


async def current_user_id(request: Request) -> int:
    return (await require_principal(request)).user_id


def check_csrf(request: Request, submitted: object) -> None:
    csrf.check(request, submitted)


def csrf_token(request: Request) -> str:
    return csrf.token(request)


def remember_csrf(request: Request, response: Response) -> None:
    csrf.remember(request, response, secure=_secure(request))


def set_session(request: Request, response: Response, session: Session) -> None:
    set_session_cookies(response, access_token=session.access_token, refresh_token=session.refresh_token,
                        refresh_ttl=context(request).identity.config.refresh_ttl, secure=_secure(request))


def clear_session(response: Response) -> None:
    clear_session_cookies(response)


def _secure(request: Request) -> bool:
    return context(request).platform.blueprint.auth.cookie_secure

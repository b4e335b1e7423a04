"""Who is calling, for any web app on the platform: a bearer access token, or the session cookie
(which also needs the CSRF token on unsafe methods). The pool validates the token and checks
revocation; the result is kept on ``request.state.principal``."""

from __future__ import annotations

from starlette.requests import Request

from summit.errors import Unauthorized
from summit.security.identity.cookies import ACCESS_COOKIE
from summit.security.identity.pool import UserPool
from summit.security.identity.records import Principal
from summit.web import csrf

_UNSET = object()


def pool_of(request: Request) -> UserPool:
    return request.app.state.identity


def bearer_or_cookie(request: Request) -> tuple[str | None, bool]:
    """(token, came_from_cookie)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <access token>'")
        return value.strip(), False
    cookie = request.cookies.get(ACCESS_COOKIE)
    return (cookie, True) if cookie else (None, False)


async def optional_principal(request: Request) -> Principal | None:
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    token, from_cookie = bearer_or_cookie(request)
    principal = None
    if token is not None:
        principal = await pool_of(request).authenticate(token)
        if from_cookie and request.method not in csrf.SAFE_METHODS:
            csrf.check_header(request)
    request.state.principal = principal
    return principal


async def require_principal(request: Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>' (POST /api/v1/sessions gives one)")
    return principal

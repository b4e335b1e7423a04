"""Who is calling, for any web app on the platform: a bearer access token, or the session cookie
(which also needs the CSRF token on unsafe methods). The pool validates the token and checks
revocation; the result is kept on ``request.state.principal``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.requests import Request

from summit.errors import ServiceError, Unauthorized
from summit.security.identity.cookies import ACCESS_COOKIE, REFRESH_COOKIE, clear_session_cookies, set_session_cookies
from summit.security.identity.pool import UserPool
from summit.security.identity.records import Principal, Session
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


class BrowserSessionMiddleware:
    """Keeps a web UI signed in: on a page load whose access cookie is missing or about to expire,
    spend the refresh cookie for new tokens, hand the new access token to this request, and set
    both cookies on the response. A refresh that fails clears the cookies (signed out)."""

    REFRESH_BEFORE_SECONDS = 60
    SHARE_SECONDS = 10  # page loads racing with the same refresh cookie share one refresh

    def __init__(self, app, *, pool: Callable[[], UserPool], secure: bool = False):  # noqa: ANN001
        self.app = app
        self.pool = pool
        self.secure = secure
        self._recent: dict[str, tuple[float, asyncio.Future]] = {}

    async def refresh(self, pool: UserPool, refresh_token: str, device: str) -> Session:
        """One refresh per refresh token in this process: several tabs loading at once with an
        expiring cookie would otherwise spend the same token twice, which the pool rightly treats as
        theft and answers by revoking the whole sign-in."""
        now = time.monotonic()
        for token, (started, _) in list(self._recent.items()):
            if now - started > self.SHARE_SECONDS:
                del self._recent[token]
        if refresh_token in self._recent:
            return await asyncio.shield(self._recent[refresh_token][1])
        future = asyncio.get_running_loop().create_future()
        self._recent[refresh_token] = (now, future)
        try:
            session = await pool.refresh(refresh_token, device=device)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here: waiters, if any, re-raise it
            raise
        future.set_result(session)
        return session

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not _wants_html(scope):
            return await self.app(scope, receive, send)
        request = Request(scope)
        refresh_token = request.cookies.get(REFRESH_COOKIE)
        if not refresh_token or not _expiring(request.cookies.get(ACCESS_COOKIE), self.REFRESH_BEFORE_SECONDS):
            return await self.app(scope, receive, send)
        pool = self.pool()
        from starlette.responses import Response

        carrier = Response()
        try:
            session = await self.refresh(pool, refresh_token, request.headers.get("user-agent", "")[:200])
        except ServiceError:
            clear_session_cookies(carrier)
            cookies = {k: v for k, v in request.cookies.items() if k not in (ACCESS_COOKIE, REFRESH_COOKIE)}
        else:
            set_session_cookies(carrier, access_token=session.access_token, refresh_token=session.refresh_token,
                                refresh_ttl=pool.config.refresh_ttl, secure=self.secure)
            cookies = {**request.cookies, ACCESS_COOKIE: session.access_token, REFRESH_COOKIE: session.refresh_token}
        cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("latin-1")
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"cookie"] + [(b"cookie", cookie_header)]}
        extra = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]

        async def send_with_cookies(message):  # noqa: ANN001
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def _wants_html(scope) -> bool:  # noqa: ANN001
    accept = next((v for k, v in scope.get("headers", ()) if k == b"accept"), b"")
    return b"text/html" in accept and not scope["path"].startswith(("/api/", "/media/", "/static/"))


def _expiring(token: str | None, within: float) -> bool:
    """True if there is no access token or it expires within ``within`` seconds (not verified here:
    only to decide whether to refresh; the request verifies whatever it ends up with)."""
    import base64
    import json

    if not token or token.count(".") != 2:
        return True
    payload = token.split(".")[1]
    try:
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("exp")
    except ValueError:
        return True
    return not isinstance(exp, int) or exp - time.time() < within

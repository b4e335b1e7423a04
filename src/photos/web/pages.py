"""Template rendering shared by the UI's routes and the app's error handlers, and the request helpers
every page module uses (``routes`` for photos and people, ``account_routes`` for accounts).

Everything a template prints is autoescaped by Jinja. Captions and comments are split into text
and hashtag tokens here, in Python, so that a template links each tag while still escaping every
piece.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from summit.errors import ServiceError
from summit.security import Principal, Session

from photos import auth, uploads
from photos.errors import AppError
from photos.services import accounts
from photos.services.common import TAG_RE, Context, Profile

MAX_FORM_FIELDS = 20

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

# shown while a post's thumbnails are being made; static/app.js swaps in the thumbnail
PLACEHOLDER = "data:image/svg+xml," + quote(
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 160 160'>"
    "<rect width='160' height='160' fill='#e5e7eb'/>"
    "<circle cx='80' cy='68' r='16' fill='none' stroke='#9ca3af' stroke-width='4'/>"
    "<text x='80' y='112' font-family='sans-serif' font-size='13' text-anchor='middle' fill='#6b7280'>"
    "processing…</text></svg>",
    safe="",
)


def caption_parts(caption: str | None) -> list[tuple[str, str | None]]:
    """``"hi #Summit!"`` -> ``[("hi ", None), ("#Summit", "summit"), ("!", None)]``.

    The template prints each text with autoescaping and links the tokens that carry a tag.
    """
    caption = caption or ""
    parts: list[tuple[str, str | None]] = []
    at = 0
    for match in TAG_RE.finditer(caption):
        if match.start() > at:
            parts.append((caption[at : match.start()], None))
        parts.append((match.group(0), match.group(1).lower()))
        at = match.end()
    if at < len(caption):
        parts.append((caption[at:], None))
    return parts


def ago(ts: float | None, now: float | None = None) -> str:
    """A short human time: 'just now', '5 min ago', '3 h ago', '2 d ago', or a date."""
    if ts is None:
        return ""
    seconds = max(0, (time.time() if now is None else now) - ts)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%d %b %Y")


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


templates.env.globals.update(caption_parts=caption_parts, placeholder=PLACEHOLDER, size_text=uploads.size_text,
                             too_large=uploads.too_large)
templates.env.filters.update(ago=ago, iso=iso, plural=plural)


def _finish(request: Request, response: Response) -> Response:
    """Cookies every UI response may need: a fresh CSRF token, and clearing a dead session or
    setting the tokens of one renewed from the refresh cookie."""
    auth.remember_csrf(request, response)
    if getattr(request.state, "clear_session", False):
        auth.clear_session(response)
    elif getattr(request.state, "renewed_session", None) is not None:
        auth.set_session(request, response, request.state.renewed_session)
    return response


def render(request: Request, name: str, status_code: int = 200, /, **context) -> Response:
    """Render template ``name`` with ``context`` (plus ``me`` and ``csrf_token``) and ``status_code``."""
    context.setdefault("me", getattr(request.state, "me", None))
    context["csrf_token"] = auth.csrf_token(request)
    context["max_photo_bytes"] = ctx_of(request).platform.blueprint.uploads.max_photo_bytes
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.setdefault("cache-control", "no-store")
    return _finish(request, response)


def render_error(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status, status=status, message=message)


def redirect(request: Request, url: str) -> Response:
    """POST-redirect-GET: 303, so a reload of the next page does not resend the form."""
    return _finish(request, RedirectResponse(url, status_code=303))


def safe_next(value: object, default: str = "/") -> str:
    """``value`` if it is a path on this site ('/x', not '//evil.example' or '/\\evil'), else ``default``."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return default
    if value[1:2] in ("/", "\\") or "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    return value


# ---- request helpers shared by the page modules ---------------------------------------------------
class LoginRequired(Exception):
    def __init__(self, next_path: str):
        self.next_path = next_path


class HtmlRoute(APIRoute):
    """UI routes answer in HTML whatever the Accept header says: errors become error pages, and a
    page that needs a user sends a logged-out visitor to the log-in form."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def html_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as needed:
                return redirect(request, login_url(needed.next_path))
            except AppError as error:
                response = render_error(request, error.status, error.message)
                response.headers.update(error.headers)
                return response
            except StarletteHTTPException as error:  # e.g. a malformed multipart body
                if error.status_code >= 500:
                    raise
                message = error.detail if isinstance(error.detail, str) else "bad request"
                return render_error(request, error.status_code, message)

        return html_handler


def ctx_of(request: Request) -> Context:
    return auth.context(request)


def login_url(next_path: str) -> str:
    next_path = safe_next(next_path, "/")
    return "/login" if next_path == "/" else "/login?" + urlencode({"next": next_path})


def here(request: Request) -> str:
    """This page's local path and query, for ``next``."""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


async def viewer(request: Request) -> Profile | None:
    """The logged-in user, or None. A stale, forged, signed-out or orphaned session cookie counts as
    logged out, and the response clears the session cookies."""
    if hasattr(request.state, "me"):
        return request.state.me
    me = None
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token or _renewable(request):
        ctx = ctx_of(request)
        try:
            try:
                request.state.principal = await ctx.identity.authenticate(token)
            except ServiceError:
                request.state.principal = await _renew(request)
                if request.state.principal is None:
                    raise
            me = await accounts.get_profile(ctx, request.state.principal.user_id, viewer_id=request.state.principal.user_id)
        except ServiceError:  # expired, signed out, forged, or the account is gone
            request.state.principal = None
            request.state.renewed_session = None
            request.state.clear_session = True
    request.state.me = me
    return me


def _renewable(request: Request) -> bool:
    return request.method not in ("GET", "HEAD") and bool(request.cookies.get(auth.REFRESH_COOKIE))


async def _renew(request: Request) -> Principal | None:
    """A form posted from a page left open longer than the access token lives: spend the refresh
    cookie for new tokens, as ``BrowserSessionMiddleware`` does on page loads (GET), so that the
    form is not lost to a log-in page. The refresh cookie is SameSite=Strict: a cross-site form
    never carries it (and every form checks its CSRF token anyway)."""
    if not _renewable(request):
        return None
    refresh_token = request.cookies.get(auth.REFRESH_COOKIE)
    pool = ctx_of(request).identity
    try:
        session = await pool.refresh(refresh_token, device=device(request), source=source(request))
        principal = await pool.authenticate(session.access_token)
    except ServiceError:
        return None
    request.state.renewed_session = session
    return principal


def principal(request: Request) -> Principal:
    """Who is acting (after require_user): for actions that policies authorize."""
    return request.state.principal


async def require_user(request: Request, next_path: str | None = None) -> Profile:
    me = await viewer(request)
    if me is None:
        raise LoginRequired(next_path or (here(request) if request.method == "GET" else "/"))
    return me


async def read_form(request: Request, upload_field: str | None = None) -> tuple[dict[str, str], bytes | None]:
    """The form's text fields (first value of each) and, if asked, the uploaded file's bytes."""
    data = None
    async with request.form(max_files=1 if upload_field else 0, max_fields=MAX_FORM_FIELDS) as form:
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, value)
        if upload_field:
            upload = form.get(upload_field)
            data = b""
            if isinstance(upload, UploadFile):
                data = await upload.read()  # the edge bounds the body; the service checks the photo's size
    return fields, data


def check_csrf(request: Request, fields: dict[str, str]) -> None:
    auth.check_csrf(request, fields.get(auth.CSRF_FIELD))


def log_in(request: Request, response: Response, session: Session) -> Response:
    auth.set_session(request, response, session)
    request.state.clear_session = False
    request.state.renewed_session = None
    return response


def source(request: Request) -> str | None:
    return request.client.host if request.client else None


def device(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200]


def form_error(error: AppError) -> dict[str, Any]:
    return {"error": error.message, "error_field": error.field}


def with_headers(response: Response, error: AppError) -> Response:
    """A form page re-rendered for ``error`` keeps the error's headers (e.g. Retry-After)."""
    response.headers.update(error.headers)
    return response

"""Template rendering shared by the UI's routes and the app's error handlers.

Everything a template prints is autoescaped by Jinja. Captions are split into text and hashtag
tokens here, in Python, so that a template links each tag while still escaping every piece.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from photos import auth
from photos.services.common import TAG_RE

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


templates.env.globals.update(caption_parts=caption_parts, placeholder=PLACEHOLDER)
templates.env.filters.update(ago=ago, iso=iso, plural=plural)


def _finish(request: Request, response: Response) -> Response:
    """Cookies every UI response may need: a fresh CSRF token, or clearing a dead session."""
    auth.remember_csrf(request, response)
    if getattr(request.state, "clear_session", False):
        auth.clear_session(response)
    return response


def render(request: Request, name: str, status_code: int = 200, /, **context) -> Response:
    """Render template ``name`` with ``context`` (plus ``me`` and ``csrf_token``) and ``status_code``."""
    context.setdefault("me", getattr(request.state, "me", None))
    context["csrf_token"] = auth.csrf_token(request)
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

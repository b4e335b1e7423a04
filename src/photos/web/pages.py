"""Template rendering shared by the UI's routes and the app's error handlers."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from photos import auth

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(request: Request, name: str, status: int = 200, **context) -> Response:
    context.setdefault("me", getattr(request.state, "me", None))
    context["csrf_token"] = auth.csrf_token(request)
    response = templates.TemplateResponse(request, name, context, status_code=status)
    auth.remember_csrf(request, response)
    return response


def render_error(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status, status=status, message=message)

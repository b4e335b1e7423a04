"""The server-rendered web UI (Jinja2 templates, plain forms, a little vanilla JS)."""

from photos.web.routes import router

__all__ = ["router"]

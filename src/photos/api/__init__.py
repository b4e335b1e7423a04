"""The public JSON API under /api/v1 (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs)."""

from photos.api.routes import router

__all__ = ["router"]

"""Domain errors. Each carries the HTTP status and a message that says what to fix; the API and
the web UI render them (JSON or HTML), so a bad request is a 4xx, never a 500."""

from __future__ import annotations


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(AppError):
    status, code = 422, "invalid"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class TooLarge(AppError):
    status, code = 413, "too_large"


class UnsupportedMedia(AppError):
    status, code = 415, "unsupported_media_type"

"""Errors a service raises for its caller to fix: each carries the HTTP status, a stable code and a
message that says what to do. Web layers render them (JSON or HTML); they are never a 500."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}


class Invalid(ServiceError):
    status, code = 422, "invalid"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class TooLarge(ServiceError):
    status, code = 413, "too_large"


class TooManyRequests(ServiceError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after

"""Domain errors of Summit Photos: the platform's service errors (each with an HTTP status and a
message that says what to fix), so the API and the UI render them all the same way."""

from summit.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, TooLarge, TooManyRequests, Unauthorized

AppError = ServiceError


class UnsupportedMedia(ServiceError):
    status, code = 415, "unsupported_media_type"


class Unavailable(ServiceError):
    """A part of the service (the search index, say) does not answer now: retry after ``retry_after`` s."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, *, retry_after: int = 2):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


__all__ = ["AppError", "Conflict", "Forbidden", "Invalid", "NotFound", "TooLarge", "TooManyRequests", "Unauthorized", "Unavailable", "UnsupportedMedia"]

"""Domain errors of Summit Photos: the platform's service errors (each with an HTTP status and a
message that says what to fix), so the API and the UI render them all the same way."""

from summit.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, TooLarge, TooManyRequests, Unauthorized

AppError = ServiceError


class UnsupportedMedia(ServiceError):
    status, code = 415, "unsupported_media_type"


__all__ = ["AppError", "Conflict", "Forbidden", "Invalid", "NotFound", "TooLarge", "TooManyRequests", "Unauthorized", "UnsupportedMedia"]

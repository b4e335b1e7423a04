"""Web plumbing every summit service shares: request ids, JSON logs, metrics, security headers,
request-size limits. Pure ASGI middleware, framework-neutral."""

from summit.web.consistency import ReadYourWritesMiddleware
from summit.web.middleware import BodyLimitMiddleware, RequestContextMiddleware, SecurityHeadersMiddleware, request_id
from summit.web.proxies import ProxyHeadersMiddleware

__all__ = [
    "BodyLimitMiddleware",
    "ProxyHeadersMiddleware",
    "ReadYourWritesMiddleware",
    "RequestContextMiddleware",
    "SecurityHeadersMiddleware",
    "request_id",
]

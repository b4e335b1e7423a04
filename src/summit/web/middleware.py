"""Pure ASGI middleware: request context (id, access log, metrics), security headers, body limits."""

from __future__ import annotations

import contextvars
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

import orjson
import structlog

from summit import telemetry
from summit.web import logs
from summit.web.metrics import HttpMetrics

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ids = random.Random(secrets.randbits(128))  # request ids: unique, not secret (a client may send its own)
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_id() -> str:
    """The id of the request being handled ('' outside a request)."""
    return _request_id.get()


def _header(scope, name: bytes) -> bytes | None:  # noqa: ANN001
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


class RequestContextMiddleware:
    """Gives every request an id (the client's X-Request-Id if sane), binds it to every log line,
    logs one access line, and records metrics by route template (not raw path: bounded labels)."""

    def __init__(self, app, metrics: HttpMetrics | None = None):  # noqa: ANN001
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = (_header(scope, b"x-request-id") or b"").decode("latin-1")
        rid = given if _VALID_ID.match(given) else f"{_ids.getrandbits(64):016x}"
        token = _request_id.set(rid)
        structlog.contextvars.bind_contextvars(request_id=rid)
        tally, tally_token = telemetry.open_tally()
        started = time.perf_counter()
        status = 500

        async def send_with_id(message):  # noqa: ANN001
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            telemetry.close_tally(tally_token)
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route, status, elapsed, sql_statements=tally.sql)
            client = scope.get("client")
            logs.access(rid, method=scope["method"], path=scope["path"], route=route, status=status,
                        duration_ms=round(elapsed * 1000, 2), client=client[0] if client else None)
            structlog.contextvars.unbind_contextvars("request_id")
            _request_id.reset(token)


DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, frame and referrer headers to every response that lacks them."""

    def __init__(self, app, *, csp: str = DEFAULT_CSP, hsts: bool = False):  # noqa: ANN001
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):  # noqa: ANN001
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in self.headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


ErrorPage = Callable[[dict, int, str], Awaitable[Callable | None]]


class BodyLimitMiddleware:
    """Refuses request bodies over a limit with 413 before they are read into memory.

    ``limits`` are ``(matches(method, path), limit, message)``: the first that matches wins, else
    ``default`` with a generic message. Both a declared Content-Length and a chunked body that
    keeps coming are caught.

    The refusal is the JSON error shape, unless ``error_page(scope, status, message)`` gives an ASGI
    response for it (the app's HTML error page for a request from one of its pages, say): the same
    status and message either way. The connection is closed after a refusal (the body is not read).
    """

    def __init__(self, app, *, default: int, limits: Sequence[tuple[Callable[[str, str], bool], int, str]] = (),  # noqa: ANN001
                 error_page: ErrorPage | None = None):
        self.app = app
        self.default = default
        self.limits = list(limits)
        self.error_page = error_page

    def limit_for(self, method: str, path: str) -> tuple[int, str]:
        for matches, limit, message in self.limits:
            if matches(method, path):
                return limit, message
        return self.default, f"request body is larger than {self.default:,} bytes; send a smaller one"

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared is None and scope["method"] in _BODILESS and _header(scope, b"transfer-encoding") is None:
            return await self.app(scope, receive, send)  # no body is coming
        limit, message = self.limit_for(scope["method"], scope["path"])
        if declared is not None:
            if not declared.isdigit():
                return await self._reject(scope, send, 400, "bad_request", "Content-Length must be a number of bytes")
            if int(declared) > limit:
                return await self._reject(scope, send, 413, "too_large", message)
        seen = 0
        started = False

        async def send_tracking(message):  # noqa: ANN001
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def receive_limited():  # noqa: ANN202
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, receive_limited, send_tracking)
        except _BodyTooLarge:
            if not started:
                await self._reject(scope, send, 413, "too_large", message)

    async def _reject(self, scope, send, status: int, code: str, message: str) -> None:  # noqa: ANN001
        page = await self.error_page(scope, status, message) if self.error_page is not None else None
        if page is None:
            return await _reject(send, status, code, message)

        async def closing(event):  # noqa: ANN001
            if event["type"] == "http.response.start":
                headers = [(k, v) for k, v in event.get("headers", []) if k.lower() != b"connection"]
                event = {**event, "headers": [*headers, (b"connection", b"close")]}
            await send(event)

        async def no_body() -> dict:  # the body is not read: the page needs none of it
            return {"type": "http.disconnect"}

        await page(scope, no_body, closing)


class _BodyTooLarge(Exception):
    pass


async def _reject(send, status: int, code: str, message: str) -> None:  # noqa: ANN001
    body = orjson.dumps({"error": {"code": code, "message": message}, "request_id": request_id()})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})

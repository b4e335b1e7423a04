"""Read-your-writes across requests and web processes: the position of a client's latest write
travels with the client.

Each request opens a ``ReadPosition`` (``summit.ports.sql``) from what the client sent back: the
``Summit-Read-Position`` header (API clients) or the ``summit_rp`` cookie (browsers). Write blocks
that commit move it forward; read blocks go to a replica only once it has replayed it. When it
moved, the response carries the new value in both, so the next request (to any web process)
reads at least that fresh. The value is a database position, not a secret: a forged one can only
send that client's own reads to the primary.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from summit.ports.sql import track_writes, untrack

HEADER = b"summit-read-position"
COOKIE = "summit_rp"
COOKIE_SECONDS = 60  # replicas out of rotation after 1 s of lag; a minute is plenty
_VALID = re.compile(r"[0-9]{1,20}")


def _given(scope) -> str:  # noqa: ANN001
    cookie_header = b""
    for key, value in scope.get("headers", ()):
        if key == HEADER:
            text = value.decode("latin-1").strip()
            return text if _VALID.fullmatch(text) else ""
        if key == b"cookie":
            cookie_header = value
    if cookie_header:
        for part in cookie_header.decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value if _VALID.fullmatch(value) else ""
    return ""


class ReadYourWritesMiddleware:
    """Open the request's read position; hand the client the new one after a write.

    ``enabled()`` says whether the database has replicas at all (asked per request, cheaply): with
    none, every read sees every write and nothing is tracked.
    """

    def __init__(self, app, *, enabled: Callable[[], bool], secure: bool = False):  # noqa: ANN001
        self.app = app
        self.enabled = enabled
        self.secure = "; Secure" if secure else ""

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http" or not self.enabled():
            return await self.app(scope, receive, send)
        given = _given(scope)
        position, token = track_writes(given)

        async def send_position(message):  # noqa: ANN001
            if message["type"] == "http.response.start" and position.value and position.value != given:
                value = position.value.encode()
                cookie = f"{COOKIE}={position.value}; Path=/; Max-Age={COOKIE_SECONDS}; HttpOnly; SameSite=Lax{self.secure}"
                message["headers"] = [*message.get("headers", []), (HEADER, value), (b"set-cookie", cookie.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_position)
        finally:
            untrack(token)

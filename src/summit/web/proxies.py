"""The client's address behind a load balancer: believed from ``X-Forwarded-For`` only when the
connection comes from a trusted proxy (the stage's HAProxy), never from anyone else.

HAProxy appends the address it saw to the header, so the last entry is the one to believe; what
comes before it was written by the client and proves nothing. Lock-outs per address, the audit log
and rate limits all read ``scope["client"]``, which this middleware rewrites.

Likewise ``X-Forwarded-Proto`` (``https`` when TLS ended at the front door; HAProxy always sets it,
replacing what a client sent) becomes ``scope["scheme"]``, so URLs the app builds from the request
say https; from anyone else it is ignored.
"""

from __future__ import annotations


class ProxyHeadersMiddleware:
    def __init__(self, app, *, trusted: str | list[str] = ""):  # noqa: ANN001
        self.app = app
        names = trusted.split(",") if isinstance(trusted, str) else trusted
        self.trusted = frozenset(name.strip() for name in names if name.strip())

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if self.trusted and scope["type"] == "http":
            client = scope.get("client")
            if client and client[0] in self.trusted:
                changes: dict[str, object] = {}
                for key, value in scope.get("headers", ()):
                    if key == b"x-forwarded-for" and "client" not in changes:
                        last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                        if last:
                            changes["client"] = (last, 0)
                    elif key == b"x-forwarded-proto" and "scheme" not in changes:
                        proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
                        if proto in ("http", "https"):
                            changes["scheme"] = proto
                if changes:
                    scope = dict(scope, **changes)
        return await self.app(scope, receive, send)

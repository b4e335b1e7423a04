"""Audit every state-changing API call (CloudTrail's "management events"): who, what, on what,
result, from where, with the request id. Binds the request's origin so that records made while
handling it (sign-in events of the user pool, say) carry the same source and request id."""

from __future__ import annotations

import logging
from collections.abc import Callable

from summit.security.audit import AuditLog, Origin, bind_origin, reset_origin
from summit.web.middleware import request_id

log = logging.getLogger("summit.audit")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def action_name(scope) -> str:  # noqa: ANN001
    """``api:CreatePost`` from the route's handler name (``create_post``); ``api:Unmatched`` if none."""
    name = getattr(scope.get("route"), "name", None) or "unmatched"
    return "api:" + "".join(part.capitalize() for part in name.split("_") if part.isalnum())[:64]


class AuditMiddleware:
    def __init__(self, app, *, audit: Callable[[], AuditLog | None], prefix: str = "/api/"):  # noqa: ANN001
        self.app = app
        self.audit = audit
        self.prefix = prefix

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        scope.setdefault("state", {})  # shared with inner copies of the scope: the principal lands here
        token = bind_origin(Origin.from_scope(scope, request_id=request_id() or None))
        status = 500

        async def send_status(message):  # noqa: ANN001
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            try:
                if scope["method"] in UNSAFE and scope["path"].startswith(self.prefix):
                    await self._record(scope, status)
            finally:
                reset_origin(token)

    async def _record(self, scope, status: int) -> None:  # noqa: ANN001
        audit = self.audit()
        if audit is None:
            return
        principal = (scope.get("state") or {}).get("principal")
        try:
            await audit.record(
                action_name(scope),
                user_id=getattr(principal, "user_id", None),
                resource=scope["path"][:500],
                status=status,
                details={"method": scope["method"]},
            )
        except Exception:  # the response is sent: a failed record is logged loudly, never hidden
            log.exception("could not write the audit record", extra={"path": scope["path"], "status": status})

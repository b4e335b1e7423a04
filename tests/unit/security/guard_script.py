"""Logs for the guard's tests, written by the real writers: audit records from ``AuditLog`` on a
clock of the test's own (windows and learning periods days long without waiting), and lines as
HAProxy's ``option httplog`` writes them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from summit.security.audit import AuditLog, Origin

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0


class Script:
    """Audit records at times the test chooses, each ``after`` seconds past the one before."""

    def __init__(self, data_dir: Path):
        self.now = T0
        self.log = AuditLog(data_dir, clock=lambda: self.now).start()

    def __call__(self, action: str, *, after: float = 1.0, source: str | None = None, **fields: object) -> str:
        self.now += after
        return self.log.submit(action, origin=Origin(source), **fields).result(timeout=10).event_id

    def sign_up(self, user: str, source: str) -> None:
        self("auth:SignUp", user_id=user, result="success", source=source)

    def fail(self, user: str | None, source: str, *, after: float = 1.0) -> str:
        return self("auth:SignIn", user_id=user, result="failure", reason="bad_credentials", source=source, after=after)

    def sign_in(self, user: str, source: str, *, after: float = 1.0) -> str:
        return self("auth:SignIn", user_id=user, result="success", source=source, after=after)

    def admin(self, user: str, path: str, *, after: float = 1.0) -> str:
        return self("api:CreateGroup", user_id=user, resource=f"/api/v1/admin/{path}", status=201, source="10.9.9.9", after=after,
                    details={"method": "PUT"})


def haproxy_line(client: str, path: str, status: int, second: int, term: str = "----") -> str:
    """A line as HAProxy's `option httplog` writes it (local time, as HAProxy does)."""
    moment = datetime.fromtimestamp(T0 + second).astimezone()  # local time
    date = moment.strftime("%d/%b/%Y:%H:%M:%S") + ".123"
    port = "41000"
    return (f"{client}:{port} [{date}] public web/web-1 0/0/0/1/1 {status} 180 - - {term} 1/1/0/0/0 0/0 "
            f'"GET {path}?q=1 HTTP/1.1"\n')

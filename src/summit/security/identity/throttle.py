"""Lock-outs with exponential back-off, as Cognito does: after ``threshold`` failures in a row, each
further attempt must wait 2^(n - threshold) seconds, capped at 15 minutes. Kept per account, per
source address (credential stuffing) and per MFA factor, in the database so every web process
sees the same counts. A success resets the key; failures older than an hour are forgotten."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from summit.errors import TooManyRequests
from summit.ports import Connection, Database
from summit.security.identity import schema

CAP_SECONDS = 15 * 60
FORGET_AFTER_SECONDS = 3600
t = schema.throttle.c


@dataclass(frozen=True)
class Limits:
    account: int = 5
    address: int = 20
    mfa: int = 5
    mails: int = 5  # code mails (resend, reset) before each further one waits


def wait_after(failures: int, threshold: int) -> float:
    """Seconds to wait after ``failures`` failures in a row (0 below the threshold)."""
    if failures < threshold:
        return 0.0
    return float(min(CAP_SECONDS, 2 ** (failures - threshold)))


def _key(key: str) -> str:
    """Keys hold user input (a typed login): long ones are hashed to fit the column."""
    if len(key) <= 100:
        return key
    import hashlib

    return key[:30] + "#" + hashlib.sha256(key.encode()).hexdigest()


class Throttle:
    def __init__(self, db: Database, *, clock=time.time):  # noqa: ANN001
        self.db = db
        self.clock = clock

    async def check(self, *keys: str) -> None:
        """Raise TooManyRequests if any key is locked now."""
        now = self.clock()
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t.key, t.locked_until).where(t.key.in_([_key(k) for k in keys])))).all()
        waits = [row.locked_until - now for row in rows if row.locked_until > now]
        if waits:
            seconds = math.ceil(max(waits))
            raise TooManyRequests(
                f"too many failed attempts: try again in {seconds} second{'s' if seconds != 1 else ''}",
                retry_after=seconds,
            )

    async def fail(self, key: str, threshold: int) -> None:
        now = self.clock()
        async with self.db.write() as conn:
            await self._fail(conn, key, threshold, now)

    async def _fail(self, conn: Connection, key: str, threshold: int, now: float) -> None:
        key = _key(key)
        row = (await conn.execute(select(t.failures, t.updated_at).where(t.key == key))).first()
        if row is None:
            await conn.execute(insert(schema.throttle).values(key=key, failures=1, locked_until=now + wait_after(1, threshold), updated_at=now))
            return
        failures = 1 if now - row.updated_at > FORGET_AFTER_SECONDS else row.failures + 1
        await conn.execute(
            update(schema.throttle)
            .where(t.key == key)
            .values(failures=failures, locked_until=now + wait_after(failures, threshold), updated_at=now)
        )

    async def succeed(self, *keys: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(schema.throttle).where(t.key.in_([_key(k) for k in keys])))

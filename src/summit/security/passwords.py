"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile by default)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, *, time_cost: int | None = None, memory_cost: int | None = None):
        kwargs = {k: v for k, v in (("time_cost", time_cost), ("memory_cost", memory_cost)) if v}
        self._argon2 = _Argon2(**kwargs)
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
            return False

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification, for a login whose user does not exist, so that
        timing does not reveal which usernames exist (the dummy hash uses this hasher's cost)."""
        if self._dummy is None:
            self._dummy = await self.hash_async("summit-dummy-password")
        await self.verify_async(self._dummy, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._argon2.check_needs_rehash(stored_hash)

    # Hashing costs tens of milliseconds of CPU: keep it off the event loop.
    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify, stored_hash, password)

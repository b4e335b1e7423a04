"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile by default)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, *, time_cost: int | None = None, memory_cost: int | None = None):
        kwargs = {k: v for k, v in (("time_cost", time_cost), ("memory_cost", memory_cost)) if v}
        self._argon2 = _Argon2(**kwargs)

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._argon2.check_needs_rehash(stored_hash)

    # Hashing costs tens of milliseconds of CPU: keep it off the event loop.
    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify, stored_hash, password)


# A real argon2id hash (of a password no account has), verified against when the user does not exist, so that a login
# for an unknown name takes as long as one with a wrong password.
DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$1A3winilQegzmVuj9aYTug$QXtqSQv59vLFB+IKw/FCGy8u32LCqZGL5tlaObZ5Lk0"

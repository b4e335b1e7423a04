"""Users' email addresses at rest: a keyed hash to find a user by address, and the address itself
encrypted by the KMS (``docs/identity.md``, "Personal data").

* ``email_hash``: HMAC-SHA256 of the normalised address (stripped, lower case) under the KMS key
  ``identity-email-index`` (made with ``rotation_days=0``: it never rotates by age, so a stored
  hash keeps matching). Unique; sign-in, password reset and the sign-up uniqueness check look up
  by it. Should the key be rotated by hand, new hashes use its newest version and lookups try
  every version (``candidates``), so no user is lost.
* ``email_sealed``: the address as a KMS blob (base64 text, so the column copies unchanged between
  SQLite and PostgreSQL) under ``identity-pii`` (rotates yearly; older versions keep decrypting),
  with the user's id as encryption context: a blob moved to another row does not decrypt.

Hashing costs one HMAC with a cached derived key; opening costs two AES-GCM operations; neither
reads the KMS directory, except ``seal`` (sign-up, migration) and a refresh of the list of the
index key's versions every ``VERSIONS_TTL`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import column, select, table, update
from sqlalchemy.engine import Connection

from summit.security.kms import InvalidCiphertext, Kms

INDEX_KEY = "identity-email-index"
PII_KEY = "identity-pii"
PII_ROTATION_DAYS = 365
VERSIONS_TTL = 30.0  # seconds: how soon a hand rotation of the index key is seen by a process
PURPOSE = "identity-email"


class SealedEmailError(Exception):
    """A stored address does not decrypt: the row was changed or its blob moved from another row."""


def normalize_email(value: str) -> str:
    """The form hashed and stored: what ``validation.check_email`` and ``normalize_login`` make."""
    return value.strip().lower()


class EmailVault:
    def __init__(self, kms: Kms, *, clock: Callable[[], float] = time.monotonic):
        self.kms = kms
        self._clock = clock
        self._lock = threading.Lock()
        kms.ensure_key(INDEX_KEY, rotation_days=0, description="keyed hashes of users' emails (lookups); never rotates by age")
        kms.ensure_key(PII_KEY, rotation_days=PII_ROTATION_DAYS, description="users' emails, encrypted at rest")
        self._versions: tuple[int, ...] = ()
        self._read_at = float("-inf")

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> EmailVault:
        return cls(Kms.for_data_dir(data_dir))

    # -- the index -------------------------------------------------------------------------------
    def index(self, email: str) -> str:
        """The hash to store for ``email``: under the index key's newest version (hex)."""
        return self._mac(email, self._index_versions()[-1])

    def candidates(self, email: str) -> list[str]:
        """The hashes ``email`` may be stored under, newest version first (one unless the index
        key was rotated by hand)."""
        return [self._mac(email, version) for version in reversed(self._index_versions())]

    def _mac(self, email: str, version: int) -> str:
        return self.kms.mac(INDEX_KEY, normalize_email(email).encode(), version=version).hex()

    def _index_versions(self) -> tuple[int, ...]:
        with self._lock:
            if self._clock() - self._read_at < VERSIONS_TTL:
                return self._versions
        versions = tuple(v.version for v in self.kms.describe_key(INDEX_KEY).versions)
        with self._lock:
            self._versions, self._read_at = versions, self._clock()
        return versions

    # -- the address -----------------------------------------------------------------------------
    def seal(self, user_id: int, email: str) -> str:
        """``email`` encrypted for the row of ``user_id`` (base64 text)."""
        blob = self.kms.encrypt(PII_KEY, normalize_email(email).encode(), _context(user_id))
        return base64.b64encode(blob).decode("ascii")

    def open(self, user_id: int, sealed: str) -> str:
        """The address sealed for ``user_id``; ``SealedEmailError`` if it was changed or moved."""
        try:
            blob = base64.b64decode(sealed.encode("ascii"), validate=True)
            return self.kms.decrypt(blob, _context(user_id), key_name=PII_KEY).decode()
        except (InvalidCiphertext, binascii.Error, UnicodeError, AttributeError) as error:
            raise SealedEmailError(
                f"the stored email of user {user_id} does not decrypt ({error}): the row was changed or its value "
                "copied from another row; restore the row from a backup, or set a new address"
            ) from None


def _context(user_id: int) -> dict[str, str]:
    return {"purpose": PURPOSE, "user": str(int(user_id))}


# -- plaintext rows (a database from before, accounts imported by an app's migration) ------------
_USERS = table("identity_users", column("id"), column("email"), column("email_hash"), column("email_sealed"))


def plaintext_rows_query(limit: int):  # noqa: ANN201
    """The next rows whose address is still in the plaintext column."""
    return select(_USERS.c.id, _USERS.c.email).where(_USERS.c.email.is_not(None)).order_by(_USERS.c.id).limit(limit)


def seal_statements(vault: EmailVault, user_id: int, email: str):  # noqa: ANN201
    """(the query for another row with the same hash, the update sealing this row). The update only
    touches a row still in plaintext, so processes sealing at once write each row once."""
    digest = vault.index(email)
    clash = select(_USERS.c.id).where(_USERS.c.email_hash == digest, _USERS.c.id != user_id)
    seal = (update(_USERS).where(_USERS.c.id == user_id, _USERS.c.email.is_not(None))
            .values(email_hash=digest, email_sealed=vault.seal(user_id, email), email=None))
    return clash, seal


def duplicate_error(user_id: int, other: int) -> SealedEmailError:
    return SealedEmailError(
        f"users {other} and {user_id} have the same email (ignoring case and spaces): give one of them another "
        f"address (UPDATE identity_users SET email = ... WHERE id = {user_id}), then run the upgrade again"
    )


def seal_plaintext_rows(conn: Connection, vault: EmailVault, *, batch: int = 500) -> int:
    """Seal every row still holding its address in plaintext (on a sync connection: migrations);
    returns how many. Idempotent."""
    sealed = 0
    while rows := conn.execute(plaintext_rows_query(batch)).all():
        for row in rows:
            clash, seal = seal_statements(vault, row.id, row.email)
            if (other := conn.execute(clash).first()) is not None:
                raise duplicate_error(row.id, other.id)
            sealed += conn.execute(seal).rowcount
    return sealed


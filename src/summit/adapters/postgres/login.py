"""The app's database login read from a file the Secrets Manager keeps up to date (its delivered
copy of the secret ``db/app``: ``login=<path>`` in the sql URL), so that a rotated password and a
switched user reach new connections without restarting the app.

The file holds the secret's labelled versions as JSON; the login is AWSCURRENT's value, AWS's
database-secret JSON (``username``, ``password``, ...). It is read when a connection opens, and
read again only when the file changed (its size, mtime and inode; one ``stat``), or at once after
the server refused a password (``refresh``). Connections opened with an older login keep working:
``stale`` tells a pool, at most once a second, which ones to close when they come back.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RECHECK_SECONDS = 1.0  # how often ``stale`` looks at the file again
AUTH_FAILED = ("28P01", "28000")  # invalid_password, invalid_authorization_specification


class LoginError(RuntimeError):
    """The login file is missing or malformed; the message says what to do."""


class Login:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._username = self._password = ""
        self.version = ""  # the secret's version the login comes from
        self._checked = 0.0

    def current(self) -> tuple[str, str]:
        """(username, password) of AWSCURRENT, read again if the file changed since."""
        self._check()
        return self._username, self._password

    def refresh(self) -> None:
        """Forget what was read (a server refused the password): the next ``current`` reads again."""
        self._stamp = None

    def stale(self, version: str) -> bool:
        """Is ``version`` (a connection's) older than the current login? Checks the file at most
        once every RECHECK_SECONDS, so a pool may ask each time a connection comes back."""
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            try:
                self._check()
            except LoginError:
                return False  # keep what works; the next connection reports the problem
        return version != self.version

    def _check(self) -> None:
        try:
            info = os.stat(self.path)
        except OSError as error:
            raise LoginError(f"the database login file {self.path} cannot be read ({error.strerror}): start the stage "
                             "with `summit up`, or remove login= from the sql URL") from None
        stamp = (info.st_size, info.st_mtime_ns, info.st_ino)
        if stamp == self._stamp:
            return
        try:
            doc = json.loads(self.path.read_text())
            value = json.loads(doc["AWSCURRENT"]["value"])
            username, password, version = value["username"], value["password"], doc["AWSCURRENT"]["version_id"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LoginError(f"the database login file {self.path} is not a delivered database secret ({type(error).__name__}: "
                             f"{error}): it holds AWSCURRENT's value, JSON with username and password") from None
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            raise LoginError(f"the database login in {self.path} has no username or password")
        self._username, self._password, self.version, self._stamp = username, password, str(version), stamp


def auth_failed(error: BaseException) -> bool:
    """Did the server (or PgBouncer) refuse the login's password?"""
    orig = getattr(error, "orig", None) or error
    if getattr(orig, "sqlstate", None) in AUTH_FAILED:
        return True
    text = str(orig)
    return "password authentication failed" in text or "SASL authentication failed" in text

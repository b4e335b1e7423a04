"""Shapes of usernames and email addresses accepted by the user pool."""

from __future__ import annotations

import re

from summit.errors import Invalid
from summit.ports.mail import InvalidMessage, check_address

USERNAME_RE = re.compile(r"[a-z0-9_][a-z0-9_.]{1,28}[a-z0-9_]")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")


def check_username(value: object, reserved: frozenset[str] = frozenset()) -> str:
    if not isinstance(value, str):
        raise Invalid("username must be text", field="username")
    username = value.strip().lower()
    if not USERNAME_RE.fullmatch(username) or ".." in username:
        raise Invalid("username must be 3-30 letters, digits, '_' or '.', not starting or ending with '.'", field="username")
    if username in reserved:
        raise Invalid(f"username {username!r} is reserved; choose another", field="username")
    return username


def check_email(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("email must be text", field="email")
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL_RE.fullmatch(email) or not email.isprintable():
        raise Invalid("email must look like name@example.com", field="email")
    try:  # and be an address the mail port can send to, or the account could never be confirmed
        check_address(email)
    except InvalidMessage:
        raise Invalid("email must look like name@example.com (plain ASCII letters, digits and dots)", field="email") from None
    return email


def normalize_login(value: object) -> str | None:
    """A username or an email as typed at log-in, normalised; None if it cannot be either."""
    if not isinstance(value, str):
        return None
    login = value.strip().lower()
    return login if 0 < len(login) <= 254 and login.isprintable() else None

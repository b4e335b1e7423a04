"""Password policy per OWASP ASVS 5.0 (V6.2): length, not composition.

- at least 8 characters (counted as Unicode code points, after NFKC), and at least 64 allowed:
  summit allows 128;
- any characters, spaces and emoji included; no composition rules, no truncation;
- refused if it is among the 20,000 most common passwords. The list comes from zxcvbn's
  frequency lists (a kept package: nothing is downloaded at run time), compared case-insensitively.
"""

from __future__ import annotations

import functools
import unicodedata

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_COUNT = 20_000


class WeakPassword(ValueError):
    """The password breaks the policy; the message says how to choose a better one."""


@functools.cache
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    ranked = FREQUENCY_LISTS["passwords"][:COMMON_COUNT]
    return frozenset(word.lower() for word in ranked)


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check(password: object, *, username: str | None = None) -> str:
    """Return the normalised password, or raise WeakPassword saying what to change."""
    if not isinstance(password, str):
        raise WeakPassword("the password must be text")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise WeakPassword("the password contains invalid Unicode (a lone surrogate)") from None
    if "\x00" in password:
        raise WeakPassword("the password must not contain NUL characters")
    normalised = normalize(password)
    if len(normalised) < MIN_LENGTH:
        raise WeakPassword(f"the password must be at least {MIN_LENGTH} characters long; a passphrase of a few words works well")
    if len(normalised) > MAX_LENGTH:
        raise WeakPassword(f"the password must be at most {MAX_LENGTH} characters long")
    if normalised.lower() in common_passwords():
        raise WeakPassword("this password is one of the most common ones and is easily guessed; choose another")
    if username and normalised.lower() == username.lower():
        raise WeakPassword("the password must not be your username")
    return normalised

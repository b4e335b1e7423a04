"""Strict UTF-8 for form fields.

Starlette decodes multipart field values and names with the declared charset and, when that
fails, silently falls back to latin-1: invalid UTF-8 becomes mojibake that is stored as if the
user had typed it. ``strict_utf8_forms()`` makes such a part a 400 that says what to fix instead.
Starlette offers no hook for this, so the module-level decoder is replaced (once, idempotently).
"""

from __future__ import annotations

from starlette import formparsers


def _strict_decode(src: bytes | bytearray, codec: str) -> str:
    try:
        return src.decode(codec)
    except (UnicodeDecodeError, LookupError):
        raise formparsers.MultiPartException("a form field is not valid UTF-8: send text encoded as UTF-8") from None


def strict_utf8_forms() -> None:
    formparsers._user_safe_decode = _strict_decode  # type: ignore[attr-defined]

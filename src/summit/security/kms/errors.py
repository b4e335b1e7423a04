"""What the KMS raises: every failure is a ``KmsError`` whose message says what to fix; a
``cryptography`` exception never leaves the package."""

from __future__ import annotations


class KmsError(Exception):
    """A KMS call failed; the message says why and what to do."""


class InvalidCiphertext(KmsError):
    """A blob that cannot be decrypted: changed, truncated, under another key or version this KMS
    does not have, or given with an encryption context other than the one it was made with."""


class KeyNotFound(KmsError):
    """No key of that name (``summit kms create NAME`` makes one)."""


class KeyExists(KmsError):
    """A key of that name exists already."""


class MasterKeyError(KmsError):
    """The master key file cannot be used: its permissions, owner or contents are wrong, or it is not
    the master key the key versions were wrapped under."""

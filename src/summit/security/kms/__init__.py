"""The key management service, like AWS KMS: named keys with versions, wrapped under a master key
kept in a private file; envelope encryption with encryption contexts; data keys; derived keys and
MACs. See ``service.py`` for the API, ``blob.py`` for the ciphertext format, ``keystore.py`` for
the files, and ``docs/kms.md``.

    kms = Kms.for_data_dir(data_dir)
    blob = kms.encrypt("secrets-manager", b"...", {"secret": "db/app"})
    kms.decrypt(blob, {"secret": "db/app"})
"""

from summit.security.kms.errors import InvalidCiphertext, KeyExists, KeyNotFound, KmsError, MasterKeyError
from summit.security.kms.service import DataKey, KeyInfo, KeyVersion, Kms

__all__ = [
    "DataKey",
    "InvalidCiphertext",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "KeyVersion",
    "Kms",
    "KmsError",
    "MasterKeyError",
]


def __dir__() -> list[str]:
    """``dir()`` shows what the package offers, not the modules it is built from (PEP 562)."""
    return sorted(__all__)

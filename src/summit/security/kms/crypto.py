"""The primitives the KMS is built from, each a thin layer over ``cryptography`` (OpenSSL), and
each tested against published vectors (NIST / McGrew-Viega for AES-GCM, RFC 5869 for HKDF):

* AES-256-GCM with associated data (``seal`` / ``unseal``): 96-bit nonces, 128-bit tags;
* HKDF with SHA-256 (RFC 5869): ``hkdf``, and its two halves ``hkdf_extract`` / ``hkdf_expand``;
* HMAC-SHA256;
* the canonical encoding of an encryption context (``encode_context``).
"""

from __future__ import annotations

import hmac as _hmac
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from summit.security.kms.errors import InvalidCiphertext, KmsError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonces, drawn at random
TAG_BYTES = 16
HASH_BYTES = 32  # SHA-256


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """AES-GCM encryption: the ciphertext followed by the 16-byte tag."""
    try:
        return AESGCM(key).encrypt(nonce, plaintext, aad)
    except (ValueError, TypeError, OverflowError) as error:
        raise KmsError(f"AES-GCM cannot encrypt: {error}") from None


def unseal(key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """AES-GCM decryption; ``InvalidCiphertext`` when the tag does not verify (the ciphertext, the
    nonce, the associated data or the key differs from what was sealed)."""
    if len(sealed) < TAG_BYTES:
        raise InvalidCiphertext("the ciphertext is shorter than its 16-byte tag: it was truncated")
    try:
        return AESGCM(key).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise InvalidCiphertext("the ciphertext does not authenticate") from None
    except (ValueError, TypeError, OverflowError) as error:
        raise InvalidCiphertext(f"AES-GCM cannot decrypt: {error}") from None


def hkdf(ikm: bytes, *, salt: bytes | None, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract then expand. No salt means HashLen zero bytes."""
    return HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)


def hkdf_extract(ikm: bytes, salt: bytes | None = None) -> bytes:
    """HKDF-Extract (RFC 5869, 2.2): PRK = HMAC-SHA256(salt, IKM)."""
    return hmac_sha256(salt or bytes(HASH_BYTES), ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-Expand (RFC 5869, 2.3)."""
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = _crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return _hmac.compare_digest(a, b)


def encode_context(context: Mapping[str, str] | None) -> bytes:
    """The canonical bytes of an encryption context: the number of pairs, then each pair sorted by
    key (as UTF-8 bytes), key and value each as a 4-byte big-endian length and its UTF-8 bytes.
    Length prefixes make the encoding unambiguous: {"a": "bc"} and {"ab": "c"} differ."""
    if context is None:
        return struct.pack(">I", 0)
    if not isinstance(context, Mapping):
        raise KmsError(f"the encryption context must be a mapping of str to str, not {type(context).__name__}")
    pairs = []
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise KmsError(f"the encryption context maps str to str: {key!r}: {value!r} is not")
        pairs.append((key.encode(), value.encode()))
    out = [struct.pack(">I", len(pairs))]
    for key, value in sorted(pairs):
        out += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
    return b"".join(out)

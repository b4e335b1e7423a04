"""The audit log's signing key and digest signatures (Ed25519).

The key pair lives in ``<data_dir>/keys/`` (a 0700 directory): the private key is stored only
encrypted by the KMS (``audit-signing.key.kms``: the raw 32-byte Ed25519 key under the KMS key
``audit-signing``, context {"purpose": "audit-signing"}); the public key beside it
(``audit-signing.pub``, PEM) is all that verification needs. The plaintext PKCS#8 file of an older
data directory (``audit-signing.key``) is sealed on first load, then removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from summit.security.audit.format import AuditError, fsync_dir
from summit.security.kms import Kms, KmsError

KEY_FILE = "audit-signing.key"  # PKCS#8 PEM: the format before the KMS, converted on load
SEALED_KEY_FILE = "audit-signing.key.kms"  # the raw private key, a KMS blob (mode 0600)
PUBLIC_KEY_FILE = "audit-signing.pub"  # SubjectPublicKeyInfo PEM
KMS_KEY = "audit-signing"
SEALING_CONTEXT = {"purpose": "audit-signing"}
SIGNING_CONTEXT = b"summit-audit-digest-v1\n"  # domain separation: these signatures sign nothing else


def canonical(body: Mapping) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_digest(key: Ed25519PrivateKey, body: Mapping) -> dict:
    """``body`` plus its Ed25519 signature (hex) over the canonical JSON of everything else."""
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    return {**unsigned, "signature": key.sign(SIGNING_CONTEXT + canonical(unsigned)).hex()}


def signature_valid(public_key: Ed25519PublicKey, digest: Mapping) -> bool:
    try:
        signature = bytes.fromhex(digest["signature"])
        public_key.verify(signature, SIGNING_CONTEXT + canonical({k: v for k, v in digest.items() if k != "signature"}))
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM Ed25519 public key; ValueError says what is wrong with the file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the audit public key {path}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def load_or_create_signing_key(keys_dir: Path, *, kms: Kms | None = None) -> Ed25519PrivateKey:
    """The audit signing key in ``keys_dir``, made on first use (or sealed from an older
    plaintext file), race-safe between processes; its public half is written beside it for
    verifiers. ``kms`` defaults to the data directory's, ``keys_dir/kms``."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    try:
        kms = kms or Kms(keys_dir / "kms")
        kms.ensure_key(KMS_KEY, description="the audit log's signing key")
        key = _load_sealed(keys_dir, kms)
    except KmsError as error:
        raise AuditError(f"cannot open the audit signing key: {error}") from None
    public = keys_dir / PUBLIC_KEY_FILE
    expected = public_pem(key.public_key())
    if not public.exists():
        _publish(public, expected, 0o644, replace=True)  # every racer writes the same bytes
    elif public.read_bytes() != expected:
        raise AuditError(f"{public} does not match {keys_dir / SEALED_KEY_FILE}: refusing to sign with a key verifiers do not have")
    return key


def _load_sealed(keys_dir: Path, kms: Kms) -> Ed25519PrivateKey:
    sealed, plain = keys_dir / SEALED_KEY_FILE, keys_dir / KEY_FILE
    if not sealed.exists():
        try:  # an older data directory's plaintext key is kept; else a new one
            key = _read_plaintext(plain)
        except FileNotFoundError:
            key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        _publish(sealed, kms.encrypt(KMS_KEY, raw, SEALING_CONTEXT), 0o600, replace=False)  # a racer may win: theirs is used
    key = Ed25519PrivateKey.from_private_bytes(kms.decrypt(sealed.read_bytes(), SEALING_CONTEXT, key_name=KMS_KEY))
    if plain.exists():  # converted (by this process or another): the plaintext goes, unless it is another key
        try:
            old = _read_plaintext(plain)
        except FileNotFoundError:
            return key
        if key_id(old.public_key()) != key_id(key.public_key()):
            raise AuditError(f"{plain} holds another key than {sealed}: remove the one that does not match {PUBLIC_KEY_FILE}")
        plain.unlink(missing_ok=True)
        fsync_dir(keys_dir)
    return key


def _read_plaintext(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as error:
        raise AuditError(f"cannot read {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path} is not an Ed25519 private key")
    return key


def _publish(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write ``data`` to a private temporary file, then link (or rename) it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)

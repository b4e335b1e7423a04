"""The signing key set of the user pool: Ed25519 keys with rotation, published as a JWKS.

Keys live in ``<data_dir>/keys/identity/`` (directory 0700, files 0600), one file per key,
``<kid>.jwk.kms``: the private JWK encrypted by the KMS (key ``identity-tokens``, context
{"purpose": "identity-token-signing", "kid": kid}, so a file renamed to another kid does not
decrypt), plus ``active`` naming the key that signs. A plaintext ``<kid>.jwk`` of an older data
directory is sealed the first time the directory is loaded, then removed.

Rotation adds a key and makes it active; older keys stay in the JWKS, so tokens they signed stay
valid until they expire: nobody is logged out. A process that meets a token with an unknown
``kid`` re-reads the directory once, so a rotation made by another process (or ``summit identity
rotate-keys``) is picked up without a restart.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from joserfc.jwk import KeySet as _JoseKeySet
from joserfc.jwk import OKPKey

from summit.security.kms import Kms
from summit.security.kms.keystore import publish

ALGORITHM = "Ed25519"  # RFC 9864's name for EdDSA over Ed25519 (was "EdDSA")
KMS_KEY = "identity-tokens"
SEALED = ".jwk.kms"  # <kid>.jwk.kms: the private JWK, encrypted
PLAINTEXT = ".jwk"  # <kid>.jwk: the format before the KMS, converted on load


def sealing_context(kid: str) -> dict[str, str]:
    return {"purpose": "identity-token-signing", "kid": kid}


class KeySet:
    def __init__(self, directory: Path, *, kms: Kms | None = None):
        """The key set in ``directory`` (``<data_dir>/keys/identity``), sealed by ``kms``: by default
        the data directory's, ``<data_dir>/keys/kms`` (the directory's sibling ``kms``)."""
        self.directory = directory
        self.kms = kms or Kms(directory.parent / "kms")
        self.kms.ensure_key(KMS_KEY, description="the user pool's token-signing keys (private JWKs)")
        self._lock = threading.Lock()
        self._keys: dict[str, OKPKey] = {}
        self._active: str | None = None
        self._loaded_at = 0.0
        self._active_mtime = 0.0
        self._ensure()

    # -- storage ---------------------------------------------------------------------------------
    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if not (self.directory / "active").exists():
            self.rotate(only_if_empty=True)
        self.reload()

    def reload(self) -> None:
        with self._lock:
            self._seal_plaintext()
            keys = {}
            for path in sorted(self.directory.glob("*" + SEALED)):
                kid = path.name.removesuffix(SEALED)
                keys[kid] = self._keys.get(kid) or self._open(path, kid)
            self._active_mtime = (self.directory / "active").stat().st_mtime
            active = (self.directory / "active").read_text().strip()
            if active not in keys:
                raise RuntimeError(f"{self.directory}/active names key {active!r}, which is not in the key set")
            self._keys, self._active, self._loaded_at = keys, active, time.monotonic()

    def rotate(self, *, only_if_empty: bool = False) -> str:
        """Add a new key and make it the signing key; returns its kid."""
        if only_if_empty and self._stored() and (self.directory / "active").exists():
            return (self.directory / "active").read_text().strip()
        key = _new_key()
        self._seal(key)
        tmp = self.directory / f".active.{os.getpid()}"
        tmp.write_text(key.kid)
        os.replace(tmp, self.directory / "active")
        if not only_if_empty:
            self.reload()
        return key.kid

    def retire(self, kid: str) -> None:
        """Remove a key: tokens it signed stop validating. The active key cannot be retired."""
        if kid == self.active_kid:
            raise ValueError("the active key cannot be retired: rotate first")
        if not isinstance(kid, str) or not kid.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{kid!r} is not a key id (see `summit identity keys`)")
        (self.directory / f"{kid}{SEALED}").unlink(missing_ok=False)
        self.reload()

    # -- use -------------------------------------------------------------------------------------
    @property
    def active_kid(self) -> str:
        assert self._active is not None
        return self._active

    @property
    def signing_key(self) -> OKPKey:
        """The active key; a rotation made by another process is seen within a second."""
        if time.monotonic() - self._loaded_at > 1.0:
            try:
                changed = (self.directory / "active").stat().st_mtime != self._active_mtime
            except FileNotFoundError:
                changed = False
            if changed:
                self.reload()
            else:
                self._loaded_at = time.monotonic()
        return self._keys[self.active_kid]

    def key_for(self, kid: object) -> OKPKey | None:
        """The verification key for ``kid``; re-reads the directory once (rate-limited) if unknown."""
        if not isinstance(kid, str):
            return None
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 1.0:
            self.reload()
            key = self._keys.get(kid)
        return key

    def kids(self) -> list[str]:
        return list(self._keys)

    def jwks(self) -> dict:
        """The public keys, as a JWKS document (RFC 7517)."""
        return {"keys": [_public(key) for key in self._keys.values()]}

    def jose_key_set(self) -> _JoseKeySet:
        return _JoseKeySet(list(self._keys.values()))

    # -- sealing ---------------------------------------------------------------------------------
    def _stored(self) -> bool:
        return any(self.directory.glob("*" + SEALED)) or any(self.directory.glob("*" + PLAINTEXT))

    def _seal(self, key: OKPKey) -> None:
        """Write the private JWK encrypted, linked into place (a racer's copy of the same kid wins)."""
        blob = self.kms.encrypt(KMS_KEY, json.dumps(key.as_dict(private=True)).encode(), sealing_context(key.kid))
        publish(self.directory / f"{key.kid}{SEALED}", blob)

    def _open(self, path: Path, kid: str) -> OKPKey:
        key = OKPKey.import_key(json.loads(self.kms.decrypt(path.read_bytes(), sealing_context(kid), key_name=KMS_KEY)))
        if key.kid != kid:
            raise RuntimeError(f"{path} holds key {key.kid!r}, not {kid!r}: restore the key set from your backup")
        return key

    def _seal_plaintext(self) -> None:
        """Convert the plaintext ``<kid>.jwk`` files of an older data directory: each is sealed, then
        removed (processes converting at once write one sealed file; a file another process just
        removed was sealed before it went)."""
        for path in sorted(self.directory.glob("*" + PLAINTEXT)):
            try:
                key = OKPKey.import_key(json.loads(path.read_text()))
            except FileNotFoundError:
                continue
            if key.kid != path.name.removesuffix(PLAINTEXT):
                raise RuntimeError(f"{path} holds key {key.kid!r}: name it {key.kid}.jwk, or remove it")
            self._seal(key)
            path.unlink(missing_ok=True)


def _new_key() -> OKPKey:
    """A new Ed25519 key whose kid (its thumbprint, base64url) does not start with ``-``: operators
    pass kids to commands (``summit identity retire-key KID``), where one would read as an option."""
    while True:
        key = OKPKey.generate_key("Ed25519", parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
        if not key.kid.startswith("-"):
            return key


def _public(key: OKPKey) -> dict:
    public = key.as_dict(private=False)
    public.update(kid=key.kid, alg=ALGORITHM, use="sig")
    return public


"""The signing key set of the user pool: Ed25519 keys with rotation, published as a JWKS.

Keys live in ``<data_dir>/keys/identity/`` (directory 0700, files 0600), one JWK file per key,
plus ``active`` naming the key that signs. Rotation adds a key and makes it active; older keys stay
in the JWKS, so tokens they signed stay valid until they expire: nobody is logged out. A process
that meets a token with an unknown ``kid`` re-reads the directory once, so a rotation made by
another process (or ``summit identity rotate-keys``) is picked up without a restart.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from joserfc.jwk import KeySet as _JoseKeySet
from joserfc.jwk import OKPKey

ALGORITHM = "Ed25519"  # RFC 9864's name for EdDSA over Ed25519 (was "EdDSA")


class KeySet:
    def __init__(self, directory: Path):
        self.directory = directory
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
            keys = {}
            for path in sorted(self.directory.glob("*.jwk")):
                key = OKPKey.import_key(json.loads(path.read_text()))
                keys[key.kid] = key
            self._active_mtime = (self.directory / "active").stat().st_mtime
            active = (self.directory / "active").read_text().strip()
            if active not in keys:
                raise RuntimeError(f"{self.directory}/active names key {active!r}, which is not in the key set")
            self._keys, self._active, self._loaded_at = keys, active, time.monotonic()

    def rotate(self, *, only_if_empty: bool = False) -> str:
        """Add a new key and make it the signing key; returns its kid."""
        if only_if_empty and any(self.directory.glob("*.jwk")) and (self.directory / "active").exists():
            return (self.directory / "active").read_text().strip()
        key = OKPKey.generate_key("Ed25519", parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
        _write_private(self.directory / f"{key.kid}.jwk", json.dumps(key.as_dict(private=True)))
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
        (self.directory / f"{kid}.jwk").unlink(missing_ok=False)
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


def _public(key: OKPKey) -> dict:
    public = key.as_dict(private=False)
    public.update(kid=key.kid, alg=ALGORITHM, use="sig")
    return public


def _write_private(path: Path, text: str) -> None:
    """Write under a temporary name, then rename: a concurrent reader never sees half a key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)

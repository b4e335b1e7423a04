"""Signed access tokens: JWTs signed with Ed25519 (EdDSA), verifiable by any process with the key.

The key pair lives in the data directory (owner-only permissions), so every web process of a
deployment validates tokens without shared memory or a call back. The signing algorithm is fixed
(an allow-list of one): a token that names another algorithm, or none, is rejected.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.jwt import JWTClaimsRegistry

ALGORITHM = "Ed25519"  # RFC 9864's fully-specified name for EdDSA over Ed25519
ISSUER = "summit"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not for us; the message says which."""


@dataclass(frozen=True)
class Claims:
    subject: str
    issued_at: int
    expires_at: int
    token_id: str


class TokenService:
    def __init__(self, key: OKPKey, *, ttl_seconds: int = 3600, audience: str = "summit-photos"):
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.audience = audience

    @classmethod
    def from_data_dir(cls, data_dir: Path, **kwargs) -> TokenService:
        return cls(load_or_create_key(data_dir / "keys" / "token-signing.jwk"), **kwargs)

    def issue(self, subject: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": ISSUER,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_seconds,
            "jti": secrets.token_urlsafe(12),
        }
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=[ALGORITHM])

    def verify(self, token: str, *, now: float | None = None) -> Claims:
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 4096:
            raise InvalidToken("malformed token: expected a JWT (three dot-separated parts)")
        try:
            decoded = jwt.decode(token, self.key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise InvalidToken(f"invalid token: {_reason(error)}") from None
        if decoded.header.get("alg") != ALGORITHM:
            raise InvalidToken("invalid token: algorithm not allowed")
        try:
            JWTClaimsRegistry(
                now=int(time.time() if now is None else now),
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "value": self.audience},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
            ).validate(decoded.claims)
        except JoseError as error:
            raise InvalidToken(f"invalid token: {_reason(error)}") from None
        c = decoded.claims
        if not isinstance(c.get("sub"), str):
            raise InvalidToken("invalid token: bad subject")
        return Claims(c["sub"], int(c["iat"]), int(c["exp"]), str(c.get("jti", "")))


def _reason(error: Exception) -> str:
    return getattr(error, "description", None) or getattr(error, "error", None) or type(error).__name__


def load_or_create_key(path: Path) -> OKPKey:
    """The Ed25519 signing key at ``path``, created (mode 0600) on first use."""
    if path.exists():
        return OKPKey.import_key(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = OKPKey.generate_key("Ed25519", auto_kid=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(key.as_dict(private=True)))
    try:
        os.link(tmp, path)  # fails if another process created the key first: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return OKPKey.import_key(json.loads(path.read_text()))

"""Access and ID tokens of the user pool: JWTs signed with the key set (Ed25519).

Validation checks, in order: the shape (three parts, a header with only alg/typ/kid), the
algorithm (an allow-list of one: ``none``, HS256 and friends are refused before any key is
touched), the key (by ``kid``, from the pool's own key set only: an embedded ``jwk`` or a ``jku``
is never followed), the signature, then ``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` (with a
small leeway for clock skew) and ``token_use``.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from summit.security.identity.keys import ALGORITHM, KeySet

LEEWAY_SECONDS = 30
ALLOWED_HEADER = {"alg", "typ", "kid"}
VERIFIED_TOKENS = 4096  # tokens whose signature this process has checked, kept for their remaining life


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not for us; the message says which."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    token_use: str
    issued_at: int
    expires_at: int
    token_id: str
    auth_time: int
    claims: dict[str, Any] = field(default_factory=dict)


class TokenIssuer:
    def __init__(self, keys: KeySet, *, issuer: str, audience: str, access_ttl: int = 300, id_ttl: int = 3600):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.id_ttl = id_ttl
        # token -> (kid, claims): a signature checked once is not checked again on every request;
        # the claims (expiry above all) are, and the key must still be in the key set
        self._verified: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.signing_key
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])

    def _base(self, subject: str, token_use: str, ttl: int, auth_time: int | None, now: float | None) -> dict[str, Any]:
        issued = int(time.time() if now is None else now)
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "token_use": token_use,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "auth_time": auth_time or issued,
            "jti": secrets.token_urlsafe(12),
        }

    def access_token(self, subject: str, *, username: str, auth_time: int | None = None, now: float | None = None, **extra: Any) -> str:
        return self._sign({**self._base(subject, "access", self.access_ttl, auth_time, now), "username": username, **extra})

    def id_token(self, subject: str, *, username: str, email: str, email_verified: bool, auth_time: int | None = None, now: float | None = None) -> str:
        claims = self._base(subject, "id", self.id_ttl, auth_time, now)
        claims.update(preferred_username=username, email=email, email_verified=email_verified)
        return self._sign(claims)

    def verify(self, token: object, *, token_use: str = "access", now: float | None = None) -> TokenClaims:
        now = time.time() if now is None else now
        seen = self._verified.get(token) if isinstance(token, str) else None
        if seen is not None and self.keys.key_for(seen[0]) is not None:
            self._verified.move_to_end(token)  # type: ignore[arg-type]
            return self._check_claims(seen[1], token_use, now)
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"invalid token: algorithm {header.get('alg')!r} is not allowed")
        if set(header) - ALLOWED_HEADER:
            raise InvalidToken(f"invalid token: header fields {sorted(set(header) - ALLOWED_HEADER)} are not allowed")
        key = self.keys.key_for(header.get("kid"))
        if key is None:
            raise InvalidToken("invalid token: signed by an unknown key")
        try:
            obj = jws.deserialize_compact(str(token), key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as error:
            raise InvalidToken(f"invalid token: {getattr(error, 'description', None) or 'bad signature'}") from None
        try:
            claims = json.loads(obj.payload)
        except ValueError:
            raise InvalidToken("invalid token: the payload is not JSON") from None
        checked = self._check_claims(claims, token_use, now)
        self._verified[str(token)] = (header["kid"], claims)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return checked

    def _check_claims(self, c: Any, token_use: str, now: float) -> TokenClaims:
        if not isinstance(c, dict):
            raise InvalidToken("invalid token: the payload is not a JSON object")
        for name in ("iss", "aud", "sub", "token_use", "iat", "exp", "jti"):
            if name not in c:
                raise InvalidToken(f"invalid token: the {name} claim is missing")
        if c["iss"] != self.issuer:
            raise InvalidToken("invalid token: issued by someone else")
        audience = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
        if self.audience not in audience:
            raise InvalidToken("invalid token: not meant for this audience")
        if c["token_use"] != token_use:
            raise InvalidToken(f"invalid token: a {c['token_use']!r} token where an {token_use!r} token is needed")
        numbers = [c.get(k) for k in ("iat", "exp", "nbf", "auth_time") if k in c]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers) or not isinstance(c["sub"], str):
            raise InvalidToken("invalid token: malformed claims")
        if now > c["exp"] + LEEWAY_SECONDS:
            raise InvalidToken("invalid token: expired")
        if now < c.get("nbf", c["iat"]) - LEEWAY_SECONDS or now < c["iat"] - LEEWAY_SECONDS:
            raise InvalidToken("invalid token: not valid yet (issued in the future)")
        return TokenClaims(c["sub"], c["token_use"], c["iat"], c["exp"], str(c["jti"]), int(c.get("auth_time", c["iat"])), c)


def _header(token: object) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > 8192 or token.count(".") != 2:
        raise InvalidToken("malformed token: expected a JWT (three dot-separated parts)")
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        raise InvalidToken("malformed token: the header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token: the header is not a JSON object")
    return header

"""The user pool (like Cognito): sign-up with an emailed code, sign-in with optional TOTP, rotating
refresh tokens, lock-outs, JWKS and OpenID discovery. See ``pool.UserPool`` and ``api.router``."""

from summit.security.identity.keys import KeySet
from summit.security.identity.pool import UserPool
from summit.security.identity.records import MfaChallenge, PoolConfig, PoolUser, Principal, Session

__all__ = ["KeySet", "MfaChallenge", "PoolConfig", "PoolUser", "Principal", "Session", "UserPool"]

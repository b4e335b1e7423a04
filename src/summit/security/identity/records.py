"""What the user pool hands back: users, sessions, MFA challenges, and its configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoolConfig:
    issuer: str
    audience: str = "summit-photos"
    access_ttl: int = 300
    id_ttl: int = 3600
    refresh_ttl: int = 30 * 24 * 3600
    code_ttl: int = 24 * 3600
    reset_code_ttl: int = 3600
    code_attempts: int = 5
    app_name: str = "Summit Photos"


@dataclass(frozen=True)
class PoolUser:
    id: int
    username: str
    email: str
    confirmed: bool
    mfa_enabled: bool
    created_at: float


@dataclass(frozen=True)
class Session:
    user: PoolUser
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int

    def as_json(self) -> dict:
        return {
            "access_token": self.access_token,
            "id_token": self.id_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "token": self.access_token,  # the spine's name for the access token
            "user": {"id": str(self.user.id), "username": self.user.username, "email": self.user.email,
                     "confirmed": self.user.confirmed, "mfa_enabled": self.user.mfa_enabled},
        }


@dataclass(frozen=True)
class MfaChallenge:
    challenge: str
    expires_in: int

    def as_json(self) -> dict:
        return {"mfa_required": True, "challenge": self.challenge, "expires_in": self.expires_in}


@dataclass(frozen=True)
class Principal:
    """Who an access token speaks for, once validated (signature, claims, revocation)."""

    user_id: int
    username: str
    token_id: str
    issued_at: int
    auth_time: int
    expires_at: int = 0
    session_id: str = ""  # the refresh-token family of the sign-in this token comes from
    role: str = ""  # set in a role session (an assumed role's token)

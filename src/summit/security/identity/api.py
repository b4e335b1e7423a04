"""HTTP endpoints of the user pool, mounted by any app on the platform (``app.include_router``).

Names are part of the public API: clients and later stages rely on them.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from summit.security.identity.cookies import REFRESH_COOKIE, clear_session_cookies, set_session_cookies
from summit.security.identity.pool import UserPool
from summit.security.identity.records import MfaChallenge, PoolUser, Principal, Session
from summit.errors import Unauthorized
from summit.security.identity.web import optional_principal, pool_of, require_principal
from summit.web import csrf

router = APIRouter(tags=["identity"])


async def pool_dependency(request: Request) -> UserPool:
    """``pool_of`` for ``Depends``: async, because FastAPI runs a plain ``def`` dependency on a thread."""
    return pool_of(request)


Pool = Annotated[UserPool, Depends(pool_dependency)]
Me = Annotated[Principal, Depends(require_principal)]


class _JSON(JSONResponse):
    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignUp(_Body):
    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    email: str = Field(min_length=1, max_length=254, examples=["alice@example.com"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])


class Confirm(_Body):
    login: str = Field(min_length=1, max_length=254, description="username or email")
    code: str = Field(min_length=1, max_length=20)


class Login(_Body):
    login: str = Field(min_length=1, max_length=254, description="username or email")


class SignIn(Login):
    password: str = Field(min_length=1, max_length=1024)


class MfaAnswer(_Body):
    challenge: str = Field(min_length=1, max_length=4096)
    code: str = Field(min_length=1, max_length=20, description="a TOTP code, or a recovery code")


class Refresh(_Body):
    refresh_token: str | None = Field(None, max_length=200, description="or the refresh cookie, for browsers")


class SignOut(_Body):
    refresh_token: str | None = Field(None, max_length=200)


class ChangePassword(_Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class ResetConfirm(Confirm):
    new_password: str = Field(min_length=1, max_length=1024)


class Code(_Body):
    code: str = Field(min_length=1, max_length=20)


class SessionOut(BaseModel):
    access_token: str
    id_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    token: str = Field(description="the access token (the spine's name for it)")


class MfaRequiredOut(BaseModel):
    mfa_required: bool
    challenge: str
    expires_in: int


class PoolUserOut(BaseModel):
    id: str
    username: str
    email: str
    confirmed: bool
    mfa_enabled: bool


def _user(user: PoolUser) -> dict:
    return {"id": str(user.id), "username": user.username, "email": user.email, "confirmed": user.confirmed, "mfa_enabled": user.mfa_enabled}


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def _device(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200]


def _secure(request: Request) -> bool:
    return bool(getattr(request.app.state, "cookie_secure", False))


def _session_response(request: Request, pool: UserPool, session: Session, status: int = 201) -> Response:
    response = _JSON(session.as_json(), status_code=status)
    set_session_cookies(response, access_token=session.access_token, refresh_token=session.refresh_token,
                        refresh_ttl=pool.config.refresh_ttl, secure=_secure(request))
    return response


ACCEPTED = Response(status_code=202)


@router.post("/api/v1/accounts", status_code=201, responses={201: {"model": PoolUserOut}})
async def sign_up(body: SignUp, request: Request, pool: Pool) -> Response:
    """Create an account, unconfirmed: a code is mailed to the address (confirm it at /api/v1/accounts/confirm)."""
    user = await pool.sign_up(body.username, body.email, body.password, source=_source(request))
    return _JSON(_user(user), status_code=201)


@router.post("/api/v1/accounts/confirm", responses={200: {"model": PoolUserOut}})
async def confirm(body: Confirm, request: Request, pool: Pool) -> Response:
    """Confirm the address with the mailed code."""
    return _JSON(_user(await pool.confirm(body.login, body.code, source=_source(request))))


@router.post("/api/v1/accounts/confirm/resend", status_code=202)
async def resend(body: Login, pool: Pool) -> Response:
    """Mail a new confirmation code (answers 202 whether or not the account exists)."""
    await pool.resend_code(body.login)
    return Response(status_code=202)


@router.post("/api/v1/sessions", status_code=201, responses={201: {"model": SessionOut}, 401: {"model": MfaRequiredOut}})
async def sign_in(body: SignIn, request: Request, pool: Pool) -> Response:
    """Sign in with a username or email. With TOTP on, answers 401 {mfa_required, challenge}:
    send the challenge and a code to /api/v1/sessions/mfa."""
    result = await pool.sign_in(body.login, body.password, source=_source(request), device=_device(request))
    if isinstance(result, MfaChallenge):
        return _JSON(result.as_json(), status_code=401)
    return _session_response(request, pool, result)


@router.post("/api/v1/sessions/mfa", status_code=201, responses={201: {"model": SessionOut}})
async def answer_mfa(body: MfaAnswer, request: Request, pool: Pool) -> Response:
    session = await pool.answer_mfa(body.challenge, body.code, source=_source(request), device=_device(request))
    return _session_response(request, pool, session)


@router.post("/api/v1/sessions/refresh", status_code=201, responses={201: {"model": SessionOut}})
async def refresh(request: Request, pool: Pool, body: Refresh | None = None) -> Response:
    """A new access token and a new refresh token; the old refresh token is spent (reusing it signs
    out every session of that sign-in)."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    session = await pool.refresh(token, device=_device(request), source=_source(request))
    return _session_response(request, pool, session)


class AssumeRole(_Body):
    role: str = Field(min_length=1, max_length=64, examples=["moderator"])


class RoleSessionOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    role_arn: str


@router.post("/api/v1/sessions/role", status_code=201, responses={201: {"model": RoleSessionOut}})
async def assume_role(body: AssumeRole, request: Request, me: Me, pool: Pool) -> Response:
    """Assume a role (sts:AssumeRole): an access token whose requests have the role's policies, and
    only those, for as long as an access token lives. The role's trust policy must name you."""
    arn = await request.app.state.access.assume_role(me, body.role)
    token = pool.role_token(me, body.role)
    await pool.audit("sts:AssumeRole", user_id=me.user_id, result="success")
    return _JSON({"access_token": token, "token_type": "Bearer", "expires_in": pool.config.access_ttl, "role_arn": arn}, status_code=201)


@router.delete("/api/v1/sessions", status_code=204)
async def sign_out(request: Request, pool: Pool, body: SignOut | None = None) -> Response:
    """Sign out this device: its refresh tokens and this access token stop working. The access token,
    or the refresh token alone (in the body, or the cookie with the CSRF header), is enough."""
    try:
        me = await optional_principal(request)
    except Unauthorized:
        me = None  # e.g. an expired access token: the refresh token still identifies the sign-in
    refresh_token = body.refresh_token if body and body.refresh_token else None
    if refresh_token is None and request.cookies.get(REFRESH_COOKIE):
        if me is None:
            csrf.check_header(request)  # a cookie alone must not be enough to act (CSRF)
        refresh_token = request.cookies.get(REFRESH_COOKIE)
    await pool.sign_out(me, refresh_token=refresh_token)
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


@router.delete("/api/v1/sessions/all", status_code=204)
async def sign_out_everywhere(me: Me, pool: Pool) -> Response:
    """Sign out every device. summit's own API refuses older access tokens at once; other services
    that check tokens with the JWKS alone see it within the access token's lifetime."""
    await pool.sign_out_everywhere(me.user_id)
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


@router.post("/api/v1/me/password", status_code=204)
async def change_password(body: ChangePassword, request: Request, me: Me, pool: Pool) -> Response:
    await pool.change_password(me.user_id, body.current_password, body.new_password, source=_source(request))
    return Response(status_code=204)


@router.post("/api/v1/accounts/password-reset", status_code=202)
async def start_reset(body: Login, pool: Pool) -> Response:
    """Mail a reset code (answers 202 whether or not the account exists)."""
    await pool.start_password_reset(body.login)
    return Response(status_code=202)


@router.post("/api/v1/accounts/password-reset/confirm", status_code=204)
async def confirm_reset(body: ResetConfirm, request: Request, pool: Pool) -> Response:
    """Set a new password with the mailed code; every session is signed out."""
    await pool.confirm_password_reset(body.login, body.code, body.new_password, source=_source(request))
    return Response(status_code=204)


@router.post("/api/v1/me/mfa/totp")
async def enrol_totp(me: Me, pool: Pool) -> Response:
    """Start TOTP enrolment: the secret, an otpauth:// URI and its QR code (SVG)."""
    return _JSON(await pool.enrol_totp(me.user_id))


@router.post("/api/v1/me/mfa/totp/verify")
async def verify_totp(body: Code, me: Me, pool: Pool) -> Response:
    """Finish enrolment with a current code; answers the recovery codes, shown only this once."""
    return _JSON({"mfa_enabled": True, "recovery_codes": await pool.verify_totp(me.user_id, body.code)})


@router.get("/.well-known/openid-configuration")
async def discovery(pool: Pool) -> Response:
    issuer = pool.config.issuer
    return _JSON({
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/api/v1/sessions",
        "response_types_supported": ["token", "id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["Ed25519"],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "email", "email_verified", "preferred_username", "token_use"],
    })


@router.get("/.well-known/jwks.json")
async def jwks(pool: Pool) -> Response:
    response = _JSON(pool.keys.jwks())
    response.headers["cache-control"] = "public, max-age=300"
    return response

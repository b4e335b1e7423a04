"""Account pages of the web UI, on the platform's user pool (``ctx.identity``):

- sign-up, then confirmation by the mailed code (``/confirm``, with "mail me a new code");
- log-in by username or email, then a TOTP or recovery code when two-step verification is on
  (``/login/mfa``); log-out of this device;
- password reset by a mailed code (``/reset``, ``/reset/confirm``), which always answers the same
  whether or not the account exists;
- Settings -> Security (``/settings/security``): TOTP enrolment (QR code, secret and otpauth URI,
  a first code, then the recovery codes shown once), password change, and sign-out everywhere;
- the dev inbox (``/dev/inbox``): the embedded outbox's mail, for a developer on this machine only.

Every form carries the CSRF token and its handler checks it before anything else.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from summit.errors import ServiceError
from summit.ports.mail import Outbox
from summit.security import MfaChallenge, totp

from photos import auth
from photos.errors import AppError, NotFound
from photos.services.common import Profile
from photos.web.pages import (
    HtmlRoute,
    check_csrf,
    ctx_of,
    device,
    form_error,
    log_in,
    principal,
    read_form,
    redirect,
    render,
    require_user,
    safe_next,
    source,
    viewer,
    with_headers,
)

router = APIRouter(include_in_schema=False, route_class=HtmlRoute)
MAX_LOGIN = 254
INBOX_LIMIT = 50
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _login_param(request: Request) -> str:
    return request.query_params.get("login", "")[:MAX_LOGIN]


def _with_next(path: str, next_path: str, **params: str) -> str:
    """``path`` with ``params`` and ``next`` (left out when it is the home page) as its query."""
    query = {k: v for k, v in params.items() if v} | ({"next": next_path} if next_path != "/" else {})
    return path + ("?" + urlencode(query) if query else "")


# ---- the dev inbox ----------------------------------------------------------------------------
def dev_inbox_available(request: Request) -> bool:
    """True when the mail port keeps mail (the embedded outbox) and the request comes straight from
    this machine: a loopback client address and no proxy's forwarding header (a reverse proxy on
    the same host would otherwise make every visitor look local)."""
    if not isinstance(ctx_of(request).platform.mail, Outbox):
        return False
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    host = request.client.host if request.client else None
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


@router.get("/dev/inbox")
async def dev_inbox(request: Request) -> Response:
    if not dev_inbox_available(request):
        raise NotFound("no such page")  # the same answer as any unknown page
    to = request.query_params.get("to", "").strip()[:MAX_LOGIN]
    mails = await ctx_of(request).platform.mail.list(INBOX_LIMIT, to=to or None)
    await viewer(request)  # for the header's links
    return render(request, "dev_inbox.html", mails=mails, to=to, limit=INBOX_LIMIT)


# ---- sign-up and confirmation -----------------------------------------------------------------
@router.get("/signup")
async def signup_form(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if await viewer(request) is not None:
        return redirect(request, next_path)
    return render(request, "signup.html", form={}, next=next_path)


@router.post("/signup")
async def signup(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    form = {"username": fields.get("username", ""), "email": fields.get("email", "")}
    try:
        check_csrf(request, fields)
        user = await ctx_of(request).identity.sign_up(form["username"], form["email"], fields.get("password", ""), source=source(request))
    except AppError as error:
        return with_headers(render(request, "signup.html", error.status, form=form, next=next_path, **form_error(error)), error)
    return redirect(request, _with_next("/confirm", next_path, login=user.username))


def _confirm_page(request: Request, status: int = 200, **context: Any) -> Response:
    return render(request, "confirm.html", status, dev_inbox=dev_inbox_available(request), **context)


@router.get("/confirm")
async def confirm_form(request: Request) -> Response:
    return _confirm_page(request, form={"login": _login_param(request)}, next=safe_next(request.query_params.get("next")))


@router.post("/confirm")
async def confirm(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    form = {"login": fields.get("login", "")[:MAX_LOGIN]}
    pool = ctx_of(request).identity
    try:
        check_csrf(request, fields)
        if fields.get("resend"):
            await pool.resend_code(form["login"])
            return _confirm_page(request, form=form, next=next_path,
                                 notice="If that account is waiting for confirmation, a new code is on its way.")
        user = await pool.confirm(form["login"], fields.get("code", ""), source=source(request))
    except AppError as error:
        return with_headers(_confirm_page(request, error.status, form=form, next=next_path, **form_error(error)), error)
    return redirect(request, _with_next("/login", next_path, login=user.username, confirmed="1"))


# ---- log-in, two-step verification, log-out ---------------------------------------------------
def _login_page(request: Request, status: int = 200, **context: Any) -> Response:
    context.setdefault("notice", None)
    return render(request, "login.html", status, **context)


LOGIN_NOTICES = {
    "confirmed": "Your email is confirmed: log in.",
    "reset": "Your password is changed and every device was signed out: log in with the new password.",
    "everywhere": "You are signed out on every device.",
}


@router.get("/login")
async def login_form(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if await viewer(request) is not None:
        return redirect(request, next_path)
    params = request.query_params
    notice = next((text for key, text in LOGIN_NOTICES.items() if params.get(key) == "1"), None)
    return _login_page(request, form={"login": _login_param(request)}, next=next_path, notice=notice)


@router.post("/login")
async def login(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    form = {"login": fields.get("login", "")[:MAX_LOGIN]}
    try:
        check_csrf(request, fields)
        result = await ctx_of(request).identity.sign_in(form["login"], fields.get("password", ""), source=source(request), device=device(request))
    except AppError as error:
        if error.status == 403 and error.field == "login":  # the right password, but not confirmed yet
            return _login_page(request, 403, form=form, next=next_path, unconfirmed=True,
                               error="Confirm your email first: enter the code we mailed you.")
        return with_headers(_login_page(request, error.status, form=form, next=next_path, **form_error(error)), error)
    if isinstance(result, MfaChallenge):
        return render(request, "mfa.html", challenge=result.challenge, next=next_path)
    return log_in(request, redirect(request, next_path), result)


@router.get("/login/mfa")
async def login_mfa_reload(request: Request) -> Response:
    return redirect(request, _with_next("/login", safe_next(request.query_params.get("next"))))


@router.post("/login/mfa")
async def login_mfa(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    challenge = fields.get("challenge", "")[:4096]
    try:
        check_csrf(request, fields)
        session = await ctx_of(request).identity.answer_mfa(challenge, fields.get("code", "").strip(), source=source(request), device=device(request))
    except AppError as error:
        return with_headers(render(request, "mfa.html", error.status, challenge=challenge, next=next_path, **form_error(error)), error)
    return log_in(request, redirect(request, next_path), session)


@router.post("/logout")
async def logout(request: Request) -> Response:
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    me = await viewer(request)
    refresh_token = request.cookies.get(auth.REFRESH_COOKIE)
    if me is not None or refresh_token:
        try:
            await ctx_of(request).identity.sign_out(principal(request) if me else None, refresh_token=refresh_token)
        except ServiceError:  # nothing left to revoke: the cookies go anyway
            pass
    request.state.clear_session = True
    return redirect(request, "/")


# ---- password reset ---------------------------------------------------------------------------
def _reset_page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    return render(request, name, status, dev_inbox=dev_inbox_available(request), **context)


@router.get("/reset")
async def reset_form(request: Request) -> Response:
    await viewer(request)
    return _reset_page(request, "reset.html", form={"login": _login_param(request)})


@router.post("/reset")
async def reset(request: Request) -> Response:
    fields, _ = await read_form(request)
    form = {"login": fields.get("login", "").strip()[:MAX_LOGIN]}
    check_csrf(request, fields)
    if not form["login"]:
        return _reset_page(request, "reset.html", 422, form=form, error="enter your username or email", error_field="login")
    # the same answer whether or not there is such an account (the pool mails only if there is)
    await ctx_of(request).identity.start_password_reset(form["login"])
    return redirect(request, "/reset/confirm?" + urlencode({"login": form["login"], "sent": "1"}))


@router.get("/reset/confirm")
async def reset_confirm_form(request: Request) -> Response:
    await viewer(request)
    return _reset_page(request, "reset_confirm.html", form={"login": _login_param(request)}, sent=request.query_params.get("sent") == "1")


@router.post("/reset/confirm")
async def reset_confirm(request: Request) -> Response:
    fields, _ = await read_form(request)
    form = {"login": fields.get("login", "").strip()[:MAX_LOGIN]}
    pool = ctx_of(request).identity
    try:
        check_csrf(request, fields)
        await pool.confirm_password_reset(form["login"], fields.get("code", ""), fields.get("new_password", ""), source=source(request))
    except AppError as error:
        return with_headers(_reset_page(request, "reset_confirm.html", error.status, form=form, **form_error(error)), error)
    request.state.clear_session = True  # every session of the account was signed out, this one too
    return redirect(request, "/login?" + urlencode({"login": form["login"], "reset": "1"}))


# ---- Settings -> Security ---------------------------------------------------------------------
SAVED = {"password": "Password changed."}


async def _security(request: Request, me: Profile, status: int = 200, **context: Any) -> Response:
    user = await ctx_of(request).identity.get_user(me.id)
    saved = SAVED.get(request.query_params.get("saved", "")) if request.method == "GET" else None
    return render(request, "security.html", status, mfa_enabled=user.mfa_enabled, email=user.email, saved=saved, **context)


def _enrolment(secret: str, uri: str, qr_svg: str) -> dict[str, str]:
    """What the page shows to set up an authenticator: the QR code as an <img> (a data: URI, which
    the CSP allows), and the secret (in groups of four) and the otpauth:// URI for manual entry."""
    return {
        "secret": secret,
        "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "otpauth_uri": uri,
        "qr_src": "data:image/svg+xml;base64," + base64.b64encode(qr_svg.encode()).decode(),
    }


def _pending_enrolment(request: Request, me: Profile, secret: str) -> dict[str, str] | None:
    """The enrolment being verified, shown again after a wrong code. The secret comes back from the
    form (it is the user's own, already on their screen); the pool checks the code against the one
    it stored, so a tampered field can only show the user a wrong QR code."""
    secret = secret.strip().upper()
    if not (16 <= len(secret) <= 64 and secret.isascii() and all(ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for ch in secret)):
        return None
    uri = totp.provisioning_uri(secret, account=me.username, issuer=ctx_of(request).identity.config.app_name)
    return _enrolment(secret, uri, totp.qr_svg(uri))


@router.get("/settings/security")
async def security(request: Request) -> Response:
    return await _security(request, await require_user(request))


@router.get("/settings/security/{action:path}")
async def security_reload(request: Request, action: str) -> Response:
    """The address bar after a form's answer (e.g. /settings/security/totp): back to the page."""
    return redirect(request, "/settings/security")


@router.post("/settings/security/totp")
async def totp_start(request: Request) -> Response:
    me = await require_user(request, "/settings/security")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    try:
        started = await ctx_of(request).identity.enrol_totp(me.id)
    except AppError as error:
        return with_headers(await _security(request, me, error.status, section="totp", **form_error(error)), error)
    return await _security(request, me, enrol=_enrolment(started["secret"], started["otpauth_uri"], started["qr_svg"]))


@router.post("/settings/security/totp/verify")
async def totp_verify(request: Request) -> Response:
    me = await require_user(request, "/settings/security")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    try:
        codes = await ctx_of(request).identity.verify_totp(me.id, fields.get("code", "").strip())
    except AppError as error:
        enrol = _pending_enrolment(request, me, fields.get("secret", "")) if error.status != 409 else None
        return with_headers(await _security(request, me, error.status, section="totp", enrol=enrol, **form_error(error)), error)
    # shown this once: the page is not cached (no-store) and a reload does not show them again
    return await _security(request, me, recovery_codes=codes)


@router.post("/settings/security/password")
async def change_password(request: Request) -> Response:
    me = await require_user(request, "/settings/security")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    try:
        await ctx_of(request).identity.change_password(me.id, fields.get("current_password", ""), fields.get("new_password", ""),
                                                       source=source(request))
    except AppError as error:
        return with_headers(await _security(request, me, error.status, section="password", **form_error(error)), error)
    return redirect(request, "/settings/security?saved=password")


@router.post("/settings/security/sign-out-everywhere")
async def sign_out_everywhere(request: Request) -> Response:
    me = await require_user(request, "/settings/security")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    await ctx_of(request).identity.sign_out_everywhere(me.id)
    request.state.clear_session = True
    request.state.me = None
    return redirect(request, "/login?everywhere=1")

"""API: the user pool over HTTP (summit.security.identity.api): sign-up with an emailed code,
sessions with rotating refresh tokens, sign-out on one device and everywhere, password change and
reset, TOTP with recovery codes, lock-outs, the OpenID discovery document and JWKS, the password
policy, and forged or misused tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import orjson
import pyotp
import pytest
from api_helpers import API, PASSWORD, b64, bearer, jwt_parts, new_account, sign_in, sign_up, unb64
from joserfc import jws, jwt
from joserfc.jwk import KeySet as JoseKeySet

from summit.security.identity.keys import KeySet
from summit.security.identity.tokens import LEEWAY_SECONDS, TokenIssuer
from summit.testing.http import assert_error, session_cookies
from summit.testing.mail import mailed_code

CONFIRM_HOW = ("confirm", "/api/v1/accounts/confirm", "/api/v1/accounts/confirm/resend")


async def _me(client, token: str) -> httpx.Response:  # noqa: ANN001
    return await client.get(f"{API}/me", headers=bearer(token))


async def _refresh(client, refresh_token: str) -> httpx.Response:  # noqa: ANN001
    r = await client.post(f"{API}/sessions/refresh", json={"refresh_token": refresh_token})
    client.cookies.clear()
    return r


def _session_shape(body: dict, access_ttl: int = 300) -> None:
    assert {"access_token", "id_token", "refresh_token", "token_type", "expires_in", "token", "user"} <= set(body), body
    assert body["token_type"] == "Bearer" and body["expires_in"] == access_ttl
    assert body["token"] == body["access_token"]
    assert len({body["access_token"], body["id_token"], body["refresh_token"]}) == 3


# ---- sign-up and confirmation -----------------------------------------------------------------
async def test_sign_up_mails_a_code_and_confirming_it_lets_the_user_sign_in(outbox, client):
    r = await client.post(f"{API}/accounts", json={"username": "carol", "email": "Carol@Example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    user = r.json()
    assert user == {"id": user["id"], "username": "carol", "email": "carol@example.com", "confirmed": False, "mfa_enabled": False}

    mails = await outbox.list(to="carol@example.com")
    assert len(mails) == 1 and mails[0].to == ("carol@example.com",)
    code = await mailed_code(outbox, "carol@example.com", "confirmation")
    assert PASSWORD not in mails[0].text

    # before confirming: the right password gets a 403 that says what to do
    error = assert_error(await client.post(f"{API}/sessions", json={"login": "carol", "password": PASSWORD}), 403, *CONFIRM_HOW)
    assert error["field"] == "login"
    # ... and a wrong password the usual 401, so the state of an account is not told to strangers
    assert_error(await client.post(f"{API}/sessions", json={"login": "carol", "password": "wrong password"}), 401)

    r = await client.post(f"{API}/accounts/confirm", json={"login": "CAROL@example.com", "code": code})
    assert r.status_code == 200, r.text
    assert r.json() == {**user, "confirmed": True}

    session = await sign_in(client, "carol")
    _session_shape(session)
    assert session["user"]["id"] == user["id"] and session["user"]["confirmed"] is True
    me = await _me(client, session["access_token"])
    assert me.status_code == 200 and me.json()["username"] == "carol"


async def test_confirming_with_a_wrong_code_or_an_unknown_login_is_422_the_same_way(app, outbox, client):
    await sign_up(client, app, "dora", confirm=False)
    code = await mailed_code(outbox, "dora@example.com", "confirmation")
    wrong = "000000" if code != "000000" else "111111"
    mine = assert_error(await client.post(f"{API}/accounts/confirm", json={"login": "dora", "code": wrong}), 422, "wrong", "new one")
    unknown = assert_error(await client.post(f"{API}/accounts/confirm", json={"login": "nobody_here", "code": wrong}), 422)
    assert mine == unknown and mine["field"] == "code"
    # still unconfirmed
    assert_error(await client.post(f"{API}/sessions", json={"login": "dora", "password": PASSWORD}), 403, "confirm")


async def test_five_wrong_codes_spend_the_code_and_a_resent_one_works(app, outbox, client):
    await sign_up(client, app, "erin", confirm=False)
    code = await mailed_code(outbox, "erin@example.com", "confirmation")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert_error(await client.post(f"{API}/accounts/confirm", json={"login": "erin", "code": wrong}), 422)
    # guessing has a budget: the right code no longer works either
    assert_error(await client.post(f"{API}/accounts/confirm", json={"login": "erin", "code": code}), 422, "new one")
    r = await client.post(f"{API}/accounts/confirm/resend", json={"login": "erin"})
    assert r.status_code == 202 and r.content == b""
    assert len(await outbox.list(to="erin@example.com")) == 2
    fresh = await mailed_code(outbox, "erin@example.com", "confirmation")
    r = await client.post(f"{API}/accounts/confirm", json={"login": "erin", "code": fresh})
    assert r.status_code == 200 and r.json()["confirmed"] is True


async def test_resend_replaces_the_code_and_says_nothing_about_other_accounts(app, outbox, client):
    await sign_up(client, app, "fern", confirm=False)
    first = await mailed_code(outbox, "fern@example.com", "confirmation")
    r = await client.post(f"{API}/accounts/confirm/resend", json={"login": "FERN@example.com"})
    assert r.status_code == 202
    mails = await outbox.list(to="fern@example.com")
    assert len(mails) == 2
    second = await mailed_code(outbox, "fern@example.com", "confirmation")
    if second != first:  # (one in a million: the same six digits again)
        assert_error(await client.post(f"{API}/accounts/confirm", json={"login": "fern", "code": first}), 422)
    assert (await client.post(f"{API}/accounts/confirm", json={"login": "fern", "code": second})).status_code == 200

    before = len(await outbox.list(limit=1000))
    for login in ("nobody_here", "nobody@example.com", "fern"):  # unknown, unknown, already confirmed
        r = await client.post(f"{API}/accounts/confirm/resend", json={"login": login})
        assert r.status_code == 202 and r.content == b""
    assert len(await outbox.list(limit=1000)) == before


async def test_confirming_a_confirmed_account_with_any_code_does_not_disclose_it(app, client, make_user):
    """POST /accounts/confirm is anonymous: for an account that is already confirmed, a wrong code
    must not answer 200 with the account's id and email address (anyone could look up the email
    address of any username)."""
    user = await make_user()
    r = await client.post(f"{API}/accounts/confirm", json={"login": user.username, "code": "000000"})
    assert user.email not in r.text, f"{r.status_code} {r.text}"
    assert r.status_code == 422, r.text


# ---- refresh tokens ---------------------------------------------------------------------------
async def test_refresh_rotates_and_reusing_a_spent_refresh_token_revokes_its_family(app, client):
    user = await new_account(client, app, "gina")
    other_device = await sign_in(client, "gina")

    r = await _refresh(client, user.session["refresh_token"])
    assert r.status_code == 201, r.text
    first = r.json()
    _session_shape(first)
    assert first["refresh_token"] != user.session["refresh_token"]
    assert first["access_token"] != user.session["access_token"]
    assert first["user"]["id"] == user.id
    assert (await _me(client, first["access_token"])).json()["id"] == user.id
    second = (await _refresh(client, first["refresh_token"])).json()
    assert second["refresh_token"] not in (first["refresh_token"], user.session["refresh_token"])

    # the first refresh token again: someone replays a stolen copy
    error = assert_error(await _refresh(client, user.session["refresh_token"]), 401, "already used", "signed out")
    assert "refresh" in error["message"]
    # the whole family is revoked: the newest refresh token too
    assert_error(await _refresh(client, second["refresh_token"]), 401, "sign in again")
    assert_error(await _refresh(client, first["refresh_token"]), 401)
    # another sign-in is another family
    assert (await _refresh(client, other_device["refresh_token"])).status_code == 201


async def test_refresh_from_the_cookie_and_bad_refresh_tokens(app, client):
    user = await new_account(client, app, "hana")
    r = await client.post(f"{API}/sessions/refresh", headers={"Cookie": f"summit_refresh={user.session['refresh_token']}"})
    assert r.status_code == 201, r.text
    cookies = {c.split("=", 1)[0]: c.split(";", 1)[0].split("=", 1)[1] for c in r.headers.get_list("set-cookie")}
    assert cookies["summit_refresh"] == r.json()["refresh_token"] and cookies["summit_session"] == r.json()["access_token"]
    client.cookies.clear()
    for token in (None, "", "short", "x" * 43, user.session["access_token"][:100]):
        body = {} if token is None else {"refresh_token": token}
        r = await client.post(f"{API}/sessions/refresh", json=body)
        if token is not None and len(token) > 200:
            assert_error(r, 422)
        else:
            assert_error(r, 401, "refresh token", "sign in again")


# ---- signing out ------------------------------------------------------------------------------
async def test_sign_out_of_this_device_refuses_its_tokens_at_once_and_keeps_the_others(app, client):
    user = await new_account(client, app, "iris")
    other = await sign_in(client, "iris")
    r = await client.request("DELETE", f"{API}/sessions", headers=user.auth, json={"refresh_token": user.session["refresh_token"]})
    assert r.status_code == 204, r.text
    client.cookies.clear()
    assert_error(await _me(client, user.token), 401, "signed out")
    assert_error(await _refresh(client, user.session["refresh_token"]), 401)
    # the other device is still signed in
    assert (await _me(client, other["access_token"])).status_code == 200
    assert (await _refresh(client, other["refresh_token"])).status_code == 201


async def test_sign_out_by_access_token_alone_also_ends_that_sign_ins_refresh_token(app, client):
    user = await new_account(client, app, "jade")
    r = await client.delete(f"{API}/sessions", headers=user.auth)
    assert r.status_code == 204, r.text
    client.cookies.clear()
    assert_error(await _me(client, user.token), 401)
    assert_error(await _refresh(client, user.session["refresh_token"]), 401)
    assert_error(await client.delete(f"{API}/sessions", headers=user.auth), 401)


async def test_sign_out_everywhere_refuses_every_earlier_token_at_once(app, client, make_user):
    user = await new_account(client, app, "kira")
    devices = [user.session, await sign_in(client, "kira"), await sign_in(client, "kira")]
    bystander = await make_user()
    refreshed = (await _refresh(client, devices[2]["refresh_token"])).json()
    devices.append(refreshed)

    r = await client.delete(f"{API}/sessions/all", headers=bearer(devices[1]["access_token"]))
    assert r.status_code == 204, r.text
    client.cookies.clear()
    for device in devices:
        assert_error(await _me(client, device["access_token"]), 401, "signed out")
        assert_error(await _refresh(client, device["refresh_token"]), 401)
    assert (await client.get(f"{API}/me", headers=bystander.auth)).status_code == 200
    # signing in again works at once
    again = await sign_in(client, "kira")
    assert (await _me(client, again["access_token"])).status_code == 200
    assert (await _refresh(client, again["refresh_token"])).status_code == 201


async def test_sign_out_needs_a_token(client):
    assert_error(await client.delete(f"{API}/sessions/all"), 401, "Authorization: Bearer")


# ---- passwords --------------------------------------------------------------------------------
async def test_change_password(app, client):
    user = await new_account(client, app, "lena")
    url = f"{API}/me/password"
    error = assert_error(await client.post(url, headers=user.auth, json={"current_password": "wrong password", "new_password": "new horse 22"}), 401, "current password")
    assert error["field"] == "current_password"
    assert_error(await client.post(url, json={"current_password": PASSWORD, "new_password": "new horse 22"}), 401)
    r = await client.post(url, headers=user.auth, json={"current_password": PASSWORD, "new_password": "new horse 22"})
    assert r.status_code == 204, r.text
    assert_error(await client.post(f"{API}/sessions", json={"login": "lena", "password": PASSWORD}), 401)
    await sign_in(client, "lena", "new horse 22")


@pytest.mark.parametrize("endpoint", ["change", "reset"])
async def test_a_weak_new_password_is_422_naming_the_new_password_field(app, outbox, client, endpoint):
    """The error's field must be a field of the request, so that a client can show it there."""
    user = await new_account(client, app, f"weak_{endpoint}")
    if endpoint == "change":
        r = await client.post(f"{API}/me/password", headers=user.auth, json={"current_password": PASSWORD, "new_password": "password"})
    else:
        assert (await client.post(f"{API}/accounts/password-reset", json={"login": user.username})).status_code == 202
        code = await mailed_code(outbox, user.email, "reset")
        r = await client.post(f"{API}/accounts/password-reset/confirm", json={"login": user.username, "code": code, "new_password": "password"})
    error = assert_error(r, 422, "common")
    assert error.get("field") == "new_password", error


async def test_password_reset_by_a_mailed_code_signs_out_everywhere(app, outbox, client):
    user = await new_account(client, app, "mila")
    r = await client.post(f"{API}/accounts/password-reset", json={"login": "MILA@example.com"})
    assert r.status_code == 202 and r.content == b""
    mails = await outbox.list(to=user.email)
    assert "reset" in mails[0].subject and "If it was not you" in mails[0].text
    code = await mailed_code(outbox, user.email, "reset")
    wrong = "000000" if code != "000000" else "111111"
    url = f"{API}/accounts/password-reset/confirm"
    assert_error(await client.post(url, json={"login": "mila", "code": wrong, "new_password": "reset horse 3"}), 422, "wrong")
    assert (await _me(client, user.token)).status_code == 200  # nothing happened yet

    r = await client.post(url, json={"login": "mila", "code": code, "new_password": "reset horse 3"})
    assert r.status_code == 204, r.text
    assert_error(await _me(client, user.token), 401)
    assert_error(await _refresh(client, user.session["refresh_token"]), 401)
    assert_error(await client.post(f"{API}/sessions", json={"login": "mila", "password": PASSWORD}), 401)
    await sign_in(client, "mila", "reset horse 3")
    # the code is spent
    assert_error(await client.post(url, json={"login": "mila", "code": code, "new_password": "reset horse 4"}), 422)


async def test_password_reset_answers_202_for_unknown_logins_and_mails_nothing(outbox, client, make_user):
    await make_user()
    before = len(await outbox.list(limit=1000))
    for login in ("nobody_here", "nobody@example.com", "x" * 200):
        r = await client.post(f"{API}/accounts/password-reset", json={"login": login})
        assert r.status_code == 202 and r.content == b"", r.text
    assert len(await outbox.list(limit=1000)) == before
    assert await outbox.list(to="nobody@example.com") == []
    r = await client.post(f"{API}/accounts/password-reset/confirm", json={"login": "nobody_here", "code": "123456", "new_password": "reset horse 3"})
    assert_error(r, 422, "wrong")


async def test_password_reset_of_an_unconfirmed_account_gives_a_working_account(app, outbox, client):
    """The reset code reached the address, so the pool marks the account confirmed; the app's
    profile (made when an account is confirmed) must exist too, or the user can sign in but
    not use the app."""
    await sign_up(client, app, "nina", confirm=False)
    assert (await client.post(f"{API}/accounts/password-reset", json={"login": "nina"})).status_code == 202
    code = await mailed_code(outbox, "nina@example.com", "reset")
    r = await client.post(f"{API}/accounts/password-reset/confirm", json={"login": "nina", "code": code, "new_password": "reset horse 3"})
    assert r.status_code == 204, r.text
    session = await sign_in(client, "nina", "reset horse 3")
    me = await _me(client, session["access_token"])
    assert me.status_code == 200, me.text
    assert (await client.get(f"{API}/users/nina")).status_code == 200


# ---- the password policy (OWASP ASVS 5.0, V6.2) -----------------------------------------------
@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("short", ["at least 8 characters"]),
        ("seven77", ["at least 8 characters"]),
        ("password", ["common"]),
        ("Password1", ["common"]),
        ("iloveyou", ["common"]),
        ("x" * 129, ["at most 128"]),
        ("oscar_the_user", ["username"]),
    ],
)
async def test_weak_passwords_are_refused_at_sign_up_saying_what_to_do(outbox, client, password, words):
    r = await client.post(f"{API}/accounts", json={"username": "oscar_the_user", "email": "oscar@example.com", "password": password})
    error = assert_error(r, 422, *words)
    assert error["field"] == "password"
    assert await outbox.list(to="oscar@example.com") == []


@pytest.mark.parametrize(
    "password",
    [
        "abcdefgh",  # 8 characters: enough; no composition rules
        "all lower case words",
        "🏔️ summit ⛰️ photos",  # any characters: emoji, spaces
        "p" * 64,
        "correct horse battery staple " * 4 + "x" * 12,  # exactly 128
    ],
)
async def test_long_and_unusual_passwords_are_accepted(app, client, password):
    assert len(password) <= 128
    await sign_up(client, app, "pat", password)
    session = await sign_in(client, "pat", password)
    assert (await _me(client, session["access_token"])).status_code == 200


# ---- TOTP -------------------------------------------------------------------------------------
def _not_a_current_code(totp: pyotp.TOTP) -> str:
    now = time.time()
    valid = {totp.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555", "666666") if c not in valid)


async def _enable_totp(client, user) -> tuple[pyotp.TOTP, list[str]]:  # noqa: ANN001
    r = await client.post(f"{API}/me/mfa/totp", headers=user.auth)
    assert r.status_code == 200, r.text
    totp = pyotp.TOTP(r.json()["secret"])
    r = await client.post(f"{API}/me/mfa/totp/verify", headers=user.auth, json={"code": totp.now()})
    assert r.status_code == 200, r.text
    return totp, r.json()["recovery_codes"]


async def _challenge(client, username: str) -> str:  # noqa: ANN001
    r = await client.post(f"{API}/sessions", json={"login": username, "password": PASSWORD})
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["mfa_required"] is True and body["expires_in"] > 0, body
    assert "access_token" not in body and "refresh_token" not in body
    assert session_cookies(r) == [], "no session cookies before the second factor"
    return body["challenge"]


async def _answer(client, challenge: str, code: str) -> httpx.Response:  # noqa: ANN001
    r = await client.post(f"{API}/sessions/mfa", json={"challenge": challenge, "code": code})
    client.cookies.clear()
    return r


async def test_totp_enrolment_returns_an_otpauth_uri_and_an_svg_qr_code(app, client):
    user = await new_account(client, app, "quinn")
    r = await client.post(f"{API}/me/mfa/totp", headers=user.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    uri = urlsplit(body["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert "quinn" in unquote(uri.path)
    query = parse_qs(uri.query)
    assert query["secret"] == [body["secret"]] and query["issuer"] == ["Summit Photos"]
    assert len(pyotp.TOTP(body["secret"]).now()) == 6
    svg = body["qr_svg"]
    assert svg.lstrip().startswith("<svg") and svg.rstrip().endswith("</svg>") and "xmlns" in svg
    # not on until a code is verified: signing in needs no second factor yet
    assert (await client.post(f"{API}/sessions", json={"login": "quinn", "password": PASSWORD})).status_code == 201
    client.cookies.clear()
    assert_error(await client.post(f"{API}/me/mfa/totp", json={}), 401)


async def test_totp_sign_in_with_a_code_once_and_recovery_codes_once(app, client):
    user = await new_account(client, app, "rosa")
    r = await client.post(f"{API}/me/mfa/totp", headers=user.auth)
    totp = pyotp.TOTP(r.json()["secret"])
    error = assert_error(await client.post(f"{API}/me/mfa/totp/verify", headers=user.auth, json={"code": _not_a_current_code(totp)}), 422, "code")
    assert error["field"] == "code"
    r = await client.post(f"{API}/me/mfa/totp/verify", headers=user.auth, json={"code": totp.now()})
    assert r.status_code == 200, r.text
    assert r.json()["mfa_enabled"] is True
    recovery = r.json()["recovery_codes"]
    assert len(recovery) == len(set(recovery)) == 10
    assert_error(await client.post(f"{API}/me/mfa/totp", headers=user.auth), 409, "already")

    challenge = await _challenge(client, "rosa")
    assert_error(await client.get(f"{API}/me", headers=bearer(challenge)), 401)  # a challenge is no access token
    next_code = totp.at(time.time() + 30)  # the next step: later than the one used to verify
    r = await _answer(client, challenge, next_code)
    assert r.status_code == 201, r.text
    _session_shape(r.json())
    assert r.json()["user"]["mfa_enabled"] is True
    assert (await _me(client, r.json()["access_token"])).status_code == 200

    # the same code again, with a fresh challenge: refused (each code works once), and so is an older one
    challenge = await _challenge(client, "rosa")
    assert_error(await _answer(client, challenge, next_code), 401, "already used")
    assert_error(await _answer(client, challenge, totp.now()), 401)

    # a recovery code works, once
    r = await _answer(client, challenge, recovery[0])
    assert r.status_code == 201, r.text
    challenge = await _challenge(client, "rosa")
    assert_error(await _answer(client, challenge, recovery[0]), 401)
    assert (await _answer(client, challenge, recovery[1].upper())).status_code == 201


async def test_mfa_challenges_must_be_the_pools(app, client, tmp_path):
    user = await new_account(client, app, "sara")
    totp, _ = await _enable_totp(client, user)
    challenge = await _challenge(client, "sara")
    header, claims = jwt_parts(challenge)
    assert claims["token_use"] == "mfa_challenge"
    tokens = app.state.identity.tokens
    # an access token is not a challenge, nor is a challenge signed by another key
    assert_error(await _answer(client, user.token, totp.at(time.time() + 30)), 401, "sign in again")
    stranger = TokenIssuer(KeySet(tmp_path / "foreign"), issuer=tokens.issuer, audience=tokens.audience)
    forged = stranger._sign({**claims, "exp": int(time.time()) + 300})
    assert_error(await _answer(client, forged, totp.at(time.time() + 30)), 401, "sign in again")
    tampered = ".".join([challenge.split(".")[0], b64(orjson.dumps({**claims, "sub": "1"})), challenge.split(".")[2]])
    assert_error(await _answer(client, tampered, totp.at(time.time() + 30)), 401)


# ---- lock-outs --------------------------------------------------------------------------------
async def test_five_wrong_passwords_lock_the_account_with_retry_after(app, client, make_user):
    user = await make_user()
    bystander = await make_user()
    wrong = {"login": user.username, "password": "wrong password"}
    for _ in range(5):
        assert_error(await client.post(f"{API}/sessions", json=wrong), 401)
    r = await client.post(f"{API}/sessions", json={"login": user.username, "password": user.password})
    error = assert_error(r, 429, "try again in")
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 2, r.headers
    assert error["message"].endswith(("second", "seconds"))
    # by email too: it is the same account
    assert_error(await client.post(f"{API}/sessions", json={"login": user.email, "password": user.password}), 429)
    # other accounts are not locked
    await sign_in(client, bystander.username, bystander.password)

    await asyncio.sleep(wait + 0.2)
    assert_error(await client.post(f"{API}/sessions", json=wrong), 401)
    r = await client.post(f"{API}/sessions", json=wrong)
    assert_error(r, 429)
    assert int(r.headers["retry-after"]) == 2  # 2^(n-5) seconds after n failures in a row
    await asyncio.sleep(2.2)
    await sign_in(client, user.username, user.password)  # a success resets the count
    assert_error(await client.post(f"{API}/sessions", json=wrong), 401)


async def test_many_failures_from_one_address_lock_that_address_only(app, make_user):
    victim = await make_user()

    def client_from(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://testserver")

    async with client_from("203.0.113.7") as attacker, client_from("198.51.100.9") as elsewhere:
        for n in range(20):  # credential stuffing: one try per account name
            assert_error(await attacker.post(f"{API}/sessions", json={"login": f"stuffed{n}", "password": "guess 123456"}), 401)
        r = await attacker.post(f"{API}/sessions", json={"login": victim.username, "password": victim.password})
        assert_error(r, 429, "try again")
        assert int(r.headers["retry-after"]) >= 1
        r = await elsewhere.post(f"{API}/sessions", json={"login": victim.username, "password": victim.password})
        assert r.status_code == 201, r.text


async def test_five_wrong_mfa_codes_lock_the_second_factor(app, client):
    user = await new_account(client, app, "tess")
    totp, _ = await _enable_totp(client, user)
    challenge = await _challenge(client, "tess")
    for _ in range(5):
        assert_error(await _answer(client, challenge, _not_a_current_code(totp)), 401, "wrong")
    r = await _answer(client, challenge, totp.at(time.time() + 30))
    assert_error(r, 429, "try again")
    assert int(r.headers["retry-after"]) >= 1


# ---- discovery and JWKS -----------------------------------------------------------------------
async def test_discovery_document_and_jwks(app, client):
    r = await client.get("/.well-known/openid-configuration")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    issuer = app.state.ctx.platform.blueprint.issuer
    assert doc["issuer"] == issuer == app.state.identity.config.issuer
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{issuer}/api/v1/sessions"
    assert "public" in doc["subject_types_supported"]
    r = await client.get(urlsplit(doc["jwks_uri"]).path)
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    keys = r.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["use"] == "sig" and key["kid"]
        assert key["alg"] in doc["id_token_signing_alg_values_supported"]
        assert "d" not in key, "the JWKS must hold public keys only"


async def test_tokens_verify_with_joserfc_and_the_jwks_alone(app, client):
    user = await new_account(client, app, "uma")
    doc = (await client.get("/.well-known/openid-configuration")).json()
    jwks = (await client.get(urlsplit(doc["jwks_uri"]).path)).json()
    key_set = JoseKeySet.import_key_set(jwks)  # what a third party has: no call back to summit

    header, _ = jwt_parts(user.token)
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    access = jwt.decode(user.token, key_set, algorithms=[header["alg"]])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": doc["issuer"]},
        aud={"essential": True, "value": "summit-photos"},
        sub={"essential": True, "value": user.id},
        token_use={"essential": True, "value": "access"},
        exp={"essential": True},
    ).validate(access.claims)
    assert access.claims["username"] == "uma"
    assert access.claims["exp"] - access.claims["iat"] == 300  # access tokens live 5 minutes

    id_token = jwt.decode(user.session["id_token"], key_set, algorithms=[header["alg"]])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": doc["issuer"]},
        sub={"essential": True, "value": user.id},
        token_use={"essential": True, "value": "id"},
    ).validate(id_token.claims)
    assert id_token.claims["email"] == user.email and id_token.claims["email_verified"] is True
    assert id_token.claims["preferred_username"] == "uma"


async def test_key_rotation_signs_out_nobody(app, client):
    user = await new_account(client, app, "vera")
    old_kid = jwt_parts(user.token)[0]["kid"]
    new_kid = await asyncio.to_thread(app.state.identity.keys.rotate)
    assert new_kid != old_kid
    assert (await _me(client, user.token)).status_code == 200
    session = await sign_in(client, "vera")
    assert jwt_parts(session["access_token"])[0]["kid"] == new_kid
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    assert (await _refresh(client, user.session["refresh_token"])).status_code == 201


# ---- forged and misused tokens ----------------------------------------------------------------
def _compact(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}.{b64(signature)}"


def _hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def test_forged_and_misused_tokens_are_401(app, client, tmp_path):
    user = await new_account(client, app, "wren")
    header, claims = jwt_parts(user.token)
    tokens = app.state.identity.tokens
    public = next(k for k in (await client.get("/.well-known/jwks.json")).json()["keys"] if k["kid"] == header["kid"])
    foreign = KeySet(tmp_path / "foreign")
    stranger = TokenIssuer(foreign, issuer=tokens.issuer, audience=tokens.audience)
    foreign_public = foreign.jwks()["keys"][0]
    now = time.time()

    forged = {
        "alg none": (_compact({**header, "alg": "none"}, claims), "algorithm"),
        "alg none, no kid": (_compact({"alg": "none", "typ": "JWT"}, {**claims, "sub": "1"}), "algorithm"),
        "HS256 keyed with the public key (x)": (_hs256({**header, "alg": "HS256"}, claims, unb64(public["x"])), "algorithm"),
        "HS256 keyed with the public JWK": (_hs256({**header, "alg": "HS256"}, claims, orjson.dumps(public)), "algorithm"),
        "EdDSA spelled the old way": (_compact({**header, "alg": "EdDSA"}, claims, b"x" * 64), "algorithm"),
        "another key, its own kid": (stranger.access_token(user.id, username="wren"), "unknown key"),
        "another key, our kid": (jws.serialize_compact(header, orjson.dumps(claims), foreign.signing_key, algorithms=[header["alg"]]), "signature"),
        "embedded jwk": (_compact({**header, "jwk": foreign_public}, claims, b"x" * 64), "header"),
        "foreign jku": (_compact({**header, "jku": "https://evil.example/jwks.json"}, claims, b"x" * 64), "header"),
        "tampered payload": (".".join([user.token.split(".")[0], b64(orjson.dumps({**claims, "username": "admin"})), user.token.split(".")[2]]), "invalid token"),
        "expired": (tokens.access_token(user.id, username="wren", now=now - tokens.access_ttl - LEEWAY_SECONDS - 5), "expired"),
        "issued in the future": (tokens.access_token(user.id, username="wren", now=now + 600), "not valid yet"),
        "another issuer": (TokenIssuer(app.state.identity.keys, issuer="https://evil.example", audience=tokens.audience).access_token(user.id, username="wren"), "issued by someone else"),
        "another audience": (TokenIssuer(app.state.identity.keys, issuer=tokens.issuer, audience="another-app").access_token(user.id, username="wren"), "audience"),
        "the id token": (user.session["id_token"], "'id' token"),
        "the refresh token": (user.session["refresh_token"], "malformed"),
        "a JWS JSON serialization": (orjson.dumps({"payload": b64(orjson.dumps(claims)), "signatures": []}).decode(), "malformed"),
        "four parts": (user.token + ".x", "malformed"),
    }
    problems = []
    for name, (token, word) in forged.items():
        r = await client.get(f"{API}/me", headers=bearer(token))
        try:
            assert_error(r, 401, word, "sign in again")
        except AssertionError as error:
            problems.append(f"{name}: {str(error).splitlines()[0][:300]}")
    assert not problems, "\n".join(problems)
    # the genuine token still works
    assert (await _me(client, user.token)).status_code == 200


async def test_an_access_token_of_a_deleted_account_is_401(app, client):
    user = await new_account(client, app, "xena")
    assert (await client.delete(f"{API}/me", headers=user.auth)).status_code == 204
    client.cookies.clear()
    assert_error(await _me(client, user.token), 401, "no longer exists")
    assert_error(await _refresh(client, user.session["refresh_token"]), 401)

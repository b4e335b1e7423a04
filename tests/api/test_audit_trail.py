"""API: the audit trail (summit.security.audit): every state-changing API call (``api:<Handler>``)
and every authentication event (``auth:*``) is recorded by user id, with the result and the
response's request id; records outlive the account; the sealed chain verifies.

Each test runs its own app and closes it (its lifespan seals the audit files) before reading."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pyotp
from api_helpers import API, PASSWORD, bearer, small_jpeg
from asgi_lifespan import LifespanManager

from summit.security.audit import AuditEvent, Query, search, verify
from summit.testing.mail import mailed_code

UA = {"User-Agent": "audit-test/1.0"}


@asynccontextmanager
async def running(blueprint) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:  # noqa: ANN001
    from photos.app import create_app

    app = create_app(blueprint)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=UA) as client:
            yield app, client
    # leaving: the lifespan closed the audit log, so its last file is sealed


def _by_request(records: list[AuditEvent], response: httpx.Response) -> dict[str, AuditEvent]:
    rid = response.headers["x-request-id"]
    found = {}
    for record in records:
        if record.request_id == rid:
            assert record.action not in found, f"two {record.action} records for one request"
            found[record.action] = record
    return found


def _check(record: AuditEvent | None, *, result: str, user_id: str | None, status: int | None = None, reason: str | None = None) -> None:
    assert record is not None
    assert record.result == result, record
    assert record.user_id == user_id, record
    if status is not None:
        assert record.status == status, record
    if reason is not None:
        assert record.reason == reason, record
    assert record.source_ip == "127.0.0.1" and record.user_agent == UA["User-Agent"], record
    assert record.time.endswith("Z") and record.event_id, record


def _assert_verifies(data_dir: Path) -> None:
    report = verify(data_dir)
    assert report.ok, report.as_dict()
    assert not report.warnings, report.as_dict()
    assert report.chains and all(chain.state == "closed" for chain in report.chains), report.as_dict()


def _no_personal_data(data_dir: Path, *secrets: str) -> None:
    files = [p for p in (data_dir / "audit").rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_bytes().lower()
        for secret in secrets:
            assert secret.lower().encode() not in text, f"{secret!r} is in {path}"


async def test_a_users_life_is_in_the_audit_trail_by_id_and_outlives_the_account(blueprint):  # noqa: ANN001
    username, email = "zed_audited", "zed.audited@example.com"
    async with running(blueprint) as (app, client):
        r_signup = await client.post(f"{API}/accounts", json={"username": username, "email": email, "password": PASSWORD})
        assert r_signup.status_code == 201
        user_id = r_signup.json()["id"]
        code = await mailed_code(app.state.ctx.platform.mail, email, "confirmation")
        r_confirm = await client.post(f"{API}/accounts/confirm", json={"login": email, "code": code})
        assert r_confirm.status_code == 200
        r_fail = await client.post(f"{API}/sessions", json={"login": email, "password": "wrong password"})
        assert r_fail.status_code == 401
        r_ok = await client.post(f"{API}/sessions", json={"login": username, "password": PASSWORD})
        assert r_ok.status_code == 201
        client.cookies.clear()
        auth = bearer(r_ok.json()["access_token"])
        assert (await client.get(f"{API}/me", headers=auth)).status_code == 200  # a read: not audited

        r_post = await client.post(f"{API}/posts", headers=auth, files={"photo": ("a.jpg", small_jpeg(), "image/jpeg")})
        assert r_post.status_code == 201
        post_id = r_post.json()["id"]
        r_like = await client.put(f"{API}/posts/{post_id}/like", headers=auth)
        r_comment = await client.post(f"{API}/posts/{post_id}/comments", headers=auth, json={"body": f"mail me at {email}"})
        assert r_like.status_code == 200 and r_comment.status_code == 201
        r_denied = await client.delete(f"{API}/posts/{post_id}")  # no token: a failure, recorded too
        assert r_denied.status_code == 401
        r_delete_post = await client.delete(f"{API}/posts/{post_id}", headers=auth)
        assert r_delete_post.status_code == 204
        r_delete_me = await client.delete(f"{API}/me", headers=auth)
        assert r_delete_me.status_code == 204
        await app.state.worker.drain(30)
    data_dir = blueprint.data_dir

    _assert_verifies(data_dir)
    _no_personal_data(data_dir, email, username, PASSWORD)
    mine = search(data_dir, Query(user_id=user_id))  # the account is gone; its records are not
    everything = search(data_dir, Query())
    assert mine and all(r.user_id == user_id for r in mine)
    assert [r.time for r in everything] == sorted(r.time for r in everything)

    records = _by_request(everything, r_signup)
    _check(records.get("auth:SignUp"), result="success", user_id=user_id)
    _check(records.get("api:SignUp"), result="success", user_id=None, status=201)
    assert records["api:SignUp"].resource == "/api/v1/accounts"

    records = _by_request(everything, r_confirm)
    _check(records.get("auth:ConfirmSignUp"), result="success", user_id=user_id)
    _check(records.get("api:Confirm"), result="success", user_id=None, status=200)

    records = _by_request(everything, r_fail)
    _check(records.get("auth:SignIn"), result="failure", user_id=user_id, reason="bad_credentials")
    _check(records.get("api:SignIn"), result="failure", user_id=None, status=401)

    records = _by_request(everything, r_ok)
    _check(records.get("auth:SignIn"), result="success", user_id=user_id)
    _check(records.get("api:SignIn"), result="success", user_id=None, status=201)

    for response, action, status, resource in (
        (r_post, "api:CreatePost", 201, "/api/v1/posts"),
        (r_like, "api:Like", 200, f"/api/v1/posts/{post_id}/like"),
        (r_comment, "api:AddComment", 201, f"/api/v1/posts/{post_id}/comments"),
        (r_delete_post, "api:DeletePost", 204, f"/api/v1/posts/{post_id}"),
        (r_delete_me, "api:DeleteMe", 204, "/api/v1/me"),
    ):
        records = _by_request(everything, response)
        _check(records.get(action), result="success", user_id=user_id, status=status)
        assert records[action].resource == resource and records[action].details == {"method": response.request.method}
    _check(_by_request(everything, r_delete_me).get("auth:DeleteUser"), result="success", user_id=user_id)
    _check(_by_request(everything, r_denied).get("api:DeletePost"), result="failure", user_id=None, status=401)

    assert not search(data_dir, Query(action="api:Me")), "reads are not audited"
    assert {r.action for r in search(data_dir, Query(user_id=user_id, action="api:*"))} == {
        "api:CreatePost", "api:Like", "api:AddComment", "api:DeletePost", "api:DeleteMe",
    }
    failures = search(data_dir, Query(user_id=user_id, result="failure"))
    assert [r.action for r in failures] == ["auth:SignIn"]


async def test_authentication_events_are_recorded(blueprint):  # noqa: ANN001
    username, email = "yan_audited", "yan.audited@example.com"
    async with running(blueprint) as (app, client):
        assert (await client.post(f"{API}/accounts", json={"username": username, "email": email, "password": PASSWORD})).status_code == 201
        code = await mailed_code(app.state.ctx.platform.mail, email, "confirmation")
        user_id = (await client.post(f"{API}/accounts/confirm", json={"login": username, "code": code})).json()["id"]
        session = (await client.post(f"{API}/sessions", json={"login": username, "password": PASSWORD})).json()
        client.cookies.clear()
        auth = bearer(session["access_token"])

        r_refresh = await client.post(f"{API}/sessions/refresh", json={"refresh_token": session["refresh_token"]})
        r_reuse = await client.post(f"{API}/sessions/refresh", json={"refresh_token": session["refresh_token"]})
        assert (r_refresh.status_code, r_reuse.status_code) == (201, 401)
        client.cookies.clear()
        # the replay signed out every session of that sign-in, its access tokens too: sign in again
        assert (await client.get(f"{API}/me", headers=auth)).status_code == 401
        session = (await client.post(f"{API}/sessions", json={"login": username, "password": PASSWORD})).json()
        client.cookies.clear()
        auth = bearer(session["access_token"])

        url = f"{API}/me/password"
        r_bad_change = await client.post(url, headers=auth, json={"current_password": "wrong password", "new_password": "new horse 22"})
        r_change = await client.post(url, headers=auth, json={"current_password": PASSWORD, "new_password": "new horse 22"})
        assert (r_bad_change.status_code, r_change.status_code) == (401, 204)

        totp = pyotp.TOTP((await client.post(f"{API}/me/mfa/totp", headers=auth)).json()["secret"])
        r_enable = await client.post(f"{API}/me/mfa/totp/verify", headers=auth, json={"code": totp.now()})
        assert r_enable.status_code == 200
        challenge = (await client.post(f"{API}/sessions", json={"login": username, "password": "new horse 22"})).json()["challenge"]
        r_mfa_fail = await client.post(f"{API}/sessions/mfa", json={"challenge": challenge, "code": "12-34"})
        r_mfa = await client.post(f"{API}/sessions/mfa", json={"challenge": challenge, "code": totp.at(time.time() + 30)})
        assert (r_mfa_fail.status_code, r_mfa.status_code) == (401, 201)
        client.cookies.clear()
        r_out = await client.delete(f"{API}/sessions", headers=bearer(r_mfa.json()["access_token"]))
        r_all = await client.delete(f"{API}/sessions/all", headers=auth)  # (r_refresh's sign-in was signed out by the replay)
        assert (r_out.status_code, r_all.status_code) == (204, 204)
        r_forgot = await client.post(f"{API}/accounts/password-reset", json={"login": username})
        reset = await mailed_code(app.state.ctx.platform.mail, email, "reset")
        r_reset = await client.post(f"{API}/accounts/password-reset/confirm", json={"login": username, "code": reset, "new_password": "reset horse 3"})
        assert (r_forgot.status_code, r_reset.status_code) == (202, 204)
    data_dir = blueprint.data_dir
    _assert_verifies(data_dir)
    _no_personal_data(data_dir, email, username)

    everything = search(data_dir, Query())
    for response, action, result in (
        (r_refresh, "auth:Refresh", "success"),
        (r_reuse, "auth:RefreshReuse", "failure"),
        (r_bad_change, "auth:ChangePassword", "failure"),
        (r_change, "auth:ChangePassword", "success"),
        (r_enable, "auth:EnableMfa", "success"),
        (r_mfa_fail, "auth:Mfa", "failure"),
        (r_mfa, "auth:Mfa", "success"),
        (r_out, "auth:SignOut", "success"),
        (r_all, "auth:GlobalSignOut", "success"),
        (r_forgot, "auth:ForgotPassword", "success"),
        (r_reset, "auth:ConfirmForgotPassword", "success"),
    ):
        records = _by_request(everything, response)
        assert action in records, (action, sorted(records))
        _check(records[action], result=result, user_id=user_id)
        api = [r for a, r in records.items() if a.startswith("api:")]
        assert len(api) == 1 and api[0].status == response.status_code, records


async def test_a_lockout_is_recorded_against_the_locked_account(blueprint):  # noqa: ANN001
    """The issue: "every authentication event (success, failure, lockout, ...)" is recorded, by
    who. A refused attempt on a locked account must say which account was locked."""
    username, email = "xia_audited", "xia.audited@example.com"
    async with running(blueprint) as (app, client):
        await client.post(f"{API}/accounts", json={"username": username, "email": email, "password": PASSWORD})
        code = await mailed_code(app.state.ctx.platform.mail, email, "confirmation")
        user_id = (await client.post(f"{API}/accounts/confirm", json={"login": username, "code": code})).json()["id"]
        for _ in range(5):
            assert (await client.post(f"{API}/sessions", json={"login": username, "password": "wrong password"})).status_code == 401
        r_locked = await client.post(f"{API}/sessions", json={"login": username, "password": PASSWORD})
        assert r_locked.status_code == 429
    data_dir = blueprint.data_dir
    _assert_verifies(data_dir)
    records = _by_request(search(data_dir, Query()), r_locked)
    _check(records.get("api:SignIn"), result="failure", user_id=None, status=429)
    auth = [r for a, r in records.items() if a.startswith("auth:")]
    assert auth, f"no auth:* record of the locked-out attempt, only {sorted(records)}"
    assert auth[0].user_id == user_id and auth[0].result == "failure" and auth[0].reason, auth[0]

"""``Security.open``: the user pool, the IAM authorizer and the audit log of one process, built from
the blueprint on a real platform (SQLite, the in-process cache, the outbox), with only the app's
own parts handed in: its policies, its reserved names, its hook on a confirmed account."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from summit.blueprint import load_blueprint
from summit.errors import Forbidden, Invalid
from summit.platform import Platform
from summit.security import Access, Principal, Security, UserPool
from summit.security.audit import Query, search, verify
from summit.security.identity import KeySet

BASELINE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "notes:Edit", "Resource": "arn:summit:notes:::note/*",
     "Condition": {"StringEquals": {"notes:Owner": "${aws:userid}"}}},
]}  # fmt: skip
EDITORS = ("NotesEditor", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "notes:*", "Resource": "*"}]})
AUTH = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "access_token_ttl_seconds": 120,
        "refresh_token_ttl_seconds": 3600, "lockout_account_threshold": 3, "issuer": "https://notes.example/"}  # fmt: skip


@pytest.fixture
async def platform(tmp_path: Path, migrated: Path):  # noqa: ANN201
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(migrated, data / "app.db")  # the pool's tables, as summit.migrate.upgrade_all makes them
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(data), "auth": AUTH, "ports": {"objects": "memory://"}})
    async with Platform.from_blueprint(blueprint) as opened:
        yield opened


async def open_security(platform: Platform, **given: object) -> Security:
    return await Security.open(platform, **{"baseline": [BASELINE], "group_policies": {"editors": EDITORS}, **given})


def principal_of(user_id: int, username: str) -> Principal:
    return Principal(user_id=user_id, username=username, token_id="t", issued_at=0, auth_time=0)


async def test_the_services_are_built_from_the_blueprint(platform: Platform) -> None:
    security = await open_security(platform)
    try:
        pool = security.identity
        assert isinstance(pool, UserPool) and isinstance(security.access, Access)
        assert pool.db is platform.db and pool.cache is platform.cache and pool.mailer is platform.mail
        assert (pool.config.issuer, pool.config.access_ttl, pool.config.refresh_ttl) == ("https://notes.example", 120, 3600)
        assert pool.limits.account == 3 and pool.limits.address == 20
        assert "m=1024,t=1," in pool.hasher.hash("correct horse battery")
        assert KeySet(platform.blueprint.data_dir / "keys" / "identity").active_kid == pool.keys.active_kid
    finally:
        await security.close()


async def test_the_apps_groups_get_their_policies_on_every_start(platform: Platform) -> None:
    await (await open_security(platform)).close()
    security = await open_security(platform)  # a restart finds the group made: no error, no second attachment
    try:
        access = security.access
        assert await access.groups() == [{"name": "editors", "members": [], "policies": ["NotesEditor"]}]
        user = await security.identity.sign_up("nora", "nora@example.com", "correct horse battery")
        nora, mine = principal_of(user.id, "nora"), {"notes:Owner": str(user.id)}
        await access.authorize(nora, "notes:Edit", "arn:summit:notes:::note/1", mine)  # the baseline
        with pytest.raises(Forbidden):
            await access.authorize(nora, "notes:Delete", "arn:summit:notes:::note/1", mine)
        await access.add_member("editors", user.id)
        assert await access.allowed(nora, "notes:Delete", "arn:summit:notes:::note/1")
    finally:
        await security.close()


async def test_reserved_names_and_the_confirmation_hook_are_the_apps(platform: Platform) -> None:
    made: list[tuple[int, int]] = []

    async def make_profile(conn, user) -> None:  # noqa: ANN001
        made.append((user.id, (await conn.execute(text("SELECT count(*) FROM identity_users WHERE confirmed"))).scalar()))

    security = await open_security(platform, reserved_usernames={"admin", "settings"}, on_confirmed=[make_profile])
    try:
        with pytest.raises(Invalid, match="username 'admin' is reserved"):
            await security.identity.sign_up("Admin", "a@example.com", "correct horse battery")
        user = await security.identity.sign_up("olga", "olga@example.com", "correct horse battery")
        mail = (await platform.mail.list(to="olga@example.com"))[0]
        await security.identity.confirm("olga", re.search(r"\b(\d{6})\b", mail.subject).group(1))
        assert made == [(user.id, 1)]  # in the confirming transaction: the row is already confirmed
    finally:
        await security.close()


async def test_pool_events_go_to_the_audit_log_and_close_seals_it(platform: Platform) -> None:
    security = await open_security(platform)
    app = Starlette()
    security.install(app)
    assert (app.state.security, app.state.identity, app.state.access, app.state.audit) == (
        security, security.identity, security.access, security.audit)  # fmt: skip
    await security.identity.audit("auth:SignIn", user_id=7, result="mfa_required")  # a step, not an outcome
    await security.identity.audit("auth:SignIn", user_id=7, result="failure", reason="bad_credentials")
    await security.close()
    data = platform.blueprint.data_dir
    assert [(e.result, e.reason) for e in search(data, Query(action="auth:SignIn", user_id="7"))] == [
        ("success", "mfa_required"), ("failure", "bad_credentials")]  # fmt: skip
    report = verify(data)
    assert report.ok and [c.state for c in report.chains] == ["closed"]


async def test_a_start_that_fails_seals_the_chain_it_began(platform: Platform) -> None:
    broken = ("Broken", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "notes:*"}]})  # no Resource
    with pytest.raises(Invalid, match="invalid policy"):
        await open_security(platform, group_policies={"editors": broken})
    assert [c.state for c in verify(platform.blueprint.data_dir).chains] == ["closed"]

"""The guard (summit.security.guard) against the real app: each scripted attack, from client
addresses of its own, raises exactly its finding, with the audit events or access-log lines that
caused it as evidence; a script of normal use raises none.

Requests come through the in-process client; ``httpx.ASGITransport(client=(address, port))`` gives
each script the source address a server would see. The app's JSON access lines go where a stage
sends its stderr (``<data_dir>/logs/app.log``, as the supervisor does), which the guard reads."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pyotp
import pytest
from api_helpers import API, PASSWORD, bearer, new_account, sign_up, small_jpeg

from summit.blueprint import Blueprint
from summit.security.audit import Query, search
from summit.security.guard import Detector, Finding
from summit.web import logs

BRUTE_FORCE = "UnauthorizedAccess:User/BruteForce"
STUFFING = "CredentialAccess:User/CredentialStuffing"
REFRESH_REUSE = "CredentialAccess:User/RefreshTokenReuse"
SCANNING = "Recon:Network/Scanning"
ADMIN = "PrivilegeEscalation:User/UnusualAdminActivity"
NEW_SOURCE = "UnauthorizedAccess:User/NewSourceWithoutMfa"
LEARNING_SECONDS = 3  # the guard learns the usual admins from the first 3 s of history (default: 7 days)


@pytest.fixture
def blueprint(blueprint: Blueprint) -> Blueprint:
    """The suite's blueprint, with a learning period for admins that a test can wait out; every
    other threshold and window of [guard] is the default."""
    guard = blueprint.guard.model_copy(update={"admin_learning_seconds": LEARNING_SECONDS})
    return blueprint.model_copy(update={"guard": guard})


@pytest.fixture
def access_log(app, blueprint: Blueprint) -> Iterator[Path]:  # noqa: ANN001
    """The app's stream of log lines (its JSON access lines among them) goes to
    ``<data_dir>/logs/app.log`` for the test, as a stage's supervisor sends the app's stderr there."""
    path = blueprint.data_dir / "logs" / "app.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert logs._access_lines is not None, "the app configures its logging when it is created"
    handler, level = logs._access_lines.handler, logs._access_logger.level
    logs._access_logger.setLevel(logging.INFO)
    with path.open("a") as stream:
        previous = handler.setStream(stream)
        try:
            yield path
        finally:
            logs.flush_access_log()
            handler.setStream(previous)
            logs._access_logger.setLevel(level)


@asynccontextmanager
async def client_from(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    """A client whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def evaluate(blueprint: Blueprint, reads: list | None = None) -> list[Finding]:
    """``summit guard findings``: read what the logs gained, return every active finding (and
    append the run's report to ``reads``)."""
    logs.flush_access_log()
    detector = Detector.for_blueprint(blueprint)
    report = detector.run()
    if reads is not None:
        reads.append(report)
    return detector.findings()


def subjects(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    return [(f.type, f.account, f.source) for f in findings]


def audit_ids(blueprint: Blueprint, **query: str) -> set[str]:
    return {e.event_id for e in search(blueprint.data_dir, Query(**query))}


async def sign_in_attempt(client: httpx.AsyncClient, login: str, password: str) -> int:
    r = await client.post(f"{API}/sessions", json={"login": login, "password": password})
    client.cookies.clear()
    return r.status_code


# ---- the attacks --------------------------------------------------------------------------------


async def test_brute_force_on_one_account_from_several_sources(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    victim = await new_account(client, app, "victim")
    statuses = []
    for n in range(10):  # 10 wrong passwords, spread over three addresses (the pool locks the account after 5)
        async with client_from(app, f"203.0.113.{10 + n % 3}") as attacker:
            statuses.append(await sign_in_attempt(attacker, "victim", f"guess number {n}"))
    assert set(statuses) <= {401, 429} and statuses[:5] == [401] * 5, statuses

    findings = evaluate(blueprint)
    assert subjects(findings) == [(BRUTE_FORCE, victim.id, None)]
    [finding] = findings
    assert finding.count == 10 and finding.severity_label == "medium"
    failures = audit_ids(blueprint, action="auth:SignIn", user_id=victim.id, result="failure")
    assert len(failures) == 10 and {e["event_id"] for e in finding.evidence} <= failures
    assert len(finding.evidence) == blueprint.guard.evidence_limit
    assert sorted(finding.details["sources"]) == ["203.0.113.10", "203.0.113.11", "203.0.113.12"]


async def test_credential_stuffing_from_one_source(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    accounts = [await new_account(client, app, f"stuffed{n}") for n in range(3)]
    logins = [a.username for a in accounts] + [f"nobody{n}@example.com" for n in range(7)]
    async with client_from(app, "198.51.100.23") as attacker:
        statuses = [await sign_in_attempt(attacker, login, "Password123!") for login in logins]
    assert statuses == [401] * 10

    findings = evaluate(blueprint)
    assert subjects(findings) == [(STUFFING, None, "198.51.100.23")]
    [finding] = findings
    assert finding.count == 10 and finding.details["accounts"] == 10 and finding.severity_label == "medium"
    assert sorted(finding.details["listed_accounts"]) == sorted(a.id for a in accounts)
    assert {e["event_id"] for e in finding.evidence} <= audit_ids(blueprint, action="auth:SignIn", result="failure")


async def test_refresh_token_reuse_is_a_finding_per_replay(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    user = await new_account(client, app, "refresher")
    second_device = (await client.post(f"{API}/sessions", json={"login": "refresher", "password": PASSWORD})).json()
    client.cookies.clear()
    for session in (user.session, second_device):
        r = await client.post(f"{API}/sessions/refresh", json={"refresh_token": session["refresh_token"]})
        assert r.status_code == 201, r.text
    async with client_from(app, "192.0.2.66") as thief:  # replays both spent tokens
        for session in (user.session, second_device):
            r = await thief.post(f"{API}/sessions/refresh", json={"refresh_token": session["refresh_token"]})
            assert r.status_code == 401 and "already used" in r.text

    findings = evaluate(blueprint)
    assert subjects(findings) == [(REFRESH_REUSE, user.id, "192.0.2.66")] * 2
    reuses = audit_ids(blueprint, action="auth:RefreshReuse")
    assert len(reuses) == 2 and {f.evidence[0]["event_id"] for f in findings} == reuses
    assert all(f.count == 1 and f.severity_label == "high" for f in findings)


async def test_a_burst_of_404s_from_one_source_is_scanning(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    probes = ["/.env", "/wp-login.php", "/admin.php", "/.git/config", "/phpmyadmin/", "/server-status"]
    async with client_from(app, "203.0.113.99") as scanner:
        for n in range(30):
            r = await scanner.get(f"{probes[n % len(probes)]}?n={n}")
            assert r.status_code == 404

    findings = evaluate(blueprint)
    assert subjects(findings) == [(SCANNING, None, "203.0.113.99")]
    [finding] = findings
    assert finding.count == 30 and finding.severity_label == "low"
    lines = access_log.read_text().splitlines()
    for evidence in finding.evidence:  # each names its line of the access log
        assert evidence["log"] == "logs/app.log" and evidence["status"] == 404
        line = lines[evidence["line"] - 1]
        assert '"client":"203.0.113.99"' in line and evidence["request"].split(" ")[1] in line


async def learned_admin(app, client, blueprint: Blueprint):  # noqa: ANN001, ANN201
    """An admin who starts the history doing admin work, learned as one once the learning period is over."""
    admin = await new_account(client, app, "usual_admin")
    await app.state.access.add_member("admins", int(admin.id))  # `summit identity add-to-group usual_admin admins`
    r = await client.put(f"{API}/admin/groups/editors", headers=admin.auth)
    assert r.status_code == 201, r.text
    [start] = search(blueprint.data_dir, Query(), limit=1)
    [first] = search(blueprint.data_dir, Query(user_id=admin.id, resource="/api/v1/admin/*"), limit=1)
    took = (time.time() * 1000 - _ms(start.time)) / 1000
    assert _ms(first.time) - _ms(start.time) < LEARNING_SECONDS * 1000, "the admin's first action came after the learning period"
    await asyncio.sleep(max(0.0, LEARNING_SECONDS - took) + 0.1)
    return admin


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp() * 1000)


async def test_first_admin_action_of_a_new_principal_is_unusual(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    admin = await learned_admin(app, client, blueprint)
    mallory = await new_account(client, app, "mallory")
    # the usual admin does their usual thing: puts mallory in a group ...
    assert (await client.put(f"{API}/admin/groups/admins/members/mallory", headers=admin.auth)).status_code == 204
    # ... and mallory, an admin now, starts changing IAM
    for name in ("Everything", "MoreOfIt"):
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        assert (await client.put(f"{API}/admin/policies/{name}", headers=mallory.auth, json=policy)).status_code == 204

    findings = evaluate(blueprint)
    assert subjects(findings) == [(ADMIN, mallory.id, None)]
    [finding] = findings
    assert finding.details["reasons"] == ["first_admin_action"] and finding.severity_label == "medium"
    assert finding.count == 2  # her first action, and the next one in the window
    assert [e["event_id"] for e in finding.evidence] == [e.event_id for e in search(blueprint.data_dir, Query(user_id=mallory.id, resource="/api/v1/admin/*"))]


async def test_a_burst_of_admin_actions_is_unusual(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    admin = await learned_admin(app, client, blueprint)
    for n in range(blueprint.guard.admin_burst_actions):
        assert (await client.put(f"{API}/admin/groups/team{n}", headers=admin.auth)).status_code == 201

    findings = evaluate(blueprint)
    assert subjects(findings) == [(ADMIN, admin.id, None)]
    [finding] = findings
    assert finding.details["reasons"] == ["burst"]
    # the window holds the action of the learning period too: 31 admin actions within 10 minutes,
    # the 30th (the threshold) raised it with the 29 before it, the 31st added itself
    assert finding.count == blueprint.guard.admin_burst_actions + 1 and finding.severity_label == "medium"
    assert len(finding.evidence) == blueprint.guard.evidence_limit
    assert finding.evidence[-1]["resource"] == f"/api/v1/admin/groups/team{blueprint.guard.admin_burst_actions - 1}"  # the latest


async def test_a_password_only_sign_in_from_a_new_source(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    plain = await new_account(client, app, "plain")  # signed up and in from 127.0.0.1
    careful = await new_account(client, app, "careful")
    totp = pyotp.TOTP((await client.post(f"{API}/me/mfa/totp", headers=careful.auth)).json()["secret"])
    assert (await client.post(f"{API}/me/mfa/totp/verify", headers=careful.auth, json={"code": totp.now()})).status_code == 200

    async with client_from(app, "203.0.113.200") as elsewhere:
        for _ in range(2):  # twice: the second time, the source is known
            assert await sign_in_attempt(elsewhere, "plain", PASSWORD) == 201
        r = await elsewhere.post(f"{API}/sessions", json={"login": "careful", "password": PASSWORD})
        assert r.status_code == 401 and r.json().get("mfa_required"), r.text
        r = await elsewhere.post(f"{API}/sessions/mfa", json={"challenge": r.json()["challenge"], "code": totp.at(time.time() + 30)})
        assert r.status_code == 201, r.text

    findings = evaluate(blueprint)
    assert subjects(findings) == [(NEW_SOURCE, plain.id, "203.0.113.200")]
    [finding] = findings
    assert finding.count == 1 and finding.severity_label == "low"
    from_there = [e for e in search(blueprint.data_dir, Query(user_id=plain.id, action="auth:SignIn")) if e.source_ip == "203.0.113.200"]
    assert len(from_there) == 2 and [e["event_id"] for e in finding.evidence] == [from_there[0].event_id]


# ---- normal use ---------------------------------------------------------------------------------


async def test_normal_use_raises_no_finding(app, client, blueprint, access_log) -> None:  # noqa: ANN001
    admin = await learned_admin(app, client, blueprint)
    people = []
    for n in range(6):  # each signs up and in from their own address
        async with client_from(app, f"198.51.100.{n + 1}") as own:
            await sign_up(own, app, f"person{n}")
            if n % 2:
                assert await sign_in_attempt(own, f"person{n}", "a typo in it") == 401  # one typo, then the right one
            r = await own.post(f"{API}/sessions", json={"login": f"person{n}", "password": PASSWORD})
            assert r.status_code == 201, r.text
            people.append(r.json())
    reads: list = []
    assert not evaluate(blueprint, reads), "a first evaluation while people sign up"

    for n, session in enumerate(people):
        async with client_from(app, f"198.51.100.{n + 1}") as own:
            auth = bearer(session["access_token"])
            r = await own.post(f"{API}/posts", headers=auth, files={"photo": ("p.jpg", small_jpeg(), "image/jpeg")}, data={"caption": f"hello {n}"})
            assert r.status_code == 201, r.text
            assert (await own.get(f"{API}/feed", headers=auth)).status_code == 200
            assert (await own.get(f"{API}/posts/{n + 1}0000")).status_code == 404  # an old link: a few 404s, spread over people
            r = await own.post(f"{API}/sessions/refresh", json={"refresh_token": session["refresh_token"]})
            assert r.status_code == 201, r.text
            if n == 0:  # person0 turns MFA on, then signs in on the phone: a new address, with MFA
                auth = bearer(r.json()["access_token"])
                totp = pyotp.TOTP((await own.post(f"{API}/me/mfa/totp", headers=auth)).json()["secret"])
                assert (await own.post(f"{API}/me/mfa/totp/verify", headers=auth, json={"code": totp.now()})).status_code == 200
                async with client_from(app, "192.0.2.200") as phone:
                    r = await phone.post(f"{API}/sessions", json={"login": "person0", "password": PASSWORD})
                    r = await phone.post(f"{API}/sessions/mfa", json={"challenge": r.json()["challenge"], "code": totp.at(time.time() + 30)})
                    assert r.status_code == 201, r.text
            if n == 1:  # person1 signs in on a second device, at home
                assert await sign_in_attempt(own, "person1", PASSWORD) == 201
    # the usual admin does their usual thing
    assert (await client.put(f"{API}/admin/groups/moderators/members/person0", headers=admin.auth)).status_code == 204
    assert (await client.get(f"{API}/admin/groups", headers=admin.auth)).status_code == 200
    async with client_from(app, "198.51.100.99") as visitor:  # a visitor follows a few stale links
        for path in ("/favicon.ico", "/robots.txt", "/p/123456789", "/users/nobody-here"):
            assert (await visitor.get(path)).status_code in (200, 404)

    findings = evaluate(blueprint, reads)
    assert findings == [], [f.as_dict() for f in findings]
    # both runs read something of both logs, the second only what came after the first
    assert all(r.audit_records > 0 and r.requests > 0 and r.logs == ["logs/app.log"] for r in reads), reads
    assert sum(r.audit_records for r in reads) == len(search(blueprint.data_dir, Query()))
    again = Detector.for_blueprint(blueprint).run()  # nothing new: a re-run reads nothing
    assert (again.audit_records, again.requests, again.new, again.updated) == (0, 0, [], [])

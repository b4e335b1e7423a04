"""Automatic blocking at stage 1, where the app is the front door: credential stuffing from one
address against the real app raises its finding, and with ``[guard.blocking]`` on, the guard's run
blocks that address; the app then refuses its every request (403, the API's error or the HTML page,
``Retry-After``) while another address signs in as usual, and serves it again once the block
expires. An exempt address raises the finding and is never blocked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from api_helpers import API, PASSWORD, new_account

from summit.blueprint import Blueprint
from summit.security.audit import Query, search
from summit.security.blocks import Blocklist
from summit.security.guard import Detector
from summit.testing.http import assert_error_body
from summit.web import blocklist

STUFFING = "CredentialAccess:User/CredentialStuffing"
ATTACKER, NEIGHBOUR, TRUSTED = "198.51.100.40", "198.51.100.41", "198.51.100.42"
SECONDS = 4


@pytest.fixture
def blueprint(blueprint: Blueprint) -> Blueprint:
    """Blocking on, for a few seconds; loopback not protected (these clients are not loopback anyway);
    one exempt address."""
    blocking = blueprint.guard.blocking.model_copy(update={"enabled": True, "seconds": SECONDS, "never": []})
    shield = blueprint.shield.model_copy(update={"exempt": [f"{TRUSTED}/32"]})
    return blueprint.model_copy(update={"guard": blueprint.guard.model_copy(update={"blocking": blocking}), "shield": shield})


@pytest.fixture(autouse=True)
def quick_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocklist, "RELOAD_SECONDS", 0.1)  # the app looks at the list's file this often (1 s by default)


@asynccontextmanager
async def client_from(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    transport = httpx.ASGITransport(app=app, client=(address, 40123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def stuff(app, source: str, logins: list[str]) -> list[int]:  # noqa: ANN001
    statuses = []
    async with client_from(app, source) as attacker:
        for login in logins:
            r = await attacker.post(f"{API}/sessions", json={"login": login, "password": "Password123!"})
            attacker.cookies.clear()
            statuses.append(r.status_code)
    return statuses


async def test_a_stuffing_source_is_blocked_by_the_app_and_served_again_when_the_block_expires(app, client, blueprint) -> None:  # noqa: ANN001
    accounts = [await new_account(client, app, f"stuffed{n}") for n in range(3)]
    logins = [a.username for a in accounts] + [f"nobody{n}@example.com" for n in range(7)]
    assert await stuff(app, ATTACKER, logins) == [401] * 10

    report = Detector.for_blueprint(blueprint).run()
    [finding] = report.new
    assert (finding.type, finding.source) == (STUFFING, ATTACKER)
    assert report.blocking is not None and report.blocking.edge == "none"  # no front door at stage 1: the app refuses it
    [block] = report.blocking.blocks
    assert (block.source, block.finding, block.by) == (ATTACKER, finding.id, "guard")
    assert set(Blocklist(blueprint.data_dir).active()) == {ATTACKER}
    await asyncio.sleep(0.2)  # the app looks at the list again

    async with client_from(app, ATTACKER) as attacker:
        refused = await attacker.get(f"{API}/users/stuffed0")
        assert refused.status_code == 403 and 1 <= int(refused.headers["retry-after"]) <= SECONDS + 1
        assert_error_body(refused.json())
        assert refused.json()["error"]["code"] == "forbidden" and "blocked" in refused.json()["error"]["message"]
        login = await attacker.post(f"{API}/sessions", json={"login": "stuffed0", "password": PASSWORD})
        assert login.status_code == 403  # even the right password: nothing reaches the app
        page = await attacker.get("/", headers={"accept": "text/html"})
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html") and "blocked" in page.text
    async with client_from(app, NEIGHBOUR) as neighbour:
        ok = await neighbour.post(f"{API}/sessions", json={"login": "stuffed1", "password": PASSWORD})
        assert ok.status_code == 201, ok.text
    [record] = search(blueprint.data_dir, Query(action="shield:Block"))
    assert record.details["source"] == ATTACKER and record.details["type"] == STUFFING

    deadline = time.monotonic() + SECONDS + 3
    async with client_from(app, ATTACKER) as attacker:
        while (await attacker.get(f"{API}/users/stuffed0")).status_code == 403:
            assert time.monotonic() < deadline, "the block did not expire"
            await asyncio.sleep(0.2)
        assert (await attacker.post(f"{API}/sessions", json={"login": "stuffed0", "password": PASSWORD})).status_code == 201


async def test_an_exempt_source_raises_the_finding_and_is_not_blocked(app, client, blueprint) -> None:  # noqa: ANN001
    logins = [f"nobody{n}@example.com" for n in range(10)]
    assert await stuff(app, TRUSTED, logins) == [401] * 10
    report = Detector.for_blueprint(blueprint).run()
    assert [(f.type, f.source) for f in report.new] == [(STUFFING, TRUSTED)]
    assert report.blocking is not None and report.blocking.blocks == []
    assert [source for source, _ in report.blocking.skipped] == [TRUSTED] and "exempt" in report.blocking.skipped[0][1]
    assert Blocklist(blueprint.data_dir).active() == {}
    async with client_from(app, TRUSTED) as trusted:
        assert (await trusted.get(f"{API}/users/nobody")).status_code == 404

"""The app's rate limits (summit.web.ratelimit, declared in photos.limits) on the real app: per user,
per address and per account, as the JSON error or the HTML page, with Retry-After; exemptions; the
client address behind a trusted proxy; counts shared by two app processes (``summit serve``)
through Redis; and the limits failing open while Redis is out. Rates are lowered through the blueprint ([shield.app.limits])."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from summit.blueprint import Blueprint, load_blueprint
from summit.engines.layout import free_port
from summit.security import ACCESS_COOKIE
from summit.testing.http import assert_error
from summit.testing.mail import mailed_code
from summit.web import ratelimit
from summit.web.ratelimit import RateLimitConfigError
from summit.wiring import open_port

from photos.app import create_app
from tests.conftest import image_bytes

API = "/api/v1"
FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


def lowered(blueprint: Blueprint, *, exempt: list[str] | None = None, **limits: str) -> Blueprint:
    """The test's blueprint with these rates (and exemptions)."""
    app = blueprint.shield.app.model_copy(update={"limits": limits})
    shield = blueprint.shield.model_copy(update={"app": app, **({"exempt": exempt} if exempt is not None else {})})
    return blueprint.model_copy(update={"shield": shield})


@pytest.fixture
def blueprint(blueprint: Blueprint) -> Blueprint:  # the conftest's, with low rates
    return lowered(blueprint, exempt=["198.51.100.0/24"], comment="3/minute", sign_in="6/minute", sign_in_account="4/minute",
                   sign_up="3/hour")


def client_from(app, address: str, **kwargs) -> httpx.AsyncClient:  # noqa: ANN001, ANN003
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://testserver", **kwargs)


async def comment(client: httpx.AsyncClient, post: dict, user) -> httpx.Response:  # noqa: ANN001
    return await client.post(f"{API}/posts/{post['id']}/comments", headers=user.auth, json={"body": "nice"})


async def test_the_fourth_comment_within_a_minute_is_refused_and_other_users_are_not(client, make_user, make_post, app) -> None:  # noqa: ANN001
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    post = await make_post(alice)
    assert [(await comment(client, post, bob)).status_code for _ in range(3)] == [201] * 3
    refused = await comment(client, post, bob)
    assert_error(refused, 429, "too many comments", "at most 3 per minute", "retry in")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and refused.headers["cache-control"] == "no-store"
    assert (await comment(client, post, carol)).status_code == 201  # per user: carol has her own count
    # the same limit through the page's form (the session cookie): the HTML error page, same message
    async with client_from(app, "127.0.0.1", cookies={ACCESS_COOKIE: bob.token}) as browser:
        page = await browser.post(f"/p/{post['id']}/comments", data={"body": "again", "csrf_token": "x"})
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert "too many comments: at most 3 per minute" in page.text and int(page.headers["retry-after"]) >= 1
    listed = (await client.get(f"{API}/posts/{post['id']}/comments", headers=alice.auth)).json()
    assert len(listed["items"]) == 4  # bob's three and carol's one: the refused ones changed nothing
    metrics = (await client.get("/metrics")).text  # refusals are counted under their route, as routed requests are
    assert 'summit_http_requests_total{method="POST",route="/api/v1/posts/{post_id}/comments",status="429"} 1.0' in metrics
    assert 'summit_http_requests_total{method="POST",route="/p/{post_id}/comments",status="429"} 1.0' in metrics


async def test_sign_ins_are_limited_per_account_from_any_address_and_per_address(app, make_user) -> None:  # noqa: ANN001
    """The pool locks an account after 5 failures in a row; these bound the attempts themselves."""
    victim, other = await make_user(), await make_user()  # each signed in once already (4 a minute per account)
    wrong = {"login": victim.username, "password": "not the password"}
    right = {"login": victim.username, "password": victim.password}
    async with client_from(app, "203.0.113.5") as first, client_from(app, "203.0.113.6") as second:
        for attempt in range(3):
            assert_error(await (first if attempt % 2 else second).post(f"{API}/sessions", json=wrong), 401)
        shouted = {**wrong, "login": victim.username.upper()}  # one account however it is typed
        assert_error(await first.post(f"{API}/sessions", json=shouted), 429, "too many sign-in attempts for this account", "per minute")
        assert_error(await second.post(f"{API}/sessions", json=right), 429, "for this account")  # from any address
    async with client_from(app, "203.0.113.7") as third:  # the page's form counts the same account
        page = await third.post("/login", data={"login": victim.username, "password": victim.password})
    assert page.status_code == 429 and "too many sign-in attempts for this account" in page.text

    ours = {"login": other.username, "password": other.password}
    async with client_from(app, "203.0.113.9") as busy:  # 6 attempts a minute per address, whatever the account
        assert [(await busy.post(f"{API}/sessions", json=ours)).status_code for _ in range(2)] == [201, 201]
        for n in range(4):
            assert_error(await busy.post(f"{API}/sessions", json={"login": f"ghost{n}", "password": "guess 123456"}), 401)
        assert_error(await busy.post(f"{API}/sessions", json=ours), 429, "too many sign-in attempts from your address")
    async with client_from(app, "203.0.113.8") as elsewhere:
        assert (await elsewhere.post(f"{API}/sessions", json=ours)).status_code == 201  # the account's 4th this minute


async def test_sign_ups_per_address_exempt_sources_and_the_address_behind_a_trusted_proxy(tmp_path: Path, blueprint: Blueprint) -> None:
    proxied = blueprint.model_copy(update={"server": blueprint.server.model_copy(update={"trusted_proxies": "127.0.0.1"})})
    app = create_app(proxied)
    n = 0

    async def sign_up(client: httpx.AsyncClient, forwarded: str | None = None) -> int:
        nonlocal n
        n += 1
        headers = {"x-forwarded-for": forwarded} if forwarded else {}
        body = {"username": f"new{n}", "email": f"new{n}@example.com", "password": "correct horse 1"}
        return (await client.post(f"{API}/accounts", json=body, headers=headers)).status_code

    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        async with client_from(app, "127.0.0.1") as proxy, client_from(app, "198.51.100.9") as exempt, client_from(app, "192.0.2.1") as direct:
            assert [await sign_up(proxy, "203.0.113.20") for _ in range(4)] == [201, 201, 201, 429]
            assert await sign_up(proxy, "203.0.113.21") == 201  # another client behind the same proxy
            assert [await sign_up(exempt) for _ in range(5)] == [201] * 5  # shield.exempt: never counted
            # a client that is not the proxy cannot move its count onto another address
            assert [await sign_up(direct, f"203.0.113.{30 + i}") for i in range(4)] == [201, 201, 201, 429]


async def test_limits_off_or_a_limit_the_app_does_not_have(tmp_path: Path, blueprint: Blueprint, make_user, make_post, client) -> None:  # noqa: ANN001
    with pytest.raises(RateLimitConfigError, match="shield.app.limits: no limit named 'coment'; the app's limits are: api_read, comment"):
        create_app(lowered(blueprint, coment="1/minute"))
    off = blueprint.model_copy(update={"shield": blueprint.shield.model_copy(update={"app": blueprint.shield.app.model_copy(update={"enabled": False})})})
    app = create_app(off)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), client_from(app, "127.0.0.1") as other:
        alice = await make_user()
        post = await make_post(alice)
        assert [(await comment(other, post, alice)).status_code for _ in range(5)] == [201] * 5


# ---- on Redis: shared counts, and failing open -------------------------------------------------

@asynccontextmanager
async def app_on(blueprint: Blueprint) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    app = create_app(blueprint)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), client_from(app, "127.0.0.1") as client:
        yield app, client


def on_redis(tmp_path: Path, url: str, **limits: str) -> Blueprint:
    overrides = {"data_dir": str(tmp_path / "data"), "auth": FAST, "ports": {"cache": url},
                 "shield": {"app": {"limits": limits, "timeout_ms": 200, "log_interval_seconds": 60}}}
    return load_blueprint(environ={}, overrides=overrides)


async def sign_up_and_in(client: httpx.AsyncClient, mail, name: str) -> dict[str, str]:  # noqa: ANN001
    email = f"{name}@example.com"
    assert (await client.post(f"{API}/accounts", json={"username": name, "email": email, "password": "correct horse 1"})).status_code == 201
    code = await mailed_code(mail, email, "confirmation")
    assert (await client.post(f"{API}/accounts/confirm", json={"login": name, "code": code})).status_code == 200
    r = await client.post(f"{API}/sessions", json={"login": name, "password": "correct horse 1"})
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def new_post(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    r = await client.post(f"{API}/posts", headers=auth, files={"photo": ("p.jpg", image_bytes(), "image/jpeg")})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@contextmanager
def served(blueprint: Blueprint, env: dict[str, str]) -> Iterator[str]:
    """The app in a process of its own (``summit serve``, as the control plane runs each app server)."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    environ.update(env, SUMMIT_DATA_DIR=str(blueprint.data_dir), SUMMIT_SERVER__PORT=str(port))
    log = open(blueprint.data_dir.parent / f"serve-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "summit", "serve"], env=environ, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (blueprint.data_dir.parent / f"serve-{port}.log").read_text()[-2000:]
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


async def test_two_app_processes_share_the_counts_through_redis(tmp_path: Path, redis_db, redis_server) -> None:  # noqa: ANN001
    blueprint = on_redis(tmp_path, redis_db.url, comment="3/minute")
    blueprint.data_dir.mkdir(parents=True)
    env = {"SUMMIT_PORTS__CACHE": redis_db.url, "SUMMIT_SHIELD__APP__LIMITS__COMMENT": "3/minute",
           "SUMMIT_AUTH__ISSUER": "http://127.0.0.1:8000",  # one issuer for both, as a stage's app servers have
           "SUMMIT_AUTH__ARGON2_TIME_COST": "1", "SUMMIT_AUTH__ARGON2_MEMORY_KIB": "1024"}
    with served(blueprint, env) as one, served(blueprint, env) as two:
        async with httpx.AsyncClient(base_url=one, timeout=30) as first, httpx.AsyncClient(base_url=two, timeout=30) as second:
            mail = open_port("mail", blueprint.port_url("mail"))
            try:
                auth = await sign_up_and_in(first, mail, "sharer")
            finally:
                await mail.close()
            post = await new_post(second, auth)

            async def comment_on(client: httpx.AsyncClient) -> int:
                return (await client.post(f"{API}/posts/{post}/comments", headers=auth, json={"body": "hi"})).status_code

            assert [await comment_on(c) for c in (first, second, first)] == [201, 201, 201]
            assert await comment_on(second) == 429 and await comment_on(first) == 429
    assert any(key.startswith(f"{redis_db.prefix}shield:") for key in redis_server.keys(f"{redis_db.prefix}*"))  # under the cache's prefix


class Lines(logging.Handler):
    """What a logger wrote (the app's start-up replaces the root's handlers, pytest's among them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def shield_log() -> Iterator[Lines]:
    lines, logger = Lines(), logging.getLogger("summit.shield")
    logger.addHandler(lines)
    yield lines
    logger.removeHandler(lines)


async def test_with_redis_out_the_limits_fail_open_log_once_and_count_again_after(tmp_path: Path, redis_db, redis_server,  # noqa: ANN001
                                                                                   shield_log: Lines) -> None:
    blueprint = on_redis(tmp_path, redis_db.url, comment="2/minute")
    async with app_on(blueprint) as (app, client):
        auth = await sign_up_and_in(client, app.state.ctx.platform.mail, "steady")
        post = await new_post(client, auth)

        async def comment_on() -> int:
            return (await client.post(f"{API}/posts/{post}/comments", headers=auth, json={"body": "hi"})).status_code

        assert [await comment_on() for _ in range(3)] == [201, 201, 429]
        await asyncio.to_thread(redis_server.kill)
        try:
            statuses = [await comment_on() for _ in range(6)]  # over the limit, and Redis is gone
        finally:
            await asyncio.to_thread(redis_server.restart)
        assert statuses == [201] * 6  # served, uncounted
        outage = [line for line in shield_log.lines if "rate limits not enforced" in line]
        assert len(outage) == 1 and "Redis at 127.0.0.1" in outage[0], shield_log.lines
        await asyncio.sleep(ratelimit.BREAK_SECONDS + 0.2)  # the breaker lets a request try Redis again
        assert [await comment_on() for _ in range(3)] == [201, 201, 429]  # a new Redis: counted from zero
        back = [line for line in shield_log.lines if "counted again" in line]
        assert len(back) == 1 and "request(s) went uncounted" in back[0]

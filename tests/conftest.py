"""Fixtures shared by the app's tests: a Summit Photos app on a fresh data directory (stage 1,
embedded adapters), an HTTP client that talks to it in-process, and user and photo factories."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image

from summit.blueprint import Blueprint, load_blueprint
from summit.ports.mail import Outbox

pytest.register_assert_rewrite("summit.testing")  # before it is imported, so its asserts explain themselves
from summit.testing.engines import PostgresStage, RedisStage, SeaweedStage, running_postgres, running_redis, running_seaweedfs  # noqa: E402
from summit.testing.mail import mailed_code  # noqa: E402

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}  # tests only: hashing stays argon2id


# TEST_DATABASE=postgres runs the app's tests on PostgreSQL (the sql and queue ports, through
# PgBouncer, with a replica and read-your-writes routing): `make test-postgres`
ON_POSTGRES = os.environ.get("TEST_DATABASE", "sqlite") == "postgres"  # (not SUMMIT_*: the blueprint reads those)
# TEST_CACHE=redis runs them with the cache port on Redis (a key prefix of each test's own)
ON_REDIS = os.environ.get("TEST_CACHE", "memory") == "redis"


@pytest.fixture(scope="session")
def postgres_stage() -> Iterator[PostgresStage]:
    """PostgreSQL for this test session (one per xdist worker): a primary and a replica, each behind
    its PgBouncer, started by the control plane's own engine units."""
    with running_postgres(replicas=1) as stage:
        yield stage


@dataclass
class PostgresDatabase:
    stage: PostgresStage
    name: str

    @property
    def url(self) -> str:
        return self.stage.url(self.name)

    @property
    def location(self) -> str:
        """The URL after ``postgresql://`` (what a contract line's ``{engine.location}`` stands for)."""
        return self.url.split("://", 1)[1]


@pytest.fixture
def postgres_db(postgres_stage: PostgresStage) -> Iterator[PostgresDatabase]:
    """A fresh database of the session's PostgreSQL, dropped after the test."""
    name = postgres_stage.create_database()
    yield PostgresDatabase(postgres_stage, name)
    postgres_stage.drop_database(name)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedStage]:
    """SeaweedFS for this test session (one per xdist worker), with the stage's bucket, started by
    the control plane's own engine unit."""
    with running_seaweedfs() as stage:
        yield stage


@dataclass
class S3Bucket:
    """A bucket of this test's own in the session's SeaweedFS: an empty store."""

    stage: SeaweedStage
    name: str

    @property
    def url(self) -> str:
        return self.stage.url(self.name)

    @property
    def location(self) -> str:
        """The URL after ``s3://`` (what a contract line's ``{engine.location}`` stands for)."""
        return self.url.split("://", 1)[1]


@pytest.fixture
def s3_bucket(seaweedfs: SeaweedStage) -> Iterator[S3Bucket]:
    """A fresh bucket of the session's SeaweedFS, deleted after the test."""
    name = seaweedfs.create_bucket()
    yield S3Bucket(seaweedfs, name)
    seaweedfs.drop_bucket(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisStage]:
    """Redis for this test session (one per xdist worker), started by the control plane's own
    engine unit under its supervisor."""
    with running_redis() as stage:
        yield stage


_redis_prefixes = itertools.count(1)


@dataclass
class RedisDatabase:
    """The session's Redis seen through a key prefix of this test's own: an empty cache."""

    server: RedisStage
    prefix: str

    def url_with(self, **options: object) -> str:
        return self.server.url(prefix=self.prefix, **options)

    @property
    def url(self) -> str:
        return self.url_with()

    @property
    def location(self) -> str:
        """The URL after ``redis://`` (what a contract line's ``{engine.location}`` stands for)."""
        return self.url.split("://", 1)[1]


@pytest.fixture
def redis_db(redis_server: RedisStage) -> RedisDatabase:
    return RedisDatabase(redis_server, f"t{next(_redis_prefixes)}:")  # a fresh prefix: an empty cache


@pytest.fixture
def blueprint(tmp_path, request) -> Blueprint:  # noqa: ANN001
    overrides: dict = {"data_dir": str(tmp_path / "data"), "auth": FAST_ARGON2}
    if ON_POSTGRES:
        url = request.getfixturevalue("postgres_db").url
        overrides["ports"] = {"sql": url, "queue": url + "&max_receives=5"}
    if ON_REDIS:
        overrides.setdefault("ports", {})["cache"] = request.getfixturevalue("redis_db").url
    return load_blueprint(environ={}, overrides=overrides)


@pytest.fixture
async def app(blueprint: Blueprint):  # noqa: ANN201
    from photos.app import create_app

    application = create_app(blueprint)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
def outbox(app) -> Outbox:  # noqa: ANN001
    """The app's mail port: the embedded outbox keeps what the app sent (``mailed_code`` reads it)."""
    return app.state.ctx.platform.mail


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), color: str = "teal", **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt, **save)
    return out.getvalue()


@pytest.fixture
def jpeg() -> Callable[..., bytes]:
    return image_bytes


@dataclass
class User:
    id: str
    username: str
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_names = itertools.count(1)


@pytest.fixture
def make_user(outbox: Outbox, client: httpx.AsyncClient):  # noqa: ANN201
    """``await make_user()`` signs up, confirms by the mailed code, and signs in a new user."""

    async def make(username: str | None = None, password: str = "correct horse 1") -> User:
        username = username or f"user{next(_names)}"
        email = f"{username}@example.com"
        r = await client.post("/api/v1/accounts", json={"username": username, "email": email, "password": password})
        assert r.status_code == 201, r.text
        code = await mailed_code(outbox, email, "confirmation")
        r = await client.post("/api/v1/accounts/confirm", json={"login": username, "code": code})
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/sessions", json={"login": username, "password": password})
        assert r.status_code == 201, r.text
        client.cookies.clear()  # API tests authenticate by header, not by the UI's cookies
        return User(r.json()["user"]["id"], username, email, password, r.json()["token"])

    return make


@pytest.fixture
def make_post(client: httpx.AsyncClient):  # noqa: ANN201
    """``await make_post(user, caption)`` uploads a JPEG and returns the post's JSON."""

    async def make(user: User, caption: str = "", photo: bytes | None = None) -> dict:
        files = {"photo": ("photo.jpg", photo or image_bytes(), "image/jpeg")}
        r = await client.post("/api/v1/posts", headers=user.auth, files=files, data={"caption": caption})
        assert r.status_code == 201, r.text
        return r.json()

    return make


@pytest.fixture
def drain(app):  # noqa: ANN001, ANN201
    """``await drain()`` waits until the in-process worker has emptied its queues."""

    async def wait(timeout: float = 30.0) -> None:
        await app.state.worker.drain(timeout)

    return wait


@dataclass
class LiveServer:
    url: str
    data_dir: str
    process: object


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> LiveServer:  # noqa: ANN001
    """A real ``summit up`` (granian, stage 1) on a free loopback port, shared by a test session."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    data_dir = tmp_path_factory.mktemp("live") / "data"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    env.update(SUMMIT_AUTH__ARGON2_TIME_COST="1", SUMMIT_AUTH__ARGON2_MEMORY_KIB="1024")
    # the fuzzer (tests/api/test_schemathesis.py) sends hundreds of sign-ups and sign-ins from loopback
    # to this shared server, which would leave the tests after it over the rate limits (docs/shield.md):
    # loopback is exempt here; the limits have tests of their own
    env.update(SUMMIT_SHIELD__EXEMPT="127.0.0.0/8")
    summit = Path(sys.executable).with_name("summit")
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [str(summit), "up", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            raise RuntimeError(f"summit up did not become healthy; see {data_dir.parent / 'server.log'}")
        time.sleep(0.2)
    yield LiveServer(url, str(data_dir), process)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


@pytest.fixture(scope="session")
def stage_10k() -> Iterator[object]:
    """``summit up --stage 10k --detach`` as the preset runs it: HAProxy with TLS (HTTPS on a port of
    its own, the stage's CA exported for clients) and Varnish (edge, regional) in front, two WAF
    processes on the dynamic path to two app processes, a PostgreSQL primary + 2 replicas with a
    PgBouncer in front of each, Redis, SeaweedFS; ``summit down`` at the end. ``.url`` is the HTTPS
    URL, ``.client()`` an httpx client that trusts the stage's CA, ``.ca`` the CA's PEM file."""
    from summit.testing.stage import detached_stage

    with detached_stage("10k", env={"SUMMIT_AUTH__ARGON2_TIME_COST": "1", "SUMMIT_AUTH__ARGON2_MEMORY_KIB": "1024"}) as stage:
        yield stage

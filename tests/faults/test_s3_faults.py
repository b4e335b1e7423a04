"""Faults of the object store under the app, on real processes: the app in-process with its
database on PostgreSQL (through PgBouncer) and its photos on a SeaweedFS of this module's own,
started by the control plane. An upload while the store is stopped or frozen gets a clear 503 and
writes no post; once the store is back, uploads work and photos and thumbnails are served from
``/media/<key>`` (streamed from S3, with their ETag and 304s). Every wait is bounded; everything
runs on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from summit.blueprint import Blueprint, load_blueprint
from summit.testing.engines import SeaweedStage, running_seaweedfs

pytestmark = [pytest.mark.s3, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def store_stage() -> Iterator[SeaweedStage]:
    """A SeaweedFS of this module's own: its tests stop and freeze it."""
    with running_seaweedfs() as stage:
        yield stage


@pytest.fixture
def blueprint(tmp_path, postgres_db, store_stage: SeaweedStage) -> Blueprint:  # noqa: ANN001
    """The app's blueprint (conftest's ``app``, ``client`` and factories use it): PostgreSQL, and a
    fresh bucket of the module's SeaweedFS, its waits cut to 1 s."""
    url = postgres_db.url
    return load_blueprint(environ={}, overrides={
        "data_dir": str(tmp_path / "data"), "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024},
        "ports": {"sql": url, "queue": url + "&max_receives=5", "objects": store_stage.url(store_stage.create_bucket(), timeout=1)},
    })


async def _post_rows(app) -> int:  # noqa: ANN001
    from photos import schema

    async with app.state.ctx.db.read(after_write=True) as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(schema.posts))).scalar_one()


async def _upload(client, user, jpeg):  # noqa: ANN001, ANN202
    files = {"photo": ("photo.jpg", jpeg(), "image/jpeg")}
    return await client.post("/api/v1/posts", headers=user.auth, files=files, data={"caption": "#s3"})


def _unavailable(response) -> None:  # noqa: ANN001
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "unavailable" and "photo store" in error["message"] and "retry" in error["message"]
    assert response.headers["retry-after"]


async def _served(client, post: dict, drain) -> None:  # noqa: ANN001
    """The photo and its thumbnails come from /media/<key>, streamed from S3, cacheable, with 304s."""
    r = await client.get(post["photo_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:3] == b"\xff\xd8\xff"
    assert int(r.headers["content-length"]) == len(r.content) and "immutable" in r.headers["cache-control"]
    again = await client.get(post["photo_url"], headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    await drain()
    thumbs = (await client.get(f"/api/v1/posts/{post['id']}")).json()["thumbnails"]
    assert thumbs["ready"]
    for size in ("small", "medium", "large"):
        t = await client.get(thumbs[size])
        assert t.status_code == 200 and t.headers["content-type"] == "image/webp" and t.content[:4] == b"RIFF"


async def test_an_upload_while_the_store_is_stopped_is_a_503_and_writes_no_post(app, client, make_user, jpeg, drain, store_stage) -> None:  # noqa: ANN001
    user = await make_user()
    before = (await _upload(client, user, jpeg)).json()
    await asyncio.to_thread(store_stage.stop)
    try:
        started = time.monotonic()
        r = await _upload(client, user, jpeg)
        _unavailable(r)
        assert time.monotonic() - started < 10
        assert await _post_rows(app) == 1  # the one from before: none for the failed upload
        media = await client.get(before["photo_url"])
        assert media.status_code == 503 and media.headers["retry-after"]
    finally:
        await asyncio.to_thread(store_stage.restart)
    after = await _upload(client, user, jpeg)
    assert after.status_code == 201, after.text
    assert await _post_rows(app) == 2
    await _served(client, after.json(), drain)
    await _served(client, before, drain)  # made before the outage, still there


async def test_an_upload_while_the_store_is_frozen_is_a_503_within_its_timeout(app, client, make_user, jpeg, drain, store_stage) -> None:  # noqa: ANN001
    user = await make_user()
    store_stage.freeze()
    try:
        started = time.monotonic()
        r = await _upload(client, user, jpeg)
        _unavailable(r)
        assert time.monotonic() - started < 10  # 1 s per attempt, two attempts: never a hung request
        assert await _post_rows(app) == 0
        page = (await client.get(f"/api/v1/users/{user.username}/posts")).json()
        assert page["items"] == []
    finally:
        store_stage.freeze(frozen=False)
    r = await _upload(client, user, jpeg)
    assert r.status_code == 201, r.text
    await _served(client, r.json(), drain)

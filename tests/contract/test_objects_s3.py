"""What is particular to the S3 object store (the objects contract runs on it in
``test_objects.py``), on the session's SeaweedFS started by the control plane: URL options and the
credentials file, prefixes, byte order on a store that lists in tree order, streamed reads, what
another tool wrote, wrong keys, and a store that is down or frozen (a clear error, bounded)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import stat
import time
from pathlib import Path

import pytest

from summit.engines.layout import free_port
from summit.ports.objects import InvalidKey, ObjectError, ObjectNotFound, ObjectStoreUnavailable
from summit.wiring import open_port

pytestmark = pytest.mark.s3

def _keys_file(tmp_path: Path, text: str = "[default]\naws_access_key_id = a\naws_secret_access_key = b\n") -> Path:
    path = tmp_path / "credentials"
    path.write_text(text)
    return path


# ---- URLs ----------------------------------------------------------------------------------------


def test_the_url_options(tmp_path: Path) -> None:
    from summit.adapters.s3.objects import S3ObjectStore

    keys = _keys_file(tmp_path, "[default]\naws_access_key_id = AKEY\naws_secret_access_key = s3cr3t-value\n")
    store = open_port("objects", f"s3://photos.bucket?endpoint=http://127.0.0.1:9&credentials={keys}&region=eu-west-1&prefix=a/b/&timeout=2.5")
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.endpoint, store.region, store.prefix, store.timeout) == ("photos.bucket", "http://127.0.0.1:9", "eu-west-1", "a/b/", 2.5)
    assert store._keys == ("AKEY", "s3cr3t-value") and "s3cr3t" not in repr(store)
    plain = S3ObjectStore.from_url(f"s3://abc?credentials={keys}")
    assert (plain.endpoint, plain.region, plain.prefix, plain.timeout) == (None, "us-east-1", "", 5.0)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("&color=red", "unknown option color"),
        ("&prefix=a", "must end with '/'"),
        ("&prefix=../", "prefix"),
        ("&timeout=0", "timeout"),
        ("&timeout=soon", "timeout"),
        ("&endpoint=127.0.0.1:9", "http:// or https://"),
    ],
)
def test_url_errors(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_port("objects", f"s3://bucket?credentials={_keys_file(tmp_path)}{query}")


@pytest.mark.parametrize(("url", "message"), [("s3://AB", "bucket"), ("s3://bucket/dir", "no path"), ("memory://", "not an s3://")])
def test_bucket_and_path_errors(tmp_path: Path, url: str, message: str) -> None:
    from summit.adapters.s3.objects import S3ObjectStore

    with pytest.raises(ValueError, match=message):
        S3ObjectStore.from_url(url)


def test_credentials_come_from_the_file_or_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(ValueError, match="give credentials=FILE"):
        open_port("objects", "s3://bucket")
    with pytest.raises(ValueError, match="cannot read it"):
        open_port("objects", f"s3://bucket?credentials={tmp_path}/none")
    with pytest.raises(ValueError, match="not an AWS credentials file"):
        open_port("objects", f"s3://bucket?credentials={_keys_file(tmp_path, 'access=a')}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    assert open_port("objects", "s3://bucket")._keys == ("a", "b")


def test_the_stage_publishes_a_url_without_a_secret_and_an_owner_only_keys_file(seaweedfs) -> None:  # noqa: ANN001
    url, secrets = seaweedfs.url(), seaweedfs.stage.layout.secrets_dir
    access, secret = ((secrets / name).read_text().strip() for name in ("seaweedfs-access-key", "seaweedfs-secret-key"))
    assert secret not in url and access not in url
    credentials = Path(url.split("credentials=", 1)[1].split("&", 1)[0])
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600 and secret in credentials.read_text()
    config = seaweedfs.stage.layout.engine_dir("seaweedfs") / "s3.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


# ---- behaviour on SeaweedFS ------------------------------------------------------------------------


async def test_prefixes_keep_stores_apart_in_one_bucket(s3_bucket) -> None:  # noqa: ANN001
    whole = open_port("objects", s3_bucket.url)
    one, two = (open_port("objects", f"{s3_bucket.url}&prefix={name}/") for name in ("one", "two"))
    try:
        await one.put("k", b"1")
        await two.put("k", b"2")
        assert (await one.get("k")).data == b"1" and (await two.get("k")).data == b"2"
        assert [i.key for i in await one.list()] == ["k"]
        assert [i.key for i in await whole.list()] == ["one/k", "two/k"]
        with pytest.raises(InvalidKey, match="longer than S3's 1024 bytes"):
            await one.put("x" * 1021, b"")  # 1021 bytes, 1025 with 'one/'
    finally:
        for store in (whole, one, two):
            await store.close()


async def test_list_is_in_byte_order_where_the_store_lists_in_tree_order(s3_bucket) -> None:  # noqa: ANN001
    """SeaweedFS lists 'a/x' before 'a.b' (directory first); the port promises byte order, for any
    prefix, start and page size."""
    rng = random.Random(11)
    parts = ["a", "a.b", "a-c", "a b", "ab", "b", "a/b", "0", "~"]
    keys = sorted({"/".join(rng.choice(parts).replace("/", "-") for _ in range(rng.randint(1, 3))) for _ in range(60)})
    keys = [k for k in keys if not any(other.startswith(k + "/") for other in keys)]  # no key is another's directory
    store = open_port("objects", s3_bucket.url)
    try:
        await asyncio.gather(*(store.put(key, b"x") for key in keys))
        assert [i.key for i in await store.list()] == keys
        for _ in range(25):
            prefix = rng.choice(["", "a", "a/", "a.", "a-c/", "ab", "a b/a", "b/"])
            after = rng.choice(["", *keys, "a/", "a.b/", "a-", "zz"])
            limit = rng.choice([1, 2, 5, 1000])
            expected = [k for k in keys if k.startswith(prefix) and k > after][:limit]
            assert [i.key for i in await store.list(prefix, after=after, limit=limit)] == expected, (prefix, after, limit)
    finally:
        await store.close()


async def test_a_stream_reads_the_object_a_chunk_at_a_time(s3_bucket) -> None:  # noqa: ANN001
    data = os.urandom(3 * 1024 * 1024 + 5)
    store = open_port("objects", s3_bucket.url)
    try:
        info = await store.put("big/photo.jpg", data, content_type="image/jpeg")
        stream = await store.stream("big/photo.jpg", chunk_size=256 * 1024)
        assert stream.info == info
        chunks = [chunk async for chunk in stream.chunks]
        assert b"".join(chunks) == data and max(map(len, chunks)) <= 256 * 1024 and len(chunks) >= 12
        early = await store.stream("big/photo.jpg")  # a stream given up before its end releases its connection
        await early.aclose()
        with pytest.raises(ObjectNotFound):
            await store.stream("big/none.jpg")
        assert (await store.get("big/photo.jpg")).data == data  # the client still works
    finally:
        await store.close()


async def test_an_object_another_tool_wrote_has_s3s_own_metadata(s3_bucket, seaweedfs) -> None:  # noqa: ANN001
    client = seaweedfs.server.client(seaweedfs.stage.layout)
    client.put_object(Bucket=s3_bucket.name, Key="foreign.txt", Body=b"hello", ContentType="text/plain")
    store = open_port("objects", s3_bucket.url)
    try:
        info = await store.head("foreign.txt")
        assert (info.size, info.content_type, info.etag) == (5, "text/plain", hashlib.md5(b"hello").hexdigest())  # noqa: S324
    finally:
        await store.close()


async def test_wrong_keys_are_refused_as_such_not_as_an_outage(s3_bucket, tmp_path: Path) -> None:  # noqa: ANN001
    url = s3_bucket.url.split("&credentials=")[0] + f"&credentials={_keys_file(tmp_path)}"
    store = open_port("objects", url)
    try:
        with pytest.raises(ObjectError, match="check the credentials") as caught:
            await store.put("k", b"x")
        assert not isinstance(caught.value, ObjectStoreUnavailable)
    finally:
        await store.close()


async def test_a_store_that_is_down_is_a_clear_error_quickly(tmp_path: Path) -> None:
    store = open_port("objects", f"s3://bucket?endpoint=http://127.0.0.1:{free_port()}&credentials={_keys_file(tmp_path)}&timeout=1")
    try:
        for call in (store.put("k", b"x"), store.get("k"), store.head("k"), store.delete("k"), store.list()):
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnavailable, match="does not answer.*retry shortly"):
                await call
            assert time.monotonic() - started < 5
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_frozen_store_is_a_clear_error_within_its_timeout_then_serves_again(s3_bucket, seaweedfs) -> None:  # noqa: ANN001
    store = open_port("objects", f"{s3_bucket.url}&timeout=1")
    try:
        await store.put("k", b"before")
        seaweedfs.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnavailable, match="ReadTimeout|does not answer"):
                await store.put("k2", b"during")
            assert time.monotonic() - started < 6  # two attempts of 1 s, and a backoff between them
        finally:
            seaweedfs.freeze(frozen=False)
        assert (await store.get("k")).data == b"before"
        await store.put("k2", b"after")
        assert (await store.get("k2")).data == b"after"
    finally:
        await store.close()


@pytest.mark.slow
async def test_objects_survive_a_restart_and_no_socket_is_left_behind(s3_bucket, seaweedfs) -> None:  # noqa: ANN001
    store = open_port("objects", s3_bucket.url)
    try:
        info = await store.put("kept", b"kept across a restart", content_type="text/plain")
        started = time.monotonic()
        await asyncio.to_thread(seaweedfs.stop)
        assert time.monotonic() - started < 10  # a short grace, then SIGKILL (SIGTERM alone takes ~26 s)
        ports = seaweedfs.server.ports.values()
        assert not [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]
        with pytest.raises(ObjectStoreUnavailable):
            await store.head("kept")
        await asyncio.to_thread(seaweedfs.restart)
        assert await store.head("kept") == info
        assert (await store.get("kept")).data == b"kept across a restart"
    finally:
        await store.close()

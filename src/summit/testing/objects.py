"""The contract every adapter of the objects port passes.

    class TestObjectStore(ObjectStoreContract):
        backend = backend_fixture("objects")   # the adapters of summit.testing.backends

Each adapter is opened from its URL, fresh and empty. A subclass may instead provide the ``store``
fixture itself (yield a fresh adapter, close it afterwards).

The keys used here never make one key the directory of another ('a' and 'a/b'): a file system, and
SeaweedFS's filer, cannot hold both.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random

import pytest

from summit.ports.objects import MAX_KEY_BYTES, InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, StoredObject
from summit.testing.backends import Backend

INVALID_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/a", id="absolute"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a//b", id="empty-part"),
    pytest.param("../x", id="dotdot-first"),
    pytest.param("a/../b", id="dotdot-inside"),
    pytest.param("a/..", id="dotdot-last"),
    pytest.param("./a", id="dot"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("..\\x", id="dotdot-backslash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x1bb", id="escape"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param("a\udc80", id="lone-surrogate"),
    pytest.param("x" * (MAX_KEY_BYTES + 1), id="too-long"),
    pytest.param("é" * (MAX_KEY_BYTES // 2 + 1), id="too-long-in-utf8"),
    pytest.param(None, id="none"),
    pytest.param(b"a", id="bytes"),
]

VALID_KEYS = [
    "a",
    "photos/naïve café/日本語 🙂.jpg",
    ".hidden/a.b/...",
    "with space/and%2e%2e/and?query#hash",
    "/".join(["k" * 99] * 10) + "/" + "z" * (MAX_KEY_BYTES - 1000),  # exactly MAX_KEY_BYTES
]

# sorted: '.' < '-' < '/' < letters matters ('a.b' < 'a/b-c' < 'a/b/c' < 'a/bc')
LIST_KEYS = [
    "a.b",
    "a/b-c",
    "a/b/c",
    "a/bc",
    "photos-old/x",
    "photos/1.jpg",
    "photos/10.jpg",
    "photos/2.jpg",
    "z",
]


def etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectStoreContract:
    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError('a subclass sets backend = backend_fixture("objects"), or provides `store`')

    @pytest.fixture
    async def store(self, backend: Backend):
        store = backend.open("objects")
        yield store
        await store.close()

    # put / get / head

    async def test_put_get_head_roundtrip(self, store: ObjectStore) -> None:
        data = b"<svg>hello</svg>"
        info = await store.put("docs/hello.svg", data, content_type="image/svg+xml")
        assert info == ObjectInfo("docs/hello.svg", len(data), "image/svg+xml", etag(data))
        assert await store.get("docs/hello.svg") == StoredObject(info, data)
        assert await store.head("docs/hello.svg") == info

    async def test_default_content_type(self, store: ObjectStore) -> None:
        info = await store.put("blob", b"x")
        assert info.content_type == "application/octet-stream"
        assert (await store.head("blob")).content_type == "application/octet-stream"

    async def test_overwrite_replaces_data_and_metadata(self, store: ObjectStore) -> None:
        await store.put("k", b"first version", content_type="text/plain")
        info = await store.put("k", b"second", content_type="application/json")
        assert info == ObjectInfo("k", 6, "application/json", etag(b"second"))
        assert await store.get("k") == StoredObject(info, b"second")
        assert await store.list() == [info]

    async def test_binary_data(self, store: ObjectStore) -> None:
        data = bytes(range(256)) * 4 + b"\r\n\x00\n\r" + "é".encode()
        await store.put("bin", data)
        got = await store.get("bin")
        assert got.data == data
        assert got.info.size == len(data) and got.info.etag == etag(data)

    async def test_empty_data(self, store: ObjectStore) -> None:
        info = await store.put("empty", b"", content_type="text/plain")
        assert info == ObjectInfo("empty", 0, "text/plain", etag(b""))
        assert await store.get("empty") == StoredObject(info, b"")

    async def test_bytearray_and_memoryview_are_stored_as_bytes(self, store: ObjectStore) -> None:
        await store.put("ba", bytearray(b"abc"))
        await store.put("mv", memoryview(b"xyz"))
        assert (await store.get("ba")).data == b"abc"
        got = await store.get("mv")
        assert type(got.data) is bytes and got.data == b"xyz"

    async def test_data_that_is_not_bytes_is_refused(self, store: ObjectStore) -> None:
        with pytest.raises(TypeError):
            await store.put("k", "text is not bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await store.put("k", b"x", content_type=None)  # type: ignore[arg-type]
        assert await store.list() == []

    async def test_ten_mib_object(self, store: ObjectStore) -> None:
        data = os.urandom(10 * 1024 * 1024)
        info = await store.put("big/object.bin", data)
        assert info.size == len(data) and info.etag == etag(data)
        got = await store.get("big/object.bin")
        assert got.info == info
        assert got.data == data
        assert await store.head("big/object.bin") == info

    @pytest.mark.parametrize("key", VALID_KEYS, ids=["one-char", "unicode", "dots", "url-like", "max-length"])
    async def test_valid_keys_are_accepted(self, store: ObjectStore, key: str) -> None:
        info = await store.put(key, key.encode())
        assert info.key == key
        assert (await store.get(key)).data == key.encode()
        assert await store.list() == [info]
        await store.delete(key)
        assert await store.list() == []

    # missing objects and delete

    async def test_missing_key(self, store: ObjectStore) -> None:
        for read in (store.get, store.head):
            with pytest.raises(ObjectNotFound) as caught:
                await read("no/such/key")
            assert isinstance(caught.value, KeyError)
            assert caught.value.key == "no/such/key"
            assert "no/such/key" in str(caught.value)

    async def test_a_local_file_holds_exactly_the_object(self, store: ObjectStore) -> None:
        """``local_file`` is optional (None), but a file it gives holds the object's bytes alone."""
        data = bytes(range(256)) * 40
        info = await store.put("photos/local.jpg", data, content_type="image/jpeg")
        local = await store.local_file("photos/local.jpg")
        if local is not None:
            assert local.info == info
            assert local.path.read_bytes() == data and local.stat.st_size == len(data)
        with pytest.raises(ObjectNotFound):
            await store.local_file("photos/none.jpg")

    async def test_delete(self, store: ObjectStore) -> None:
        await store.put("doomed/x", b"x")
        await store.put("doomed/y", b"y")
        assert await store.delete("doomed/x") is None
        with pytest.raises(ObjectNotFound):
            await store.get("doomed/x")
        with pytest.raises(ObjectNotFound):
            await store.head("doomed/x")
        assert [info.key for info in await store.list()] == ["doomed/y"]

    async def test_delete_is_idempotent(self, store: ObjectStore) -> None:
        await store.delete("never/was")
        await store.put("k", b"x")
        await store.delete("k")
        await store.delete("k")
        assert await store.list() == []

    async def test_a_key_can_be_stored_again_after_delete(self, store: ObjectStore) -> None:
        await store.put("a/b/c", b"1")
        await store.delete("a/b/c")
        await store.put("a/b/c", b"2")
        assert (await store.get("a/b/c")).data == b"2"

    # invalid keys

    @pytest.mark.parametrize("key", INVALID_KEYS)
    async def test_invalid_keys_are_refused(self, store: ObjectStore, key: str) -> None:
        with pytest.raises(InvalidKey):
            await store.put(key, b"x")
        with pytest.raises(InvalidKey):
            await store.get(key)
        with pytest.raises(InvalidKey):
            await store.head(key)
        with pytest.raises(InvalidKey):
            await store.delete(key)
        assert await store.list() == []

    async def test_invalid_key_is_a_value_error(self, store: ObjectStore) -> None:
        with pytest.raises(ValueError):
            await store.put("../escape", b"x")

    # list

    async def _put_list_keys(self, store: ObjectStore) -> dict[str, ObjectInfo]:
        keys = list(LIST_KEYS)
        random.Random(7).shuffle(keys)
        infos = {}
        for key in keys:
            infos[key] = await store.put(key, key.encode() * 3, content_type=f"text/x-{len(key)}")
        return infos

    async def test_list_everything_in_key_order(self, store: ObjectStore) -> None:
        infos = await self._put_list_keys(store)
        assert await store.list() == [infos[key] for key in sorted(LIST_KEYS)]
        assert sorted(LIST_KEYS) == LIST_KEYS

    async def test_list_empty_store(self, store: ObjectStore) -> None:
        assert await store.list() == []
        assert await store.list("photos/", after="a", limit=10) == []

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("photos/", ["photos/1.jpg", "photos/10.jpg", "photos/2.jpg"]),
            ("photos", ["photos-old/x", "photos/1.jpg", "photos/10.jpg", "photos/2.jpg"]),
            ("photos/1", ["photos/1.jpg", "photos/10.jpg"]),
            ("a/b", ["a/b-c", "a/b/c", "a/bc"]),
            ("a/b/", ["a/b/c"]),
            ("a", ["a.b", "a/b-c", "a/b/c", "a/bc"]),
            ("z", ["z"]),
            ("zz", []),
            ("nothing/", []),
        ],
    )
    async def test_list_prefix(self, store: ObjectStore, prefix: str, expected: list[str]) -> None:
        await self._put_list_keys(store)
        assert [info.key for info in await store.list(prefix)] == expected

    @pytest.mark.parametrize(
        ("after", "expected"),
        [
            ("", LIST_KEYS),
            ("a.b", LIST_KEYS[1:]),
            ("a/b", LIST_KEYS[1:]),  # not a key; 'a/b-c' sorts after it
            ("a/b/", LIST_KEYS[2:]),
            ("a/b/c", LIST_KEYS[3:]),
            ("photos/10.jpg", ["photos/2.jpg", "z"]),
            ("photos/", ["photos/1.jpg", "photos/10.jpg", "photos/2.jpg", "z"]),
            ("z", []),
            ("~", []),
        ],
    )
    async def test_list_after(self, store: ObjectStore, after: str, expected: list[str]) -> None:
        await self._put_list_keys(store)
        assert [info.key for info in await store.list(after=after)] == expected

    async def test_list_limit_and_pages(self, store: ObjectStore) -> None:
        await self._put_list_keys(store)
        assert [info.key for info in await store.list(limit=3)] == LIST_KEYS[:3]
        assert [info.key for info in await store.list("photos/", limit=1)] == ["photos/1.jpg"]
        assert [info.key for info in await store.list("photos", after="photos-old/x", limit=2)] == [
            "photos/1.jpg",
            "photos/10.jpg",
        ]
        assert await store.list(limit=0) == []
        pages, after = [], ""
        while page := await store.list(after=after, limit=2):
            assert len(page) <= 2
            pages.append([info.key for info in page])
            after = page[-1].key
        assert [key for page in pages for key in page] == LIST_KEYS
        assert len(pages) == 5

    async def test_list_negative_limit_is_refused(self, store: ObjectStore) -> None:
        with pytest.raises(ValueError):
            await store.list(limit=-1)

    async def test_list_gives_the_same_info_as_head(self, store: ObjectStore) -> None:
        await self._put_list_keys(store)
        for info in await store.list():
            assert info == await store.head(info.key)

    async def test_list_after_delete(self, store: ObjectStore) -> None:
        await self._put_list_keys(store)
        await store.delete("a/b/c")
        await store.delete("photos-old/x")
        keys = [info.key for info in await store.list()]
        assert keys == [key for key in LIST_KEYS if key not in ("a/b/c", "photos-old/x")]

    # concurrency

    async def test_concurrent_puts_of_one_key_leave_one_whole_version(self, store: ObjectStore) -> None:
        versions = {bytes([n]) * (256 * 1024 + n): f"application/x-version-{n}" for n in range(1, 17)}

        def check(got: StoredObject) -> None:
            assert got.data in versions, "a get returned a mix of versions"
            assert got.info == ObjectInfo("race", len(got.data), versions[got.data], etag(got.data))

        async def reader() -> None:
            for _ in range(30):
                try:
                    got = await store.get("race")
                except ObjectNotFound:
                    pass
                else:
                    check(got)
                await asyncio.sleep(0)

        puts = [store.put("race", data, content_type=ctype) for data, ctype in versions.items()]
        await asyncio.gather(*puts, reader(), reader())
        final = await store.get("race")
        check(final)
        assert await store.head("race") == final.info
        assert await store.list() == [final.info]

    async def test_many_concurrent_puts_of_different_keys(self, store: ObjectStore) -> None:
        keys = [f"many/{n % 7}/{n:03d}" for n in range(64)]
        infos = await asyncio.gather(*(store.put(key, key.encode()) for key in keys))
        assert [info.key for info in infos] == keys
        assert await store.list(limit=1000) == sorted(infos, key=lambda info: info.key)
        for key in keys:
            assert (await store.get(key)).data == key.encode()

    async def test_concurrent_deletes_and_puts_in_one_directory(self, store: ObjectStore) -> None:
        for n in range(20):
            await store.put("dir/sub/old", b"old")
            await asyncio.gather(store.delete("dir/sub/old"), store.put(f"dir/sub/new{n}", b"new"))
            assert (await store.get(f"dir/sub/new{n}")).data == b"new"
            await store.delete(f"dir/sub/new{n}")
        assert await store.list() == []

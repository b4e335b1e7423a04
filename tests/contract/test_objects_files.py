"""What is particular to the file object store (the objects contract runs on it in
``test_objects.py``)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from summit.adapters.files import objects as files_module
from summit.adapters.files.objects import MAGIC, FileObjectStore
from summit.ports.objects import InvalidKey, ObjectError, ObjectNotFound
from summit.wiring import open_port


def tree(directory: Path) -> list[str]:
    """Every file and directory under ``directory``, relative, sorted."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


# URLs


def test_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FileObjectStore.from_url("file://.summit/objects")
    assert store.root == tmp_path / ".summit" / "objects"
    assert FileObjectStore.from_url("file://objects").root == tmp_path / "objects"
    assert FileObjectStore.from_url("file:objects").root == tmp_path / "objects"
    assert FileObjectStore.from_url("file://./a/../b").root == tmp_path / "b"


def test_absolute_url(tmp_path: Path) -> None:
    assert FileObjectStore.from_url(f"file://{tmp_path}/objects").root == tmp_path / "objects"
    assert FileObjectStore.from_url("file:///srv/summit/objects").root == Path("/srv/summit/objects")


async def test_relative_root_is_fixed_when_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FileObjectStore.from_url("file://.summit/objects")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    await store.put("k", b"v")
    assert (tmp_path / ".summit" / "objects" / "data" / "k").is_file()
    assert tree(tmp_path / "elsewhere") == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://", "names no directory"),
        ("file:///x?fsync=0", "takes no options"),
        ("file:///x#frag", "takes no options"),
        ("file:///x?", "takes no options"),
        ("memory://", "not a file:// URL"),
    ],
)
def test_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FileObjectStore.from_url(url)


def test_opened_by_the_wiring(tmp_path: Path) -> None:
    store = open_port("objects", f"file://{tmp_path}/o")
    assert isinstance(store, FileObjectStore) and store.root == tmp_path / "o"


def test_opening_creates_nothing(tmp_path: Path) -> None:
    FileObjectStore.from_url(f"file://{tmp_path}/objects")
    assert tree(tmp_path) == []


# on disk


async def test_survives_reopening(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/objects"
    info = await FileObjectStore.from_url(url).put("photos/1.jpg", b"jpeg", content_type="image/jpeg")
    reopened = FileObjectStore.from_url(url)
    got = await reopened.get("photos/1.jpg")
    assert got.info == info and got.data == b"jpeg"
    assert await reopened.list() == [info]


async def test_layout(tmp_path: Path) -> None:
    """The file holds the bytes alone (a server can send it as it is); the metadata is an
    extended attribute of the same file."""
    store = FileObjectStore(tmp_path)
    info = await store.put("photos/1.jpg", b"jpeg bytes", content_type="image/jpeg")
    assert tree(tmp_path) == ["data", "data/photos", "data/photos/1.jpg", "tmp"]
    path = tmp_path / "data" / "photos" / "1.jpg"
    assert path.read_bytes() == b"jpeg bytes"
    meta = json.loads(os.getxattr(path, files_module.XATTR))
    assert meta == {"content_type": "image/jpeg", "size": 10, "etag": info.etag}
    local = await store.local_file("photos/1.jpg")
    assert local is not None and local.path == path and local.info == info


def _legacy_file(path: Path, data: bytes, content_type: str) -> None:
    """An object file as summit wrote it before the metadata moved to an extended attribute."""
    import hashlib
    import struct

    header = json.dumps({"content_type": content_type, "size": len(data), "etag": hashlib.sha256(data).hexdigest()}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + struct.pack(">I", len(header)) + header + data)


async def test_objects_in_the_earlier_format_still_read(tmp_path: Path) -> None:
    _legacy_file(tmp_path / "data" / "old" / "photo.jpg", b"old jpeg", "image/jpeg")
    store = FileObjectStore(tmp_path)
    got = await store.get("old/photo.jpg")
    assert (got.data, got.info.content_type, got.info.size) == (b"old jpeg", "image/jpeg", 8)
    assert await store.head("old/photo.jpg") == got.info
    assert [i.key for i in await store.list()] == ["old/photo.jpg"]
    assert await store.local_file("old/photo.jpg") is None  # its file holds a header too
    await store.put("old/photo.jpg", b"new jpeg", content_type="image/jpeg")  # rewritten in the new format
    assert (tmp_path / "data" / "old" / "photo.jpg").read_bytes() == b"new jpeg"


async def test_without_extended_attributes_the_header_format_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(files_module.os, "setxattr", unsupported)
    store = FileObjectStore(tmp_path)
    info = await store.put("a/b.png", b"png bytes", content_type="image/png")
    raw = (tmp_path / "data" / "a" / "b.png").read_bytes()
    assert raw.startswith(MAGIC) and raw.endswith(b"png bytes")
    assert (await store.get("a/b.png")).info == info
    assert await store.local_file("a/b.png") is None


async def test_a_truncated_object_file_is_reported_not_served(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("k", b"0123456789")
    path = tmp_path / "data" / "k"
    os.truncate(path, 4)
    with pytest.raises(ObjectError, match="not a complete summit object"):
        await store.get("k")
    assert await store.local_file("k") is None


async def test_delete_removes_empty_directories(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("a/b/c/d", b"1")
    await store.put("a/x", b"2")
    await store.delete("a/b/c/d")
    assert tree(tmp_path / "data") == ["a", "a/x"]
    await store.delete("a/x")
    assert tree(tmp_path / "data") == []
    assert (tmp_path / "data").is_dir()


async def test_no_temp_file_is_left_after_a_failed_put(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("kept", b"old")

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        await store.put("kept", b"new")
    with pytest.raises(OSError, match="No space left"):
        await store.put("new/key", b"new")
    monkeypatch.undo()
    assert tree(tmp_path / "tmp") == []
    assert (await store.get("kept")).data == b"old"
    assert [info.key for info in await store.list()] == ["kept"]


async def test_a_failed_write_keeps_the_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("k", b"old", content_type="text/old")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        await store.put("k", b"new" * 1000, content_type="text/new")
    monkeypatch.undo()
    got = await store.get("k")
    assert (got.data, got.info.content_type) == (b"old", "text/old")
    assert tree(tmp_path / "tmp") == []


async def test_a_key_cannot_be_an_object_and_a_directory(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("a", b"object a")
    await store.put("b/c", b"object b/c")
    with pytest.raises(ObjectError, match="clashes"):
        await store.put("a/b", b"x")
    with pytest.raises(ObjectError, match="clashes"):
        await store.put("b", b"x")
    assert tree(tmp_path / "tmp") == []
    assert [info.key for info in await store.list()] == ["a", "b/c"]
    for missing in ("a/b", "b"):
        with pytest.raises(ObjectNotFound):
            await store.get(missing)
        await store.delete(missing)  # no such object: nothing to do
    assert (await store.get("a")).data == b"object a"
    assert (await store.get("b/c")).data == b"object b/c"


async def test_list_skips_temp_and_foreign_files(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await store.put("real", b"x")
    (tmp_path / "tmp" / "leftover.part").write_bytes(b"half written")
    (tmp_path / "data" / "back\\slash").write_bytes(b"not a key")
    os.symlink(tmp_path / "data" / "real", tmp_path / "data" / "link")
    assert [info.key for info in await store.list()] == ["real"]


async def test_a_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "foreign.jpg").write_bytes(b"\xff\xd8 raw jpeg")
    await store.put("truncated", b"0123456789")
    path = tmp_path / "data" / "truncated"
    path.write_bytes(path.read_bytes()[:-3])
    for key in ("foreign.jpg", "truncated"):
        with pytest.raises(ObjectError, match="not a complete summit object file"):
            await store.get(key)
        with pytest.raises(ObjectError, match="not a complete summit object file"):
            await store.head(key)


async def test_a_key_part_longer_than_a_file_name_is_refused(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    with pytest.raises(InvalidKey, match="255 bytes"):
        await store.put("a/" + "x" * 256, b"x")
    await store.put("a/" + "x" * 255, b"x")


async def test_path_traversal_stays_inside_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    store = FileObjectStore(root)
    await store.put("seed", b"x")
    os.symlink(outside, root / "data" / "escape")  # planted inside the store by someone else
    os.symlink(outside / "secret", root / "data" / "secret-link")
    os.symlink(root / "data" / "loop", root / "data" / "loop")
    attempts = [
        "../outside/secret",
        "..\\outside\\secret",
        "/etc/passwd",
        "escape/secret",  # through the planted symlinks
        "escape/new",
        "secret-link",
        "loop/x",
        "loop",
    ]
    for key in attempts:
        with pytest.raises(InvalidKey):
            await store.put(key, b"overwritten")
        with pytest.raises(InvalidKey):
            await store.get(key)
        with pytest.raises(InvalidKey):
            await store.delete(key)
    await store.put("%2e%2e/x", b"literal")  # no decoding: a plain directory named '%2e%2e'
    assert (root / "data" / "%2e%2e" / "x").is_file()
    assert tree(outside) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert [info.key for info in await store.list()] == ["%2e%2e/x", "seed"]


async def test_missing_root_reads_as_empty(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path / "never-written")
    assert await store.list() == []
    with pytest.raises(ObjectNotFound):
        await store.get("k")
    await store.delete("k")
    assert not (tmp_path / "never-written").exists()

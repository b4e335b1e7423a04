"""The objects port on a local directory: the embedded object store of stage 1.

URL: the directory is the URL's netloc and path joined, taken literally (no percent-decoding, no
host as in RFC 8089, like ``sqlite:///``), and made absolute against the working directory when the
store is opened::

    file://.summit/objects      -> .summit/objects      (two slashes: a relative directory)
    file:///srv/summit/objects  -> /srv/summit/objects  (three slashes: an absolute one)

Layout under the directory::

    data/<key>   one file per object: its bytes, and its metadata (content type, size, etag) in an
                 extended attribute of the file (``user.summit.object``)
    tmp/         files being written; a put renames its file into data/ once it is complete

Why the metadata lives with the object's own file rather than in a sidecar: ``os.replace`` of one
file is the only atomic step a file system offers. With data and metadata in two files, a reader
between the two renames (or a crash between them) pairs new data with old metadata, and preventing
that takes a lock shared by every process plus a repair path. With one file, a put is one rename:
a reader that has opened the file reads one version, attribute and bytes together, whatever later
puts do; a crash leaves the old object or the new one, and at worst an orphan in tmp/ (safe to
delete when no put runs). list() walks data/ only, so it never sees a file being written.

Because the file holds the bytes alone, a web server can send it as it is (``local_file``: the
server's file-sending path, nothing read into Python). On a file system without user extended
attributes (or a platform without them), a put writes the earlier format instead: a header (magic,
length, JSON) before the bytes, in the file itself. Reading takes either, so stores written by an
earlier summit keep working; only files in the newer format are offered to ``local_file``.

A file system cannot hold 'a' as an object and as a directory of 'a/b' at once: such a put fails
with ObjectError (S3 allows it; keys that are both are rare, and SeaweedFS's filer refuses them too).
Each '/'-separated part of a key is limited to 255 bytes, the file name limit of Linux.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import struct
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from summit.ports.objects import (
    InvalidKey,
    LocalFile,
    ObjectError,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoredObject,
    validate_key,
)

XATTR = "user.summit.object"  # the metadata of an object whose file holds its bytes alone (JSON)
# the format for file systems without extended attributes: MAGIC, header length (4 bytes,
# big-endian), JSON header, data
MAGIC = b"summit-object/1\n"
_LENGTH = struct.Struct(">I")
_PREFIX = len(MAGIC) + _LENGTH.size
_MAX_HEADER = 1 << 16
NAME_MAX = 255
_ATTEMPTS = 20  # times a put re-creates a directory that a concurrent delete pruned


class FileObjectStore(ObjectStore):
    def __init__(self, directory: str | os.PathLike[str]):
        self.root = Path(os.path.abspath(directory))
        self._data = self.root / "data"
        self._tmp = self.root / "tmp"
        self._xattrs = hasattr(os, "setxattr")  # until the file system says otherwise

    def __repr__(self) -> str:
        return f"FileObjectStore({str(self.root)!r})"

    @classmethod
    def from_url(cls, url: str) -> FileObjectStore:
        parts = urlsplit(url)
        if parts.scheme.split("+", 1)[0].lower() != "file":
            raise ValueError(f"{url!r} is not a file:// URL")
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            raise ValueError(f"{url!r}: the file object store takes no options (nothing after '?' or '#')")
        directory = parts.netloc + parts.path
        if not directory:
            raise ValueError(f"{url!r} names no directory: use file://relative/dir or file:///absolute/dir")
        return cls(directory)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        validate_key(key)
        data = _check_data(data, content_type)
        return await asyncio.to_thread(self._put, key, data, content_type)

    async def get(self, key: str) -> StoredObject:
        info, data = await asyncio.to_thread(self._read, key, True)
        return StoredObject(info, data)

    async def head(self, key: str) -> ObjectInfo:
        info, _ = await asyncio.to_thread(self._read, key, False)
        return info

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def local_file(self, key: str) -> LocalFile | None:
        """The object's own file, when it holds the bytes alone (see the module's docstring)."""
        path = self._path(key)
        try:
            stat, meta = os.stat(path), os.getxattr(path, XATTR)
            info = _info_from(key, meta)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        except (OSError, AttributeError, ValueError, KeyError, TypeError):
            return None  # the header format, or no extended attributes here
        if stat.st_size != info.size:
            return None
        return LocalFile(path, info, stat)

    async def list(self, prefix: str = "", *, after: str = "", limit: int = 1000) -> list[ObjectInfo]:
        _check_limit(limit)
        return await asyncio.to_thread(self._list, prefix, after, limit)

    # blocking parts, run in a thread

    def _path(self, key: str) -> Path:
        validate_key(key)
        parts = key.split("/")
        if any(len(part.encode()) > NAME_MAX for part in parts):
            raise InvalidKey(f"object key {key!r}: the file store allows {NAME_MAX} bytes per '/'-separated part")
        path = self._data.joinpath(*parts)
        # validate_key already refuses '..', absolute keys and backslashes; resolving (which follows
        # any symlink planted inside the store) checks that the key cannot reach outside data/.
        try:
            inside = path.resolve().is_relative_to(self._data.resolve())
        except (OSError, RuntimeError):  # a symlink loop
            inside = False
        if not inside:
            raise InvalidKey(f"object key {key!r} leads outside the store")
        return path

    def _put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        path = self._path(key)
        info = ObjectInfo(key, len(data), content_type, hashlib.sha256(data).hexdigest())
        header = json.dumps({"content_type": content_type, "size": info.size, "etag": info.etag}).encode()
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "xb") as file:  # permissions: 0o666 less the umask, like any new file
                if not self._set_xattr(file.fileno(), header):
                    file.write(MAGIC + _LENGTH.pack(len(header)) + header)
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            self._replace(tmp, path, key)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return info

    def _set_xattr(self, fd: int, header: bytes) -> bool:
        """Put the metadata in the file's extended attribute; False where the file system has none."""
        if not self._xattrs:
            return False
        try:
            os.setxattr(fd, XATTR, header)
        except OSError as error:
            if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise
            self._xattrs = False
            return False
        return True

    def _replace(self, tmp: Path, path: Path, key: str) -> None:
        for _ in range(_ATTEMPTS):
            created = not path.parent.is_dir()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
            except FileNotFoundError:
                continue  # a delete pruned the directory, empty at that moment: make it again
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
                if not self._clashes(path):
                    continue  # mkdir lost a race with a delete pruning the same directory: again
                raise ObjectError(
                    f"object key {key!r} clashes with another key: the file store cannot hold 'a' "
                    "as an object and as the directory of 'a/b' at once"
                ) from error
            # make the rename durable, and the directories it needed if it made them
            for directory in [path.parent, *path.parent.parents] if created else [path.parent]:
                _fsync_directory(directory)
                if directory == self._data:
                    break
            return
        raise ObjectError(f"could not store {key!r}: its directory kept being removed by deletes")

    def _clashes(self, path: Path) -> bool:
        """Does a key really stand in the way: the target is a directory, or a parent is a file?"""
        if path.is_dir():
            return True
        for directory in path.parents:
            if directory == self._data:
                return False
            if directory.exists() and not directory.is_dir():
                return True
        return False

    def _read(self, key: str, with_data: bool) -> tuple[ObjectInfo, bytes]:
        path = self._path(key)
        try:
            file = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        with file:  # an open file is one version: a put meanwhile replaces the name, not this file
            size = os.fstat(file.fileno()).st_size
            try:
                meta = os.getxattr(file.fileno(), XATTR)
            except (OSError, AttributeError):
                meta = None
            if meta is not None:  # the bytes alone
                offset = 0
                info = _checked(path, lambda: _info_from(key, meta))
            else:  # the header format
                prefix = file.read(_PREFIX)
                if len(prefix) != _PREFIX or not prefix.startswith(MAGIC):
                    raise _corrupt(path)
                (length,) = _LENGTH.unpack_from(prefix, len(MAGIC))
                if length > _MAX_HEADER:
                    raise _corrupt(path)
                offset = _PREFIX + length
                info = _checked(path, lambda: _info_from(key, file.read(length)))
            if size != offset + info.size:
                raise _corrupt(path)
            data = file.read() if with_data else b""
            if with_data and len(data) != info.size:
                raise _corrupt(path)
        return info, data

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # no such object ('a' may be only the directory of 'a/b')
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from ``directory`` up to data/ (not included)."""
        while directory != self._data and directory.is_relative_to(self._data):
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass  # pruned by a concurrent delete
            except OSError:
                return  # not empty
            directory = directory.parent

    def _list(self, prefix: str, after: str, limit: int) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        if limit == 0:
            return found
        for key in self._keys(self._data, "", prefix, after):
            try:
                found.append(self._read(key, False)[0])
            except ObjectNotFound:
                continue  # deleted while we listed
            if len(found) == limit:
                break
        return found

    def _keys(self, directory: Path, base: str, prefix: str, after: str) -> Iterator[str]:
        """The keys under ``directory`` (all starting with ``base``) in key order, lazily.

        Entries sort by name, a directory's name with '/' appended: every key below directory 'd'
        starts with 'd/', so this is the order of the keys themselves ('a-c' < 'a/b' < 'ab').
        Symlinks and names that cannot be keys (left by something else) are skipped.
        """
        try:
            with os.scandir(directory) as scan:
                entries = sorted(
                    (entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry)
                    for entry in scan
                    if _is_key_part(entry.name)
                )
        except (FileNotFoundError, NotADirectoryError):
            return
        for name, entry in entries:
            key = base + name
            if name.endswith("/"):
                # descend only where keys can start with prefix and sort after `after`
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    continue
                if key <= after and not after.startswith(key):
                    continue
                yield from self._keys(Path(entry.path), key, prefix, after)
            elif key.startswith(prefix) and key > after and entry.is_file(follow_symlinks=False):
                yield key


def _check_data(data: bytes, content_type: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"object data is bytes, got {type(data).__name__}")
    if not isinstance(content_type, str):
        raise TypeError(f"content_type is a str, got {type(content_type).__name__}")
    return bytes(data)


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit is an int, got {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")


def _is_key_part(name: str) -> bool:
    try:
        validate_key(name)
    except (InvalidKey, UnicodeError):  # UnicodeError: a file name that is not UTF-8
        return False
    return True


def _info_from(key: str, header: bytes) -> ObjectInfo:
    meta = json.loads(header)
    return ObjectInfo(key, int(meta["size"]), str(meta["content_type"]), str(meta["etag"]))


def _checked(path: Path, read: Callable[[], ObjectInfo]) -> ObjectInfo:
    try:
        return read()
    except (ValueError, KeyError, TypeError) as error:
        raise _corrupt(path) from error


def _corrupt(path: Path) -> ObjectError:
    return ObjectError(f"{path} is not a complete summit object file (written by something else?)")


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return  # removed by a delete meanwhile: nothing left to make durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

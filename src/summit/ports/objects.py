"""The objects port: named blobs with a content type (S3's model, reduced to what apps use).

Keys are '/'-separated paths of printable characters. ``put`` is atomic: a reader sees the old
object or the new one, never a part. ``delete`` of a missing key is not an error (as in S3). A
store that cannot be reached raises ``ObjectStoreUnavailable`` (a web app answers 503).
"""

from __future__ import annotations

import abc
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from summit import telemetry

MAX_KEY_BYTES = 1024


class ObjectError(Exception):
    """Base of the objects port's errors; adapters wrap their driver's errors in it."""


class ObjectNotFound(ObjectError, KeyError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object with key {self.key!r}"


class InvalidKey(ObjectError, ValueError):
    pass


class ObjectStoreUnavailable(ObjectError):
    """The store does not answer (down, frozen, unreachable) within the adapter's time limit: nothing
    was stored or read by the call that raised it; retry shortly. Web apps answer 503."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    etag: str  # a hash of the content, quoted the way HTTP ETags are not: just the hex digest


@dataclass(frozen=True)
class StoredObject:
    info: ObjectInfo
    data: bytes


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class ObjectStream:
    """An object's metadata and its bytes in chunks, read from the store as they are consumed
    (``ObjectStore.stream``), so a large object is never held whole. ``aclose`` releases the
    connection of a stream not read to its end."""

    info: ObjectInfo
    chunks: AsyncIterator[bytes]
    aclose: Callable[[], Awaitable[None]] = _nothing


@dataclass(frozen=True)
class LocalFile:
    """A file on this machine that holds exactly an object's bytes (``ObjectStore.local_file``)."""

    path: Path
    info: ObjectInfo
    stat: os.stat_result


def validate_key(key: str) -> str:
    """Reject keys that are empty, too long, absolute, or that climb out with '..'."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("object key must be a non-empty string")
    try:
        encoded = key.encode()
    except UnicodeEncodeError:
        raise InvalidKey(f"object key {key!r} is not valid Unicode (a lone surrogate)") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/") or key.endswith("/") or "//" in key:
        raise InvalidKey(f"object key {key!r} must not start or end with '/' or contain '//'")
    if any(part in (".", "..") for part in key.split("/")):
        raise InvalidKey(f"object key {key!r} must not contain '.' or '..' segments")
    if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\\" for c in key):
        raise InvalidKey(f"object key {key!r} contains a control character or a backslash")
    return key


class ObjectStore(abc.ABC):
    """Store and fetch objects by key."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "objects", {"put": "put", "get": "get", "head": "head", "delete": "delete", "list": "list",
                                              "stream": "get"})

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> ObjectStore: ...

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store ``data`` under ``key``, replacing what was there, atomically."""

    @abc.abstractmethod
    async def get(self, key: str) -> StoredObject:
        """Return the object; raise ObjectNotFound if there is none."""

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Return the object's metadata without its data; raise ObjectNotFound if there is none."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""

    @abc.abstractmethod
    async def list(self, prefix: str = "", *, after: str = "", limit: int = 1000) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` and sorts after ``after``, in key order."""

    async def local_file(self, key: str) -> LocalFile | None:
        """A file on this machine holding exactly the object's bytes, for a web server to send as it
        is (nothing read into memory), or None if the store has none for it (a remote store, say).
        Meant for keys that are never rewritten: a put to the key after this call may replace the
        file before the server reads it. Raises ObjectNotFound if there is no such object."""
        await self.head(key)
        return None

    async def stream(self, key: str, *, chunk_size: int = 1 << 20) -> ObjectStream:
        """The object's bytes in chunks of at most ``chunk_size``, for sending it on without holding
        it whole. This default reads it whole first; a remote store streams it from its answer.
        Raises ObjectNotFound if there is no such object."""
        got = await self.get(key)

        async def chunks() -> AsyncIterator[bytes]:
            view = memoryview(got.data)
            for start in range(0, len(view), chunk_size):
                yield bytes(view[start:start + chunk_size])

        return ObjectStream(got.info, chunks())

    async def close(self) -> None:
        """Release connections; the store is not used after this."""

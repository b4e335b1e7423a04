"""The objects port in a dict: ``memory://``, one independent store per instance, thread-safe."""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import urlsplit

from summit.ports.objects import ObjectInfo, ObjectNotFound, ObjectStore, StoredObject, validate_key


class MemoryObjectStore(ObjectStore):
    def __init__(self) -> None:
        self._objects: dict[str, StoredObject] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryObjectStore:
        parts = urlsplit(url)
        if parts.scheme.lower() != "memory":
            raise ValueError(f"{url!r} is not a memory:// URL")
        if parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(f"{url!r}: the memory object store takes no name and no options; use memory://")
        return cls()

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        validate_key(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"object data is bytes, got {type(data).__name__}")
        if not isinstance(content_type, str):
            raise TypeError(f"content_type is a str, got {type(content_type).__name__}")
        data = bytes(data)
        info = ObjectInfo(key, len(data), content_type, hashlib.sha256(data).hexdigest())
        with self._lock:
            self._objects[key] = StoredObject(info, data)
        return info

    async def get(self, key: str) -> StoredObject:
        validate_key(key)
        with self._lock:
            found = self._objects.get(key)
        if found is None:
            raise ObjectNotFound(key)
        return found

    async def head(self, key: str) -> ObjectInfo:
        return (await self.get(key)).info

    async def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._objects.pop(key, None)

    async def list(self, prefix: str = "", *, after: str = "", limit: int = 1000) -> list[ObjectInfo]:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit is an int, got {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        with self._lock:
            keys = sorted(key for key in self._objects if key.startswith(prefix) and key > after)[:limit]
            return [self._objects[key].info for key in keys]

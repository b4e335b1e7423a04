"""The objects port on any S3 store (SeaweedFS's S3 gateway at stage 10k, MinIO, AWS S3), through
the S3 API alone (aiobotocore, asyncio).

URL::

    s3://BUCKET?endpoint=http://127.0.0.1:8333&credentials=/srv/summit/secrets/s3-credentials
        &region=us-east-1&prefix=photos/&timeout=5

``endpoint`` (default: AWS's own), ``region`` (``us-east-1``), ``credentials``: a file in the AWS
shared-credentials format (``[default]`` with ``aws_access_key_id`` and ``aws_secret_access_key``;
without it, the variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), so no secret is ever in a
URL. ``prefix`` (ending in '/') keeps this store's keys under it in a shared bucket. ``timeout``
(seconds) bounds each attempt to connect and each wait for an answer; a request is tried twice at
most (a pooled connection the store closed meanwhile), so a store that is down or frozen raises
``ObjectStoreUnavailable`` within about twice ``timeout`` (a put: plus its size at 4 MiB/s). Credentials never come from anywhere
else (no instance-metadata lookup: nothing leaves the machine that the URL does not name).

Metadata: S3's ETag is an MD5 (or not a hash at all for multipart uploads), so the port's etag,
a sha256 of the bytes, travels as the object's user metadata (``x-amz-meta-sha256``), and so does
the content type as it was given (SeaweedFS replaces application/octet-stream with a guess from the
key's extension); an object written by another tool falls back to S3's ETag and Content-Type. S3 lists no content types nor user metadata, so
``list`` asks each object it returns with HEAD (concurrently): it is for tools, not hot paths.

Order: the port lists keys in byte order, as S3 does. SeaweedFS's filer lists in tree order (a
directory 'a' before the file 'a.b'), so ``list`` walks one '/' level at a time (``Delimiter``)
and merges each level into byte order as it streams, holding back only the directories that
sort after names starting with theirs: correct on every S3 store, a page at a time.
"""

from __future__ import annotations

import asyncio
import base64
import configparser
import contextlib
import hashlib
import heapq
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from summit.ports.objects import (
    MAX_KEY_BYTES,
    InvalidKey,
    ObjectError,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreUnavailable,
    ObjectStream,
    StoredObject,
    validate_key,
)

OPTIONS = ("endpoint", "region", "credentials", "prefix", "timeout")
SHA256 = "sha256"  # the user metadata that holds the port's etag
TYPE = "content-type"  # ... and the content type as given (stores may guess one from the key's extension)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_BUSY = {"ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout", "503", "500"}
_HEADS = 16  # HEAD requests list() keeps in flight
_MIN_RATE = 4 * 1024 * 1024  # bytes a second below which a put counts as stuck (with `timeout` to answer)
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")  # user metadata is ASCII: the rest percent-encoded


class S3ObjectStore(ObjectStore):
    def __init__(self, bucket: str, *, endpoint: str | None = None, region: str = "us-east-1",
                 keys: tuple[str, str], prefix: str = "", timeout: float = 5.0):
        self.bucket, self.endpoint, self.region, self.prefix, self.timeout = bucket, endpoint, region, prefix, timeout
        self._keys = keys
        self._session = get_session()
        self._client: Any = None
        self._opened: Any = None  # the client's context manager, to close it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self.bucket!r}, endpoint={self.endpoint!r}, prefix={self.prefix!r})"

    @classmethod
    def from_url(cls, url: str) -> S3ObjectStore:
        parts = urlsplit(url)
        if parts.scheme.lower() != "s3":
            raise ValueError(f"{url!r} is not an s3:// URL")
        bucket = parts.netloc
        if not _BUCKET.match(bucket):
            raise ValueError(f"{url!r}: the bucket ({bucket!r}) is 3-63 lowercase letters, digits, '.' or '-'")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"{url!r}: s3://BUCKET takes no path (keep keys under a prefix with ?prefix=dir/)")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(OPTIONS))
        if unknown:
            raise ValueError(f"{url!r}: unknown option {', '.join(unknown)}; the options are: {', '.join(OPTIONS)}")
        option = {name: values[-1] for name, values in query.items()}
        endpoint = option.get("endpoint") or None
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(f"{url!r}: endpoint must be an http:// or https:// URL, got {endpoint!r}")
        prefix = option.get("prefix", "")
        if prefix:
            if not prefix.endswith("/"):
                raise ValueError(f"{url!r}: prefix must end with '/' (prefix={prefix}/)")
            try:
                validate_key(prefix[:-1])
            except InvalidKey as error:
                raise ValueError(f"{url!r}: prefix: {error}") from None
        try:
            timeout = float(option.get("timeout", "5"))
        except ValueError:
            timeout = 0.0
        if not 0 < timeout <= 300:
            raise ValueError(f"{url!r}: timeout is seconds, more than 0 and at most 300")
        keys = _read_keys(option["credentials"]) if option.get("credentials") else _env_keys(url)
        return cls(bucket, endpoint=endpoint, region=option.get("region") or "us-east-1", keys=keys, prefix=prefix, timeout=timeout)

    # ---- the port -------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        full = self._full(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"object data is bytes, got {type(data).__name__}")
        if not isinstance(content_type, str):
            raise TypeError(f"content_type is a str, got {type(content_type).__name__}")
        data = bytes(data)
        info = ObjectInfo(key, len(data), content_type, hashlib.sha256(data).hexdigest())
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 (S3's integrity check, not security)
        # a store that stops reading mid-body blocks the write with no timeout of aiohttp's: bound the whole put
        budget = 2 * (self.timeout + len(data) / _MIN_RATE) + 1
        with self._errors("put", key):
            async with asyncio.timeout(budget):
                client = await self._s3()
                await client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type,
                                        ContentMD5=md5, Metadata={SHA256: info.etag, TYPE: quote(content_type, safe=_SAFE)})
        return info

    async def get(self, key: str) -> StoredObject:
        full = self._full(key)
        with self._errors("get", key):
            client = await self._s3()
            response = await client.get_object(Bucket=self.bucket, Key=full)
            async with response["Body"] as body:
                data = await body.read()
        info = _info(key, response)
        if len(data) != info.size:
            raise ObjectStoreUnavailable(f"the S3 store sent {len(data)} of {info.size} bytes of {key!r}: retry shortly")
        return StoredObject(info, data)

    async def stream(self, key: str, *, chunk_size: int = 1 << 20) -> ObjectStream:
        """The object as the store sends it: one GET, read a chunk at a time (never held whole)."""
        full = self._full(key)
        with self._errors("get", key):
            client = await self._s3()
            response = await client.get_object(Bucket=self.bucket, Key=full)
        body = response["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with self._errors("get", key):
                    async for chunk in body.iter_chunks(chunk_size):
                        yield chunk
            finally:
                body.close()

        async def aclose() -> None:
            body.close()

        return ObjectStream(_info(key, response), chunks(), aclose)

    async def head(self, key: str) -> ObjectInfo:
        full = self._full(key)
        with self._errors("head", key):
            client = await self._s3()
            return _info(key, await client.head_object(Bucket=self.bucket, Key=full))

    async def delete(self, key: str) -> None:
        full = self._full(key)
        with self._errors("delete", key):
            client = await self._s3()
            await client.delete_object(Bucket=self.bucket, Key=full)

    async def list(self, prefix: str = "", *, after: str = "", limit: int = 1000) -> list[ObjectInfo]:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit is an int, got {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        found: list[ObjectInfo] = []
        if limit == 0:
            return found
        heads = asyncio.Semaphore(_HEADS)

        async def info(key: str) -> ObjectInfo | None:
            async with heads:
                try:
                    return await self.head(key)
                except ObjectNotFound:
                    return None  # deleted while we listed

        with self._errors("list", prefix):
            walk = self._walk(self.prefix + prefix, self.prefix + after if after else "")
            try:
                batch: list[str] = []
                async for full in walk:
                    batch.append(full[len(self.prefix):])
                    if len(batch) == limit - len(found):
                        found += [i for i in await asyncio.gather(*map(info, batch)) if i is not None]
                        batch = []
                        if len(found) == limit:
                            break
                found += [i for i in await asyncio.gather(*map(info, batch)) if i is not None]
            finally:
                await walk.aclose()
        return found

    async def close(self) -> None:
        opened, self._client, self._opened = self._opened, None, None
        if opened is not None and self._loop is asyncio.get_running_loop():
            await opened.__aexit__(None, None, None)

    def _full(self, key: str) -> str:
        """The S3 key of ``key``: under the prefix, within S3's 1024 bytes."""
        validate_key(key)
        full = self.prefix + key
        if len(full.encode()) > MAX_KEY_BYTES:
            raise InvalidKey(f"object key {key!r}: with the store's prefix {self.prefix!r} it is longer than S3's {MAX_KEY_BYTES} bytes")
        return full

    # ---- listing in byte order -----------------------------------------------------------------

    async def _walk(self, prefix: str, after: str) -> AsyncIterator[str]:
        """The full keys under ``prefix`` that sort after ``after``, in byte order, one level at a time."""
        if after > prefix and not after.startswith(prefix):
            return  # every key under prefix sorts before after
        client = await self._s3()
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": 1000}
        start = _safe_start(prefix, after)
        if start:
            request["StartAfter"] = start
        held: list[tuple[str, bool]] = []  # (key in byte order: a directory ends with '/', is it one)
        while True:
            page = await client.list_objects_v2(**request)
            entries = [(c["Key"], False) for c in page.get("Contents", []) if _is_key(c["Key"], self.prefix)]
            entries += [(p["Prefix"], True) for p in page.get("CommonPrefixes", [])]
            # the store's order: by name, a directory's without its '/' (S3's order satisfies it too)
            entries.sort(key=lambda entry: entry[0][:-1] if entry[1] else entry[0])
            for name, is_dir in entries:
                lowest = name[:-1] if is_dir else name  # nothing the store sends later sorts before it
                while held and held[0][0] < lowest:
                    async for key in self._emit(*heapq.heappop(held), after):
                        yield key
                heapq.heappush(held, (name, is_dir))
            if not page.get("IsTruncated"):
                break
            request.pop("StartAfter", None)
            request["ContinuationToken"] = page["NextContinuationToken"]
        while held:
            async for key in self._emit(*heapq.heappop(held), after):
                yield key

    async def _emit(self, name: str, is_dir: bool, after: str) -> AsyncIterator[str]:
        if not is_dir:
            if name > after:
                yield name
        elif name > after or after.startswith(name):
            async for key in self._walk(name, after):
                yield key

    # ---- the client and its errors --------------------------------------------------------------

    async def _s3(self) -> Any:  # noqa: ANN401 (aiobotocore's client is generated)
        """The client of this event loop, made at its first use (a loop's connections stay in it)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock, self._client, self._opened = loop, asyncio.Lock(), None, None
        if self._client is None:
            assert self._lock is not None
            async with self._lock:
                if self._client is None:
                    config = Config(
                        connect_timeout=self.timeout, read_timeout=self.timeout, retries={"mode": "standard", "total_max_attempts": 2},
                        s3={"addressing_style": "path" if self.endpoint else "auto"}, signature_version="s3v4",
                        request_checksum_calculation="when_required", response_checksum_validation="when_required",
                        max_pool_connections=2 * _HEADS,
                    )
                    opened = self._session.create_client("s3", region_name=self.region, endpoint_url=self.endpoint,
                                                         aws_access_key_id=self._keys[0], aws_secret_access_key=self._keys[1],
                                                         config=config)
                    client = await opened.__aenter__()
                    client.meta.events.register("before-send.s3", _no_expect_continue)
                    self._client, self._opened = client, opened
        return self._client

    @contextlib.contextmanager
    def _errors(self, operation: str, key: str) -> Iterator[None]:
        """The driver's errors as the port's: missing -> ObjectNotFound, unreachable -> ObjectStoreUnavailable."""
        where = self.endpoint or f"AWS S3 ({self.region})"
        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _NOT_FOUND and operation in ("get", "head"):
                raise ObjectNotFound(key) from None
            if code == "NoSuchBucket":
                raise ObjectError(f"the S3 store at {where} has no bucket {self.bucket!r}: create it (summit up makes the stage's)") from None
            if code in _BUSY or status >= 500:
                raise ObjectStoreUnavailable(f"the S3 store at {where} is unavailable ({code}) for {operation} {key!r}: retry shortly") from None
            if status == 403:
                raise ObjectError(f"the S3 store at {where} refused {operation} {key!r} ({code}): check the credentials file") from None
            raise ObjectError(f"S3 {operation} {key!r} at {where} failed: {code} {error}") from None
        except (HTTPClientError, EndpointUnreachable, aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise ObjectStoreUnavailable(f"the S3 store at {where} does not answer ({type(error).__name__}) for {operation} "
                                         f"{key!r}: retry shortly") from None
        except BotoCoreError as error:
            raise ObjectError(f"S3 {operation} {key!r} at {where} failed: {error}") from None


def _no_expect_continue(request: Any, **kwargs: Any) -> None:  # noqa: ANN401
    """botocore asks for '100-continue' before a PUT's body, and aiohttp waits for it with no time
    limit: a frozen store would hang the put. Without it, the read timeout bounds the wait."""
    if "Expect" in request.headers:
        del request.headers["Expect"]


def _info(key: str, response: dict[str, Any]) -> ObjectInfo:
    """The port's metadata from a HEAD or GET answer; an object another tool wrote has S3's own."""
    meta = response.get("Metadata", {})
    etag = meta.get(SHA256) or str(response.get("ETag", "")).strip('"')
    content_type = unquote(meta[TYPE]) if TYPE in meta else response.get("ContentType") or "application/octet-stream"
    return ObjectInfo(key, int(response["ContentLength"]), content_type, etag)


def _is_key(full: str, prefix: str) -> bool:
    """A listed name that is one of this store's keys (not a directory marker, nor a foreign name)."""
    try:
        validate_key(full[len(prefix):])
    except InvalidKey:
        return False
    return full.startswith(prefix)


def _safe_start(prefix: str, after: str) -> str | None:
    """A StartAfter for the level of ``prefix`` that skips nothing sorting after ``after`` on any store.

    A store in tree order skips a name 'd' of the level's directory when 'd' <= the start, though
    the directory 'd/' may sort after it: that is when the start, past the directory, begins with
    'd' followed by nothing or a character up to '/'. So the start stops before the first such place."""
    if not after.startswith(prefix):
        return None  # after sorts before every key under prefix (else nothing is listed at all)
    directory = prefix[:prefix.rfind("/") + 1]
    rest = after[len(directory):]
    cut = next((i for i in range(1, len(rest)) if rest[i] <= "/"), len(rest))
    return directory + rest[:cut - 1] if cut > 1 else None


def _read_keys(path: str) -> tuple[str, str]:
    """The access key and secret key from an AWS shared-credentials file ([default])."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        text = Path(path).read_text()
        parser.read_string(text)
        section = parser["default"]
        return section["aws_access_key_id"].strip(), section["aws_secret_access_key"].strip()
    except OSError as error:
        raise ValueError(f"credentials={path}: cannot read it ({error.strerror}); is the stage running (summit up)?") from None
    except (configparser.Error, KeyError):
        raise ValueError(f"credentials={path}: not an AWS credentials file with [default] aws_access_key_id and "
                         "aws_secret_access_key") from None


def _env_keys(url: str) -> tuple[str, str]:
    access, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise ValueError(f"{url!r}: give credentials=FILE (an AWS credentials file) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return access, secret

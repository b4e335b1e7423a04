"""A small keep-alive HTTP/1.1 client on asyncio streams, for the load generator.

It does far less than httpx (no redirects, no cookies, no proxies; TLS only when given a context,
for a stage whose front door speaks HTTPS) and so costs a few times less CPU per request, which keeps the load generator off the critical path: what the bench
measures should be the server, not the client. Loopback only (the caller checks the URL).
"""

from __future__ import annotations

import asyncio
import secrets
import ssl as _ssl
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The connection failed or the server's answer was not valid HTTP/1.1."""


class _Unanswered(HttpError):
    """The connection closed before any answer came back (the request was not taken)."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self):  # noqa: ANN201
        import orjson

        return orjson.loads(self.body)


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head (status line + header lines)."""
    try:
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(lines[0])
        status = int(rest[:3])
    except (ValueError, IndexError) as error:
        raise HttpError(f"bad status line: {head[:80]!r}") from error
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(f"bad header line: {line[:80]!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status, headers


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = "summit" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, content_type) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
        )
        parts.append(data)
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        try:
            if self.writer.get_extra_info("sslcontext") is not None:
                # over TLS a close waits for the peer's close_notify, after the load is over; no
                # request is in flight on a connection dropped here: cut it at once
                self.writer.transport.abort()
            else:
                self.writer.close()
        except Exception:  # noqa: BLE001  (already gone)
            pass


class HttpClient:
    """``await client.request("GET", "/healthz")`` over a pool of at most ``max_connections``."""

    def __init__(self, host: str, port: int, *, max_connections: int = 64, timeout: float = 10.0, ssl: _ssl.SSLContext | None = None):
        self.host = host
        self.port = port
        self.ssl = ssl  # HTTPS, verified against this context (net.tls_for: the stage's own CA)
        self.timeout = timeout
        self.max_connections = max_connections
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._host_header = f"{host if ':' not in host else f'[{host}]'}:{port}"
        self._all: set[_Conn] = set()

    async def _connect(self) -> _Conn:
        if self.ssl is None:
            reader, writer = await asyncio.open_connection(self.host.strip("[]"), self.port, limit=MAX_HEAD)
        else:
            reader, writer = await asyncio.open_connection(self.host.strip("[]"), self.port, limit=MAX_HEAD, ssl=self.ssl,
                                                           server_hostname=self.host.strip("[]"))
        conn = _Conn(reader, writer)
        self._all.add(conn)
        return conn

    def _drop(self, conn: _Conn) -> None:
        self._all.discard(conn)
        conn.close()

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"", timeout: float | None = None
    ) -> Response:
        async with self._slots:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    response, reusable = await self._exchange(conn, method, path, headers or {}, body)
                except _Unanswered:
                    self._drop(conn)
                    if not reused:
                        raise
                    # a kept-alive connection the server had closed meanwhile (its idle timeout):
                    # nothing was answered, so the request was not taken; once more on a new one
                    conn = await self._connect()
                    try:
                        response, reusable = await self._exchange(conn, method, path, headers or {}, body)
                    except BaseException:
                        self._drop(conn)
                        raise
                except BaseException:
                    self._drop(conn)
                    raise
                if reusable:
                    self._idle.append(conn)
                else:
                    self._drop(conn)
                return response

    async def _exchange(self, conn: _Conn, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Response, bool]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn.writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            conn.writer.write(body)
        reader = conn.reader
        try:
            await conn.writer.drain()
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, _ssl.SSLError) as error:
            raise _Unanswered("the server closed the connection before answering") from error
        except asyncio.LimitOverrunError as error:
            raise HttpError("response head too large") from error
        status, resp_headers = parse_head(raw_head[:-4])
        keep = resp_headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif "chunked" in resp_headers.get("transfer-encoding", "").lower():
            data = await self._read_chunked(reader)
        elif "content-length" in resp_headers:
            try:
                data = await reader.readexactly(int(resp_headers["content-length"]))
            except (ValueError, asyncio.IncompleteReadError) as error:
                raise HttpError("truncated response body") from error
        else:
            data = await reader.read()  # until the server closes
            keep = False
        return Response(status, resp_headers, data), keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        for _ in range(1_000_000):  # bounded: a million chunks is far beyond any response here
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        raise HttpError("too many chunks")

    async def close(self) -> None:
        for conn in list(self._all):
            self._drop(conn)
        self._idle.clear()
        await asyncio.sleep(0)  # the transports' own closing callbacks run before the loop may end

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
